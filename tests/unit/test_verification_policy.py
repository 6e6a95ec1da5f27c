"""The policy language: parser, type checker, YAML loader with file:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.errors import PolicyError
from app.records import Action
from app.verification.policy import (
    DEFAULT_POLICY_FILE,
    And,
    Cmp,
    Const,
    ExprError,
    Not,
    Or,
    Ref,
    Severity,
    parse_expr,
    parse_policy_text,
    read_policy_file,
    render,
)

THRESHOLDS = {"similar": 0.85, "many": 5}


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("facts.private_key", "facts.private_key"),
        ("facts.email_count > 0", "facts.email_count > 0"),
        ('not facts.role == "system"', 'not (facts.role == "system")'),
        (
            "facts.system_prompt_request and scores.pattern_similarity >= thresholds.similar",
            "(facts.system_prompt_request and scores.pattern_similarity >= 0.85)",
        ),
        (
            "facts.private_key or facts.url_payload and facts.exfil_directive",
            "(facts.private_key or (facts.url_payload and facts.exfil_directive))",
        ),
        (
            "(facts.private_key or facts.url_payload) and facts.exfil_directive",
            "((facts.private_key or facts.url_payload) and facts.exfil_directive)",
        ),
        (
            'facts.role in ["tool", "document",]',
            '(facts.role == "tool" or facts.role == "document")',
        ),
        ('facts.role not in ["user"]', 'not (facts.role == "user")'),
        ("session.prompts_1m > thresholds.many", "session.prompts_1m > 5"),
        ("scores.screen_score >= 0.8 and not categories.tool_abuse", None),
        ("facts.private_key == true", "facts.private_key == true"),
        (
            "session.escalation < scores.temporal_score",
            "session.escalation < scores.temporal_score",
        ),
        ("facts.pii_count >= 2.5", "facts.pii_count >= 2.5"),
    ],
)
def test_parse_and_render(source: str, canonical: str | None) -> None:
    expr = parse_expr(source, THRESHOLDS)
    if canonical is not None:
        assert render(expr) == canonical
    # rendering is itself parseable and stable
    assert render(parse_expr(render(expr), THRESHOLDS)) == render(expr)


def test_parse_structure() -> None:
    expr = parse_expr('facts.private_key or not facts.role in ["tool"] and facts.url_count > 1')
    assert isinstance(expr, Or)
    assert isinstance(expr.args[0], Ref)
    conj = expr.args[1]
    assert isinstance(conj, And)
    assert isinstance(conj.args[0], Not)
    assert isinstance(conj.args[1], Cmp) and isinstance(conj.args[1].right, Const)
    assert conj.args[1].right.value == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("facts.nope > 1", "unknown fact 'facts.nope'"),
        ("email_count > 1", "unknown fact 'email_count'"),
        ("scores.email_count > 1", "did you mean 'facts.email_count'"),
        ("facts.email_count", "is int: compare it"),
        ("facts.private_key > 1", "'>' needs numbers"),
        ('facts.role > "user"', "'>' needs numbers"),
        ('facts.role == "admin"', "'admin' is not a value of facts.role"),
        ('facts.role in ["user", "root"]', "'root' is not a value of facts.role"),
        ("facts.email_count == true", "type mismatch"),
        ("facts.private_key and facts.email_count", "is int: compare it"),
        ("not facts.url_count", "is int: compare it"),
        ("facts.private_key and (facts.url_count)", "is int: compare it"),
        ("facts.a_or_b_typo_free or facts.private_key", "unknown fact"),
        ("a_or := facts.private_key", "unexpected character ':'"),
        ('facts.email_count in ["a"]', "'in' needs an enum fact"),
        ("1 < 2", "comparison of two constants"),
        ("true", "must reference at least one fact"),
        ("facts.email_count > thresholds.nope", "unknown threshold"),
        ("0 < facts.email_count < 5", "chained comparisons"),
        ("facts.private_key and", "expected a fact"),
        ("(facts.private_key", "expected ')'"),
        ("facts.private_key facts.url_payload", "unexpected 'facts.url_payload'"),
        ("facts.private_key; import os", "unexpected character ';'"),
        ("__import__('os').system('id')", "unexpected"),
        ("facts.email_count > -1", "unexpected character '-'"),
        ("not " * 60 + "facts.private_key", "nested deeper"),
    ],
)
def test_type_and_syntax_errors(source: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(source, THRESHOLDS)
    assert message in str(info.value)


def _policy_file(body: str) -> str:
    return textwrap.dedent(body).lstrip()


GOOD = _policy_file(
    """
    version: 1
    thresholds:
      similar: 0.85
    policies:
      - id: secrets.private_key
        description: a private key
        severity: critical
        action: block
        when: facts.private_key
      - id: exfil.system_prompt
        family: system_prompt_exfiltration
        description: system prompt request that looks like an attack
        severity: HIGH
        action: Escalate
        when: >-
          facts.system_prompt_request
          and scores.pattern_similarity >= thresholds.similar
    """
)


def test_load_good_file() -> None:
    policy_set = parse_policy_text(GOOD, file="good.yaml")
    assert [p.id for p in policy_set] == ["secrets.private_key", "exfil.system_prompt"]
    first, second = policy_set.policies
    assert first.action is Action.BLOCK and first.severity is Severity.CRITICAL
    assert second.action is Action.ESCALATE and second.severity is Severity.HIGH
    assert second.family == "system_prompt_exfiltration"
    assert first.line == 5 and second.line == 10
    assert (
        second.source
        == "facts.system_prompt_request and scores.pattern_similarity >= thresholds.similar"
    )
    assert policy_set.facts() == (
        "facts.private_key",
        "facts.system_prompt_request",
        "scores.pattern_similarity",
    )
    assert policy_set.get("secrets.private_key") is first
    assert policy_set.get("nope") is None


def test_digest_depends_on_meaning_not_layout() -> None:
    base = parse_policy_text(GOOD).digest
    reformatted = parse_policy_text(
        GOOD.replace("when: facts.private_key", "when: (facts.private_key)")
    )
    assert reformatted.digest == base
    changed = parse_policy_text(GOOD.replace("similar: 0.85", "similar: 0.9"))
    assert changed.digest != base


@pytest.mark.parametrize(
    ("mutate", "line", "message"),
    [
        (
            lambda s: s.replace("when: facts.private_key", "when: facts.private_kee"),
            9,
            "unknown fact",
        ),
        (lambda s: s.replace("severity: critical", "severity: huge"), 7, "severity 'huge'"),
        (lambda s: s.replace("action: block", "action: allow"), 8, "must be 'block' or 'escalate'"),
        (
            lambda s: s.replace("action: block", "action: block\n    colour: red"),
            9,
            "unknown policy key",
        ),
        (lambda s: s.replace("    when: facts.private_key\n", ""), 5, "misses 'when'"),
        (
            lambda s: s.replace("exfil.system_prompt", "secrets.private_key"),
            10,
            "duplicate policy id",
        ),
        (lambda s: s.replace("similar: 0.85", "similar: -1"), 3, "non-negative number"),
        (lambda s: s.replace("similar: 0.85", "similar: high"), 3, "non-negative number"),
        (lambda s: s.replace("version: 1", "version: 2"), 1, "unsupported policy file version"),
        (lambda s: s.replace("thresholds:", "tresholds:"), 2, "unknown top-level key"),
        (lambda s: s.replace("id: secrets.private_key", "id: Secrets Key"), 5, "policy id"),
        (
            lambda s: s.replace(">= thresholds.similar", ">= thresholds.similar or"),
            17,  # inside a folded scalar: the line of the error within the block
            "expected a fact",
        ),
        (
            lambda s: s.replace("    action: block\n", "    action: block\n    action: block\n"),
            9,
            "duplicate key",
        ),
        (lambda s: s + "  - [unclosed\n", 19, "flow sequence at line 18"),
        (
            lambda s: s.replace("facts.system_prompt_request\n", "facts.system_prompt_requestt\n"),
            16,
            "unknown fact",
        ),
        (
            lambda s: s.replace("when: facts.private_key", 'when: "facts.private_key and 1"'),
            9,
            "1 is int: compare it",
        ),
    ],
)
def test_errors_carry_file_and_line(mutate: object, line: int, message: str) -> None:
    text = mutate(GOOD)  # type: ignore[operator]
    with pytest.raises(PolicyError) as info:
        parse_policy_text(text, file="policies.yaml")
    err = info.value
    assert err.file == "policies.yaml"
    assert err.line == line, str(err)
    assert message in str(err)
    assert str(err).startswith(f"policies.yaml:{line}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty policy file"),
        ("- a\n- b\n", "must be a mapping"),
        ("version: 1\n", "no 'policies' list"),
        ("policies: []\n", "non-empty list"),
        ("policies:\n  - 3\n", "must be a mapping"),
    ],
)
def test_structural_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy_text(text, file="x.yaml")


def test_read_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as info:
        read_policy_file(missing)
    assert info.value.file == str(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("facts.private_key\n", "facts.nothing\n"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        read_policy_file(bad)
    assert info.value.file == str(bad) and info.value.line == 9


def test_default_policy_file_loads_and_covers_the_attack_families() -> None:
    policy_set = read_policy_file(None)
    assert policy_set.file == str(DEFAULT_POLICY_FILE)
    families = {p.family for p in policy_set}
    assert {
        "instruction_override",
        "system_prompt_exfiltration",
        "tool_abuse",
        "data_exfiltration",
        "secrets_pii",
        "roleplay_jailbreak",
        "rate_limit",
    } <= families
    assert {p.action for p in policy_set} == {Action.BLOCK, Action.ESCALATE}
