import AimdsPolicy.Model

/-!
# Theorems about the AIMDS policy model

Soundness of the three-valued evaluation:
* `Expr.eval3_agrees`: for every completion of the unknown facts, the three-valued result
  agrees with the two-valued one;
* `Expr.eval3_tt`, `Expr.eval3_ff`: a definite result holds in every completion;
* `Expr.eval3_total`: with no unknown facts the three-valued result is the two-valued one.

The decision rule:
* `block_iff_definite_violation`: the decision is BLOCK exactly when some block policy is
  violated on definite facts (its trigger evaluates to `tt`);
* `block_iff_total`: with no unknown facts, BLOCK exactly when some block policy's trigger is
  true;
* `block_sound`: BLOCK means every completion violates some block policy;
* `allow_sound`: ALLOW means every completion satisfies every policy;
* `block_of_subset`, `block_mono_cons`: adding policies never turns BLOCK into anything else
  (in particular never into ALLOW);
* `add_violated_not_allow`: adding a policy violated on definite facts never yields ALLOW;
* `add_violated_block`: adding a block policy violated on definite facts yields BLOCK.
-/

namespace Aimds

/-! ## Three-valued connectives -/

namespace T3

theorem agrees_ofBool (b : Bool) : (ofBool b).agrees b = true := by
  cases b <;> rfl

theorem agrees_knot {x : T3} {a : Bool} (hx : x.agrees a = true) :
    (knot x).agrees (!a) = true := by
  revert hx
  cases x <;> cases a <;> decide

theorem agrees_kand {x y : T3} {a b : Bool} (hx : x.agrees a = true) (hy : y.agrees b = true) :
    (kand x y).agrees (a && b) = true := by
  revert hx hy
  cases x <;> cases y <;> cases a <;> cases b <;> decide

theorem agrees_kor {x y : T3} {a b : Bool} (hx : x.agrees a = true) (hy : y.agrees b = true) :
    (kor x y).agrees (a || b) = true := by
  revert hx hy
  cases x <;> cases y <;> cases a <;> cases b <;> decide

theorem agrees_ff {b : Bool} (h : T3.ff.agrees b = true) : b = false := by
  revert h
  cases b <;> decide

theorem knot_ofBool (b : Bool) : knot (ofBool b) = ofBool (!b) := by
  cases b <;> rfl

theorem kand_ofBool (a b : Bool) : kand (ofBool a) (ofBool b) = ofBool (a && b) := by
  cases a <;> cases b <;> rfl

theorem kor_ofBool (a b : Bool) : kor (ofBool a) (ofBool b) = ofBool (a || b) := by
  cases a <;> cases b <;> rfl

theorem ofBool_eq_tt (b : Bool) : ofBool b = .tt ↔ b = true := by
  cases b <;> decide

theorem eq_ff_of_isFF {x : T3} (h : x.isFF = true) : x = .ff := by
  revert h
  cases x <;> decide

end T3

/-! ## Soundness of the three-valued evaluation -/

theorem Term.eval3_sound {pf : PFacts} {env : Env} (hc : Completes pf env) (t : Term) :
    ∀ v, t.eval3 pf = some v → t.eval env = v := by
  cases t with
  | fact i =>
    intro v h
    exact hc i v h
  | lit w =>
    intro v h
    have h' : some w = some v := h
    show w = v
    exact Option.some.inj h'

theorem factEval3_agrees (o : Option Val) (v : Val) (h : ∀ w, o = some w → v = w) :
    (factEval3 o).agrees (asBool v) = true := by
  cases o with
  | none => rfl
  | some w =>
    have e : v = w := h w rfl
    rw [e]
    exact T3.agrees_ofBool (asBool w)

theorem cmp3_agrees (op : Cmp) (o1 o2 : Option Val) (v1 v2 : Val)
    (h1 : ∀ w, o1 = some w → v1 = w) (h2 : ∀ w, o2 = some w → v2 = w) :
    (cmp3 op o1 o2).agrees (op.apply v1 v2) = true := by
  cases o1 with
  | none => cases o2 <;> rfl
  | some w1 =>
    cases o2 with
    | none => rfl
    | some w2 =>
      have e1 : v1 = w1 := h1 w1 rfl
      have e2 : v2 = w2 := h2 w2 rfl
      rw [e1, e2]
      exact T3.agrees_ofBool (op.apply w1 w2)

/-- For every completion of the unknown facts, the three-valued evaluation agrees with the
two-valued one. -/
theorem Expr.eval3_agrees {pf : PFacts} {env : Env} (hc : Completes pf env) (e : Expr) :
    (e.eval3 pf).agrees (e.eval env) = true := by
  induction e with
  | lit b => exact T3.agrees_ofBool b
  | fact i => exact factEval3_agrees (pf i) (env i) (hc i)
  | cmp op a b =>
    exact cmp3_agrees op (a.eval3 pf) (b.eval3 pf) (a.eval env) (b.eval env)
      (Term.eval3_sound hc a) (Term.eval3_sound hc b)
  | neg e ih => exact T3.agrees_knot ih
  | conj a b iha ihb => exact T3.agrees_kand iha ihb
  | disj a b iha ihb => exact T3.agrees_kor iha ihb

/-- A definitely true condition is true in every completion. -/
theorem Expr.eval3_tt {pf : PFacts} {env : Env} (hc : Completes pf env) {e : Expr}
    (h : e.eval3 pf = .tt) : e.eval env = true := by
  have k := Expr.eval3_agrees hc e
  rw [h] at k
  exact k

/-- A definitely false condition is false in every completion. -/
theorem Expr.eval3_ff {pf : PFacts} {env : Env} (hc : Completes pf env) {e : Expr}
    (h : e.eval3 pf = .ff) : e.eval env = false := by
  have k := Expr.eval3_agrees hc e
  rw [h] at k
  exact T3.agrees_ff k

theorem Term.eval3_total {pf : PFacts} {env : Env} (ht : Total pf env) (t : Term) :
    t.eval3 pf = some (t.eval env) := by
  cases t with
  | fact i => exact ht i
  | lit v => rfl

/-- With no unknown facts, the three-valued evaluation is the two-valued one. -/
theorem Expr.eval3_total {pf : PFacts} {env : Env} (ht : Total pf env) (e : Expr) :
    e.eval3 pf = T3.ofBool (e.eval env) := by
  induction e with
  | lit b => rfl
  | fact i =>
    show factEval3 (pf i) = T3.ofBool (asBool (env i))
    rw [ht i] <;> rfl
  | cmp op a b =>
    show cmp3 op (a.eval3 pf) (b.eval3 pf) = T3.ofBool (op.apply (a.eval env) (b.eval env))
    rw [Term.eval3_total ht a, Term.eval3_total ht b] <;> rfl
  | neg e ih =>
    show T3.knot (e.eval3 pf) = T3.ofBool (!(e.eval env))
    rw [ih] <;> exact T3.knot_ofBool _
  | conj a b iha ihb =>
    show T3.kand (a.eval3 pf) (b.eval3 pf) = T3.ofBool (a.eval env && b.eval env)
    rw [iha, ihb] <;> exact T3.kand_ofBool _ _
  | disj a b iha ihb =>
    show T3.kor (a.eval3 pf) (b.eval3 pf) = T3.ofBool (a.eval env || b.eval env)
    rw [iha, ihb] <;> exact T3.kor_ofBool _ _

/-! ## Lists of policies -/

theorem anyP_cons_left {f : Policy → Bool} {q : Policy} (qs : List Policy) (h : f q = true) :
    anyP f (q :: qs) = true := by
  show (f q || anyP f qs) = true
  rw [h] <;> rfl

theorem anyP_cons_right {f : Policy → Bool} (q : Policy) {qs : List Policy}
    (h : anyP f qs = true) : anyP f (q :: qs) = true := by
  show (f q || anyP f qs) = true
  rw [h] <;> cases f q <;> rfl

theorem anyP_of_mem {f : Policy → Bool} {p : Policy} (hp : f p = true) (ps : List Policy) :
    p ∈ ps → anyP f ps = true := by
  induction ps with
  | nil =>
    intro hmem
    cases hmem
  | cons q qs ih =>
    intro hmem
    cases hmem with
    | head => exact anyP_cons_left (f := f) _ hp
    | tail _ h' => exact anyP_cons_right (f := f) _ (ih h')

theorem exists_of_anyP {f : Policy → Bool} (ps : List Policy) :
    anyP f ps = true → ∃ p : Policy, p ∈ ps ∧ f p = true := by
  induction ps with
  | nil =>
    intro h
    have h2 : false = true := h
    cases h2
  | cons q qs ih =>
    intro h
    cases hq : f q with
    | true => exact ⟨q, List.Mem.head qs, hq⟩
    | false =>
      have h3 : (f q || anyP f qs) = true := h
      rw [hq] at h3
      have h4 : anyP f qs = true := h3
      have ⟨p, hp, hfp⟩ := ih h4
      exact ⟨p, List.Mem.tail q hp, hfp⟩

theorem anyP_iff {f : Policy → Bool} {ps : List Policy} :
    anyP f ps = true ↔ ∃ p : Policy, p ∈ ps ∧ f p = true :=
  ⟨exists_of_anyP ps, fun ⟨_, hp, hf⟩ => anyP_of_mem (f := f) hf ps hp⟩

/-! ## The decision rule -/

theorem decide_block_iff (pf : PFacts) (ps : List Policy) :
    decideObligation pf ps = .block ↔ anyP (blocks pf) ps = true := by
  show cond (anyP (blocks pf) ps) Decision.block
      (cond (anyP (mayFire pf) ps) Decision.escalate Decision.allow) = Decision.block ↔ _
  cases anyP (blocks pf) ps <;> cases anyP (mayFire pf) ps <;> decide

theorem decide_allow_iff (pf : PFacts) (ps : List Policy) :
    decideObligation pf ps = .allow ↔
      anyP (blocks pf) ps = false ∧ anyP (mayFire pf) ps = false := by
  show cond (anyP (blocks pf) ps) Decision.block
      (cond (anyP (mayFire pf) ps) Decision.escalate Decision.allow) = Decision.allow ↔ _
  cases anyP (blocks pf) ps <;> cases anyP (mayFire pf) ps <;> decide

theorem decide_escalate_iff (pf : PFacts) (ps : List Policy) :
    decideObligation pf ps = .escalate ↔
      anyP (blocks pf) ps = false ∧ anyP (mayFire pf) ps = true := by
  show cond (anyP (blocks pf) ps) Decision.block
      (cond (anyP (mayFire pf) ps) Decision.escalate Decision.allow) = Decision.escalate ↔ _
  cases anyP (blocks pf) ps <;> cases anyP (mayFire pf) ps <;> decide

theorem blocks_iff (pf : PFacts) (p : Policy) :
    blocks pf p = true ↔ p.response = .block ∧ p.trigger.eval3 pf = .tt := by
  show (p.response.isBlock && (p.trigger.eval3 pf).isTT) = true ↔ _
  cases p.response <;> cases p.trigger.eval3 pf <;> decide

theorem mayFire_false_iff (pf : PFacts) (p : Policy) :
    mayFire pf p = false ↔ p.trigger.eval3 pf = .ff := by
  show (!(p.trigger.eval3 pf).isFF) = false ↔ _
  cases p.trigger.eval3 pf <;> decide

theorem mayFire_of_ne_ff {pf : PFacts} {p : Policy} (h : p.trigger.eval3 pf ≠ .ff) :
    mayFire pf p = true := by
  cases hm : mayFire pf p with
  | true => rfl
  | false => exact absurd ((mayFire_false_iff pf p).mp hm) h

/-- The decision is BLOCK exactly when some block policy is violated on definite facts. -/
theorem block_iff_definite_violation (pf : PFacts) (ps : List Policy) :
    decideObligation pf ps = .block ↔
      ∃ p : Policy, p ∈ ps ∧ p.response = .block ∧ p.trigger.eval3 pf = .tt := by
  rw [decide_block_iff, anyP_iff]
  constructor
  · intro ⟨p, hp, hb⟩
    exact ⟨p, hp, (blocks_iff pf p).mp hb⟩
  · intro ⟨p, hp, hb⟩
    exact ⟨p, hp, (blocks_iff pf p).mpr hb⟩

/-- With no unknown facts, BLOCK exactly when some block policy's trigger is true. -/
theorem block_iff_total {pf : PFacts} {env : Env} (ht : Total pf env) (ps : List Policy) :
    decideObligation pf ps = .block ↔
      ∃ p : Policy, p ∈ ps ∧ p.response = .block ∧ p.trigger.eval env = true := by
  rw [block_iff_definite_violation]
  constructor
  · intro ⟨p, hp, hr, he⟩
    rw [Expr.eval3_total ht, T3.ofBool_eq_tt] at he
    exact ⟨p, hp, hr, he⟩
  · intro ⟨p, hp, hr, he⟩
    refine ⟨p, hp, hr, ?_⟩
    rw [Expr.eval3_total ht, T3.ofBool_eq_tt] <;> exact he

/-- BLOCK is sound: every completion of the unknown facts violates some block policy. -/
theorem block_sound {pf : PFacts} {ps : List Policy} (h : decideObligation pf ps = .block)
    {env : Env} (hc : Completes pf env) :
    ∃ p : Policy, p ∈ ps ∧ p.response = .block ∧ p.trigger.eval env = true := by
  have ⟨p, hp, hr, ht⟩ := (block_iff_definite_violation pf ps).mp h
  exact ⟨p, hp, hr, Expr.eval3_tt hc ht⟩

/-- ALLOW is sound: every completion of the unknown facts satisfies every policy. -/
theorem allow_sound {pf : PFacts} {ps : List Policy} (h : decideObligation pf ps = .allow)
    {env : Env} (hc : Completes pf env) :
    ∀ p : Policy, p ∈ ps → p.trigger.eval env = false := by
  intro p hp
  have hm : anyP (mayFire pf) ps = false := ((decide_allow_iff pf ps).mp h).2
  cases hf : mayFire pf p with
  | true =>
    have hany : anyP (mayFire pf) ps = true := anyP_of_mem (f := mayFire pf) hf ps hp
    rw [hm] at hany
    cases hany
  | false => exact Expr.eval3_ff hc ((mayFire_false_iff pf p).mp hf)

/-- Adding policies never turns BLOCK into another decision. -/
theorem block_of_subset {pf : PFacts} {ps qs : List Policy}
    (hsub : ∀ p : Policy, p ∈ ps → p ∈ qs) (h : decideObligation pf ps = .block) :
    decideObligation pf qs = .block := by
  have ⟨p, hp, hb⟩ := (block_iff_definite_violation pf ps).mp h
  exact (block_iff_definite_violation pf qs).mpr ⟨p, hsub p hp, hb⟩

/-- Adding one policy in front keeps BLOCK (so it never turns BLOCK into ALLOW). -/
theorem block_mono_cons {pf : PFacts} {ps : List Policy} (q : Policy)
    (h : decideObligation pf ps = .block) : decideObligation pf (q :: ps) = .block :=
  block_of_subset (ps := ps) (fun _ hp => List.Mem.tail q hp) h

/-- Adding a policy violated on definite facts never yields ALLOW. -/
theorem add_violated_not_allow {pf : PFacts} (p : Policy) (ps : List Policy)
    (hv : p.trigger.eval3 pf = .tt) : decideObligation pf (p :: ps) ≠ .allow := by
  intro h
  have hm : anyP (mayFire pf) (p :: ps) = false := ((decide_allow_iff pf (p :: ps)).mp h).2
  have hne : p.trigger.eval3 pf ≠ .ff := by
    intro heq
    rw [hv] at heq
    cases heq
  have hf : mayFire pf p = true := mayFire_of_ne_ff hne
  have hany : anyP (mayFire pf) (p :: ps) = true :=
    anyP_of_mem (f := mayFire pf) hf (p :: ps) (List.Mem.head ps)
  rw [hm] at hany
  cases hany

/-- Adding a block policy violated on definite facts yields BLOCK. -/
theorem add_violated_block {pf : PFacts} (p : Policy) (ps : List Policy)
    (hr : p.response = .block) (hv : p.trigger.eval3 pf = .tt) :
    decideObligation pf (p :: ps) = .block :=
  (block_iff_definite_violation pf (p :: ps)).mpr ⟨p, List.Mem.head ps, hr, hv⟩

end Aimds
