"""Static analysis of policy sets: dead, shadowed, duplicate, always-firing, contradictory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.errors import PolicyError
from app.verification.analysis import Level, analyze, check_policy_file, load_policies
from app.verification.policy import parse_policy_text


def policy_yaml(*entries: tuple[str, str, str]) -> str:
    lines = ["policies:"]
    for pid, action, when in entries:
        lines += [
            f"  - id: {pid}",
            "    description: test policy",
            "    severity: medium",
            f"    action: {action}",
            f"    when: '{when}'",
        ]
    return "\n".join(lines) + "\n"


def codes(text: str) -> list[tuple[str, str | None]]:
    report = analyze(parse_policy_text(text, file="t.yaml"))
    return sorted((f.code, f.policy) for f in report.findings)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # a clean set
        (
            [("a", "block", "facts.private_key"), ("b", "escalate", "facts.pii_count >= 5")],
            [],
        ),
        # a condition no input satisfies (contradiction inside), and its constant comparison
        (
            [("a", "block", "facts.email_count > 5 and facts.email_count < 3")],
            [("never-fires", "a")],
        ),
        (
            [("a", "block", "scores.screen_score > 1")],
            [("never-fires", "a")],
        ),
        # a dead branch of an or
        (
            [("a", "block", "facts.private_key or (facts.url_count > 2 and facts.url_count < 1)")],
            [("dead-branch", "a")],
        ),
        # comparisons that cannot go both ways in their domain
        (
            [("a", "block", "facts.private_key and scores.screen_score <= 1")],
            [("constant-comparison", "a")],
        ),
        (
            [("a", "escalate", "facts.private_key or facts.email_count < 0")],
            [("constant-comparison", "a"), ("dead-branch", "a")],
        ),
        # shadowed: whenever a fires, the stronger-or-equal b fires too
        (
            [
                ("a", "escalate", "facts.private_key and facts.url_payload"),
                ("b", "block", "facts.private_key"),
            ],
            [("shadowed", "a")],
        ),
        # not shadowed: the narrower policy has the stronger action
        (
            [
                ("a", "block", "facts.private_key and facts.url_payload"),
                ("b", "escalate", "facts.private_key"),
            ],
            [],
        ),
        # duplicates (same meaning, same action): reported once, on the later one
        (
            [("a", "block", "facts.email_count > 2"), ("b", "block", "not facts.email_count <= 2")],
            [("duplicate", "b")],
        ),
    ],
)
def test_warnings(entries: list[tuple[str, str, str]], expected: list[tuple[str, str]]) -> None:
    assert codes(policy_yaml(*entries)) == expected


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [("a", "block", "facts.email_count >= 0")],
            [("always-fires", "a"), ("constant-comparison", "a")],
        ),
        ([("a", "block", "facts.private_key or not facts.private_key")], [("always-fires", "a")]),
        (
            [("a", "block", "facts.private_key"), ("b", "escalate", "not facts.private_key")],
            [("contradictory-set", None)],
        ),
    ],
)
def test_errors(
    entries: list[tuple[str, str, str]], expected: list[tuple[str, str | None]]
) -> None:
    text = policy_yaml(*entries)
    assert codes(text) == expected
    report = analyze(parse_policy_text(text))
    assert not report.ok
    assert all(f.level is Level.ERROR for f in report.errors)


def test_findings_carry_file_and_line_and_print(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        policy_yaml(
            ("a", "block", "facts.private_key"),
            ("b", "escalate", "facts.private_key and facts.url_payload"),
        ),
        encoding="utf-8",
    )
    report = check_policy_file(path)
    assert report.ok and len(report.warnings) == 1
    finding = report.warnings[0]
    assert finding.file == str(path) and finding.line == 7 and finding.policy == "b"
    text = str(report)
    assert f"{path}:7: warning: [shadowed] b:" in text
    assert text.endswith("2 policies, 0 error(s), 1 warning(s)")


def test_check_policy_file_reports_load_errors_as_findings(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(policy_yaml(("a", "block", "facts.nope")), encoding="utf-8")
    report = check_policy_file(path)
    assert not report.ok
    (finding,) = report.errors
    assert finding.code == "invalid" and finding.line == 6
    assert "unknown fact 'facts.nope'" in finding.message
    assert str(finding).startswith(f"{path}:6: error: [invalid]")


def test_load_policies_raises_on_errors_and_logs_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(policy_yaml(("a", "block", "facts.email_count >= 0")), encoding="utf-8")
    with pytest.raises(PolicyError, match="always-fires") as info:
        load_policies(bad)
    assert info.value.file == str(bad) and info.value.line == 2
    warn = tmp_path / "warn.yaml"
    warn.write_text(policy_yaml(("a", "block", "scores.screen_score > 1")), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="app.verification.analysis"):
        policy_set = load_policies(warn)
    assert len(policy_set) == 1
    assert any("never-fires" in r.getMessage() for r in caplog.records)


def test_default_policy_set_is_clean() -> None:
    report = check_policy_file(None)
    assert report.findings == ()
    assert report.policies >= 20
