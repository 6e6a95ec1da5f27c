"""Three-valued (strong Kleene) evaluation and the three-valued decision rule."""

from __future__ import annotations

import pytest

from app.records import Action
from app.verification.logic import eval2, eval3, three_valued_decision
from app.verification.policy import parse_expr, parse_policy_text

T, F, U = True, False, None


@pytest.mark.parametrize(
    ("source", "facts", "expected"),
    [
        ("facts.private_key", {"facts.private_key": T}, T),
        ("facts.private_key", {"facts.private_key": None}, U),
        ("facts.private_key", {}, U),
        # and: false wins over unknown, unknown wins over true
        ("facts.private_key and facts.url_payload", {"facts.private_key": F}, F),
        ("facts.private_key and facts.url_payload", {"facts.url_payload": F}, F),
        ("facts.private_key and facts.url_payload", {"facts.private_key": T}, U),
        (
            "facts.private_key and facts.url_payload",
            {"facts.private_key": T, "facts.url_payload": T},
            T,
        ),
        # or: true wins over unknown
        ("facts.private_key or facts.url_payload", {"facts.url_payload": T}, T),
        ("facts.private_key or facts.url_payload", {"facts.private_key": F}, U),
        (
            "facts.private_key or facts.url_payload",
            {"facts.private_key": F, "facts.url_payload": F},
            F,
        ),
        ("not facts.private_key", {"facts.private_key": F}, T),
        ("not facts.private_key", {}, U),
        # comparisons: unknown when an operand is unknown
        ("facts.email_count > 2", {"facts.email_count": 3}, T),
        ("facts.email_count > 2", {"facts.email_count": 2}, F),
        ("facts.email_count >= 2.5", {"facts.email_count": 2}, F),
        ("facts.email_count > 2", {}, U),
        ("scores.screen_score >= 0.8", {"scores.screen_score": 0.8}, T),
        ("scores.screen_score < 0.8", {"scores.screen_score": 0.79999}, T),
        ("session.escalation < scores.temporal_score", {"session.escalation": 0.2}, U),
        (
            "session.escalation < scores.temporal_score",
            {"session.escalation": 0.2, "scores.temporal_score": 0.3},
            T,
        ),
        ('facts.role == "tool"', {"facts.role": "tool"}, T),
        ('facts.role != "tool"', {"facts.role": "user"}, T),
        ('facts.role in ["tool", "document"]', {"facts.role": "user"}, F),
        ('facts.role in ["tool", "document"]', {}, U),
        ("facts.private_key == false", {"facts.private_key": F}, T),
        # sound but not complete: these are settled in every completion, Kleene says unknown
        ("facts.private_key or not facts.private_key", {}, U),
        ("scores.screen_score <= 1", {}, U),
    ],
)
def test_eval3(source: str, facts: dict[str, object], expected: bool | None) -> None:
    assert eval3(parse_expr(source), facts) is expected  # type: ignore[arg-type]


def test_eval2_needs_total_facts() -> None:
    expr = parse_expr("facts.private_key and facts.email_count > 1")
    assert eval2(expr, {"facts.private_key": True, "facts.email_count": 2}) is True
    with pytest.raises(KeyError):
        eval2(expr, {"facts.private_key": True})


POLICIES = parse_policy_text(
    """
policies:
  - {id: b.key, description: d, severity: high, action: block, when: facts.private_key}
  - {id: e.big, description: d, severity: low, action: escalate, when: facts.pii_count >= 5}
"""
)


@pytest.mark.parametrize(
    ("facts", "action"),
    [
        ({"facts.private_key": True, "facts.pii_count": 9}, Action.BLOCK),
        ({"facts.private_key": True}, Action.BLOCK),  # block on definite facts wins
        ({"facts.private_key": False, "facts.pii_count": 9}, Action.ESCALATE),
        ({"facts.private_key": False}, Action.ESCALATE),  # may fire
        ({"facts.private_key": False, "facts.pii_count": 1}, Action.ALLOW),
    ],
)
def test_three_valued_decision(facts: dict[str, object], action: Action) -> None:
    assert three_valued_decision(POLICIES, facts) is action  # type: ignore[arg-type]
