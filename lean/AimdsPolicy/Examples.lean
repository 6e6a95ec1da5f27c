import AimdsPolicy.Theorems

/-!
# Worked obligations

Small obligations in the same form as the files `app/verification/lean_backend.py` generates,
decided by `decide` when the library is built (so CI checks the rendering style too).

Facts: 0 = facts.private_key, 1 = facts.api_key_count, 2 = scores.pattern_similarity
(scaled by 100), 3 = facts.role (0 = user, 1 = system, ...).
-/

namespace Aimds.Examples

def knownFacts : PFacts := lookup [some (.bool true), some (.num 0), some (.num 30), some (.sym 0)]

def partialFacts : PFacts := lookup [some (.bool false), some (.num 0), none, none]

def secretKey : Policy :=
  { name := "secrets.private_key", response := .block, trigger := .fact 0 }

def apiKey : Policy :=
  { name := "secrets.api_key", response := .block,
    trigger := .cmp .gt (.fact 1) (.lit (.num 0)) }

def similarNotSystem : Policy :=
  { name := "exfil.similar", response := .escalate,
    trigger := .conj (.cmp .ge (.fact 2) (.lit (.num 85)))
      (.neg (.cmp .eq (.fact 3) (.lit (.sym 1)))) }

def policies : List Policy := [secretKey, apiKey, similarNotSystem]

def secrets : List Policy := [secretKey, apiKey]

set_option maxRecDepth 8192 in
/-- A private key on definite facts: BLOCK. -/
theorem known_blocks : decideObligation knownFacts policies = .block := by decide

set_option maxRecDepth 8192 in
/-- The similarity and the role are unknown, and the escalate policy depends on them. -/
theorem partial_escalates : decideObligation partialFacts policies = .escalate := by decide

set_option maxRecDepth 8192 in
/-- No secret on definite facts: ALLOW, whatever the unknown facts. -/
theorem partial_secrets_allow : decideObligation partialFacts secrets = .allow := by decide

/-- What ALLOW means, by `allow_sound`. -/
theorem partial_secrets_safe :
    ∀ env : Env, Completes partialFacts env →
      ∀ p : Policy, p ∈ secrets → p.trigger.eval env = false :=
  fun _ hc => allow_sound partial_secrets_allow hc

/-- What BLOCK means, by `block_sound`. -/
theorem known_violates :
    ∀ env : Env, Completes knownFacts env →
      ∃ p : Policy, p ∈ policies ∧ p.response = .block ∧ p.trigger.eval env = true :=
  fun _ hc => block_sound known_blocks hc

end Aimds.Examples
