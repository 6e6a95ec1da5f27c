/-!
# The AIMDS policy model

A formal model of the verification stage's policy language (core Lean 4 only, no Mathlib):

* facts are numbered; a fact value is a Boolean, a natural number (counts, and scores scaled
  to naturals by a common denominator) or an enum member index;
* partial facts `PFacts` map each fact to `some v` (known) or `none` (unknown);
* policy conditions are expressions over facts with comparisons and `neg`/`conj`/`disj`;
* `Expr.eval` is the two-valued evaluation over total facts, `Expr.eval3` the strong Kleene
  three-valued evaluation over partial facts (the twin of `app/verification/logic.py`);
* a policy is violated when its trigger is true; its response is `block` or `escalate`;
* `decideObligation` is the decision rule: BLOCK when a block policy fires on definite facts,
  else ESCALATE when any policy fires or may fire, else ALLOW.

The theorems about this model are in `AimdsPolicy/Theorems.lean`.
-/

namespace Aimds

/-- A fact value: a Boolean, a natural number, or the index of an enum member. -/
inductive Val where
  | bool (b : Bool)
  | num (n : Nat)
  | sym (k : Nat)
  deriving Repr

/-- Comparison operators. -/
inductive Cmp where
  | eq
  | ne
  | lt
  | le
  | gt
  | ge
  deriving Repr

/-- An operand of a comparison: a fact (by index) or a literal value. -/
inductive Term where
  | fact (i : Nat)
  | lit (v : Val)
  deriving Repr

/-- A policy condition. -/
inductive Expr where
  | lit (b : Bool)
  | fact (i : Nat)
  | cmp (op : Cmp) (a b : Term)
  | neg (e : Expr)
  | conj (a b : Expr)
  | disj (a b : Expr)
  deriving Repr

/-- Equality of Booleans, by cases (reduces in the kernel). -/
def boolEq : Bool → Bool → Bool
  | true, true => true
  | false, false => true
  | _, _ => false

/-- Equality of values; values of different kinds are different. -/
def Val.eqb : Val → Val → Bool
  | .bool a, .bool b => boolEq a b
  | .num a, .num b => Nat.beq a b
  | .sym a, .sym b => Nat.beq a b
  | _, _ => false

/-- Apply a comparison to two values. Ordering is defined on numbers only; the Python type
checker rejects every other ordering, and here it is simply `false`. -/
def Cmp.apply : Cmp → Val → Val → Bool
  | .eq, a, b => Val.eqb a b
  | .ne, a, b => !(Val.eqb a b)
  | .lt, .num x, .num y => Nat.ble (x + 1) y
  | .le, .num x, .num y => Nat.ble x y
  | .gt, .num x, .num y => Nat.ble (y + 1) x
  | .ge, .num x, .num y => Nat.ble y x
  | _, _, _ => false

/-- Three truth values: true, false, unknown. -/
inductive T3 where
  | tt
  | ff
  | unk
  deriving DecidableEq, Repr

namespace T3

/-- A definite truth value. -/
def ofBool : Bool → T3
  | true => .tt
  | false => .ff

/-- Kleene negation. -/
def knot : T3 → T3
  | .tt => .ff
  | .ff => .tt
  | .unk => .unk

/-- Strong Kleene conjunction: false wins over unknown. -/
def kand : T3 → T3 → T3
  | .ff, _ => .ff
  | _, .ff => .ff
  | .tt, .tt => .tt
  | _, _ => .unk

/-- Strong Kleene disjunction: true wins over unknown. -/
def kor : T3 → T3 → T3
  | .tt, _ => .tt
  | _, .tt => .tt
  | .ff, .ff => .ff
  | _, _ => .unk

/-- `agrees t b`: the three-valued `t` is consistent with the Boolean `b`
(`unk` agrees with both). -/
def agrees : T3 → Bool → Bool
  | .tt, b => b
  | .ff, b => !b
  | .unk, _ => true

/-- Is it definitely true? -/
def isTT : T3 → Bool
  | .tt => true
  | _ => false

/-- Is it definitely false? -/
def isFF : T3 → Bool
  | .ff => true
  | _ => false

end T3

/-- Partial facts: `none` is an unknown fact. -/
abbrev PFacts := Nat → Option Val

/-- Total facts: every fact has a value. -/
abbrev Env := Nat → Val

/-- `env` is a completion of `pf`: it keeps every known fact and gives the unknown ones any
value. -/
def Completes (pf : PFacts) (env : Env) : Prop :=
  ∀ i v, pf i = some v → env i = v

/-- `pf` knows every fact, with the values of `env`. -/
def Total (pf : PFacts) (env : Env) : Prop :=
  ∀ i, pf i = some (env i)

/-- A fact used as a condition: Boolean facts are themselves, other kinds are `false`. -/
def asBool : Val → Bool
  | .bool b => b
  | _ => false

/-- The value of an operand over total facts. -/
def Term.eval (env : Env) : Term → Val
  | .fact i => env i
  | .lit v => v

/-- The value of an operand over partial facts (`none` when unknown). -/
def Term.eval3 (pf : PFacts) : Term → Option Val
  | .fact i => pf i
  | .lit v => some v

/-- A Boolean fact over partial facts. -/
def factEval3 : Option Val → T3
  | some v => T3.ofBool (asBool v)
  | none => .unk

/-- A comparison over partial facts: unknown when an operand is unknown. -/
def cmp3 (op : Cmp) : Option Val → Option Val → T3
  | some x, some y => T3.ofBool (op.apply x y)
  | _, _ => .unk

/-- Two-valued evaluation over total facts. -/
def Expr.eval (env : Env) : Expr → Bool
  | .lit b => b
  | .fact i => asBool (env i)
  | .cmp op a b => op.apply (a.eval env) (b.eval env)
  | .neg e => !(e.eval env)
  | .conj a b => a.eval env && b.eval env
  | .disj a b => a.eval env || b.eval env

/-- Strong Kleene three-valued evaluation over partial facts. -/
def Expr.eval3 (pf : PFacts) : Expr → T3
  | .lit b => T3.ofBool b
  | .fact i => factEval3 (pf i)
  | .cmp op a b => cmp3 op (a.eval3 pf) (b.eval3 pf)
  | .neg e => T3.knot (e.eval3 pf)
  | .conj a b => T3.kand (a.eval3 pf) (b.eval3 pf)
  | .disj a b => T3.kor (a.eval3 pf) (b.eval3 pf)

/-- What a violated policy asks for. -/
inductive Response where
  | block
  | escalate
  deriving DecidableEq, Repr

/-- The final decision. -/
inductive Decision where
  | allow
  | escalate
  | block
  deriving DecidableEq, Repr

/-- A policy: violated when `trigger` is true. -/
structure Policy where
  name : String
  response : Response
  trigger : Expr
  deriving Repr

/-- Is the response `block`? -/
def Response.isBlock : Response → Bool
  | .block => true
  | .escalate => false

/-- The policy is a block policy violated on definite facts. -/
def blocks (pf : PFacts) (p : Policy) : Bool :=
  p.response.isBlock && (p.trigger.eval3 pf).isTT

/-- The policy is violated, or may be for some value of the unknown facts. -/
def mayFire (pf : PFacts) (p : Policy) : Bool :=
  !(p.trigger.eval3 pf).isFF

/-- Some policy of the list satisfies `f`. -/
def anyP (f : Policy → Bool) : List Policy → Bool
  | [] => false
  | p :: ps => f p || anyP f ps

/-- The decision rule (precedence BLOCK > ESCALATE > ALLOW). -/
def decideObligation (pf : PFacts) (ps : List Policy) : Decision :=
  cond (anyP (blocks pf) ps) Decision.block
    (cond (anyP (mayFire pf) ps) Decision.escalate Decision.allow)

/-- Partial facts from a list (index `i` is the `i`-th entry; past the end, unknown). -/
def lookup : List (Option Val) → Nat → Option Val
  | [], _ => none
  | v :: _, 0 => v
  | _ :: vs, n + 1 => lookup vs n

end Aimds
