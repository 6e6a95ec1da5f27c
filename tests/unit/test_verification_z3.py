"""The Z3 prover: decisions that depend on unknown facts, proofs and counterexamples."""

from __future__ import annotations

import pytest

from app.errors import ProverTimeout
from app.records import Action
from app.verification.logic import eval3
from app.verification.policy import PolicySet, parse_policy_text
from app.verification.z3prover import Z3Encoder, Z3Prover, exact_rational

SET = parse_policy_text(
    """
policies:
  - id: b.similar_request
    description: d
    severity: high
    action: block
    when: facts.system_prompt_request and scores.pattern_similarity >= 0.85
  - id: b.flood
    description: d
    severity: high
    action: block
    when: session.prompts_1m > 120
  - id: e.burst
    description: d
    severity: low
    action: escalate
    when: session.prompts_1m > 30
  - id: e.tool_role
    description: d
    severity: low
    action: escalate
    when: facts.tool_directive and facts.role in ["tool", "document"]
  - id: b.either
    description: d
    severity: high
    action: block
    when: facts.shell_command and scores.screen_score >= 0.5
  - id: b.or_else
    description: d
    severity: high
    action: block
    when: facts.shell_command and scores.screen_score < 0.5
  - id: b.impossible
    description: d
    severity: high
    action: block
    when: facts.url_payload and scores.rules_score > 1
"""
)

BASE = {
    "facts.system_prompt_request": False,
    "scores.pattern_similarity": 0.2,
    "session.prompts_1m": 3,
    "facts.tool_directive": False,
    "facts.role": "user",
    "facts.shell_command": False,
    "scores.screen_score": 0.3,
    "facts.url_payload": False,
    "scores.rules_score": 0.1,
}


def decide(facts: dict[str, object], policy_set: PolicySet = SET) -> object:
    prover = Z3Prover(policy_set)
    statuses = [(p, eval3(p.when, facts)) for p in policy_set]  # type: ignore[arg-type]
    undecided = [p for p, s in statuses if s is None]
    definite = [p for p, s in statuses if s is True]
    assert undecided, "these cases exercise the prover"
    assert not any(p.action is Action.BLOCK for p in definite)
    return prover.decide(facts, undecided, definite, timeout_ms=2000)  # type: ignore[arg-type]


def test_safe_for_every_value_of_the_unknowns_is_allow() -> None:
    # the similarity is unknown, but the request flag is false: Kleene already settles that;
    # here the only undecided policy can never fire within the score's domain
    result = decide({**BASE, "facts.url_payload": True, "scores.rules_score": None})
    assert result.action is Action.ALLOW
    assert result.proof.startswith("unsat: no assignment of {scores.rules_score}")
    assert result.counterexample is None and result.violated == ()


def test_block_policy_firing_for_every_value_is_block() -> None:
    # shell command with unknown screen score: one of the two block policies fires either way
    result = decide({**BASE, "facts.shell_command": True, "scores.screen_score": None})
    assert result.action is Action.BLOCK
    assert set(result.violated) == {"b.either", "b.or_else"}
    assert "every value of {scores.screen_score}" in result.reasons[0]


def test_violation_for_some_values_is_escalate_with_counterexample() -> None:
    result = decide(
        {**BASE, "facts.system_prompt_request": True, "scores.pattern_similarity": None}
    )
    assert result.action is Action.ESCALATE
    witness = result.counterexample["assignment"]
    assert set(witness) == {"scores.pattern_similarity"}
    assert 0.85 <= witness["scores.pattern_similarity"] <= 1.0
    assert result.counterexample["violated"] == ["b.similar_request"]
    assert "b.similar_request" in result.violated


def test_counterexample_prefers_a_block_witness_and_lists_every_fired_policy() -> None:
    result = decide({**BASE, "session.prompts_1m": None})
    assert result.action is Action.ESCALATE
    assert result.counterexample["assignment"]["session.prompts_1m"] > 120
    assert set(result.counterexample["violated"]) == {"b.flood", "e.burst"}


def test_enum_witness_is_a_member_name() -> None:
    result = decide({**BASE, "facts.tool_directive": True, "facts.role": None})
    assert result.action is Action.ESCALATE
    assert result.counterexample["assignment"]["facts.role"] in ("tool", "document")


def test_definite_escalate_with_unfireable_unknowns_escalates_with_proof() -> None:
    facts = {
        **BASE,
        "session.prompts_1m": 50,
        "facts.url_payload": True,
        "scores.rules_score": None,
    }
    result = decide(facts)
    assert result.action is Action.ESCALATE
    assert result.violated == ("e.burst",)
    assert result.proof is not None and result.counterexample is None


def test_interrupted_context_raises_timeout_not_a_z3_exception() -> None:
    prover = Z3Prover(SET)
    prover.interrupt()  # an interrupt outlives the call it was meant for: the context is spent
    facts = {**BASE, "session.prompts_1m": None}
    undecided = [p for p in SET if eval3(p.when, facts) is None]  # type: ignore[arg-type]
    with pytest.raises(ProverTimeout):
        prover.decide(facts, undecided, [], timeout_ms=2000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.85, "17/20"), (1, "1"), (0.1 + 0.2, "7500000000000001/25000000000000000"), (True, "1")],
)
def test_exact_rational_uses_the_shortest_decimal(value: float, text: str) -> None:
    assert str(exact_rational(value)) == text


def test_encoder_domains() -> None:
    from app.verification.facts import CATALOG

    enc = Z3Encoder()
    assert enc.domain(CATALOG["facts.private_key"]) is None
    assert "1" in str(enc.domain(CATALOG["scores.screen_score"]))
    assert "5" in str(enc.domain(CATALOG["facts.role"]))
