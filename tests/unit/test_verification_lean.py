"""The Lean backend (rendering, golden files, optional real `lean` runs) and the Lean sources.

Golden files live in tests/unit/golden/; regenerate them after an intended change with
`AIMDS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_verification_lean.py`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from app.errors import ProverError
from app.records import Action
from app.verification import LeanBackend, MemoryProofCache, Subject, Verifier
from app.verification.analysis import load_policies
from app.verification.facts import extract_facts
from app.verification.lean_backend import DEFAULT_PROJECT, render_obligation
from app.verification.logic import three_valued_decision
from app.verification.policy import parse_policy_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
LEAN_DIR = ROOT / "lean"
DOCS = ROOT / "docs" / "verification.md"

SMALL = parse_policy_text(
    """
thresholds: {similar: 0.85}
policies:
  - id: secrets.private_key
    description: a private key
    severity: critical
    action: block
    when: facts.private_key
  - id: exfil.similar_not_system
    description: "similar to an attack, and not from the system"
    severity: high
    action: escalate
    when: scores.pattern_similarity >= thresholds.similar and not facts.role in ["system", "tool"]
  - id: rate.burst
    description: too fast
    severity: medium
    action: escalate
    when: session.prompts_1m > 30 or session.probing > 0
""",
    file="small.yaml",
)

QUIET = {
    "prompts_1m": 3,
    "repeat_near": 0,
    "probing": 0,
    "escalation": 0.1,
    "bot_regularity": 0.2,
    "blocked_recent": 0,
}


def _facts(text: str, **kw: object) -> dict[str, object]:
    subj = Subject(
        text=text,
        views=(text,),
        scores=kw.get("scores", {"screen.score": 0.4, "pattern.similarity": 0.3}),  # type: ignore[arg-type]
        categories=(),
        session=kw.get("session", QUIET),  # type: ignore[arg-type]
        role=kw.get("role", "user"),  # type: ignore[arg-type]
    )
    return dict(extract_facts(subj).values)


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAx3kU8vB2pL9qR4sT6uW8yZ0aC2eG4iK6mO8qS0uW2yA4cE6g\n"
)

CASES = {
    "small_block": (SMALL, lambda: _facts(PEM)),
    "small_allow_with_unknowns": (
        SMALL,
        lambda: _facts("What is 2 + 2?", scores={"pattern.similarity": 0.3}, role=None),
    ),
    "small_escalate_unknown_similarity": (SMALL, lambda: _facts("hello", scores={}, role="user")),
    "default_escalate_unknown_session": (None, lambda: _facts("What is 2 + 2?", session={})),
    "default_block_card": (None, lambda: _facts("card 4539 1488 0343 6467")),
}


def _render(name: str) -> str:
    policy_set, make = CASES[name]
    policy_set = policy_set if policy_set is not None else load_policies()
    facts = make()
    decision = three_valued_decision(policy_set, facts)  # type: ignore[arg-type]
    return render_obligation(policy_set, facts, decision, obligation_hash=f"{name:0<64}"[:64])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_obligations(name: str) -> None:
    text = _render(name)
    path = GOLDEN / f"{name}.lean"
    if os.environ.get("AIMDS_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with AIMDS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "decision"),
    [
        ("small_block", "block"),
        ("small_allow_with_unknowns", "allow"),
        ("small_escalate_unknown_similarity", "escalate"),
        ("default_escalate_unknown_session", "escalate"),
        ("default_block_card", "block"),
    ],
)
def test_rendered_decision_and_meaning(name: str, decision: str) -> None:
    text = _render(name)
    assert text.startswith("import AimdsPolicy\n")
    assert f"Aimds.decideObligation facts policies = .{decision} := by decide" in text
    assert ("theorem meaning" in text) is (decision != "escalate")
    assert "sorry" not in text


def test_rendering_scales_numbers_and_numbers_enums() -> None:
    facts = {
        "facts.private_key": False,
        "scores.pattern_similarity": 0.3,
        "facts.role": "tool",
        "session.prompts_1m": 31,
        "session.probing": None,
    }
    text = render_obligation(SMALL, facts, Action.ESCALATE, obligation_hash="a" * 64)
    # common denominator of 0.3 (3/10) and 0.85 (17/20) is 20: 0.3 -> 6, 0.85 -> 17, 31 -> 620
    assert "scaled by 20" in text
    assert "some (.num 6)" in text and "(.lit (.num 17))" in text and "some (.num 620)" in text
    assert "(.lit (.num 600))" in text  # the constant 30
    assert "some (.sym 3)" in text  # "tool" is the 4th role
    assert "(.lit (.sym 1))" in text and "(.lit (.sym 3))" in text  # "system", "tool"
    assert text.count("  none") == 1  # session.probing unknown
    assert "namespace AimdsObligation_aaaaaaaaaaaaaaaa" in text


def test_policy_names_are_escaped() -> None:
    from app.verification.lean_backend import _lean_string

    assert _lean_string('a"b\\c') == '"a\\"b\\\\c"'


def _qualified_theorems() -> set[str]:
    names: set[str] = set()
    for path in sorted(LEAN_DIR.rglob("*.lean")):
        if ".lake" in path.parts:
            continue
        stack: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if m := re.match(r"namespace\s+(\S+)", stripped):
                stack.append(m.group(1))
            elif m := re.match(r"end\s+(\S+)", stripped):
                if stack and stack[-1] == m.group(1):
                    stack.pop()
            elif m := re.match(r"theorem\s+(\S+)", stripped):
                names.add(".".join([*stack, m.group(1)]))
    return names


def test_lean_sources_have_no_sorry_admit_or_axiom() -> None:
    files = [p for p in LEAN_DIR.rglob("*.lean") if ".lake" not in p.parts]
    assert {p.name for p in files} >= {
        "Model.lean",
        "Theorems.lean",
        "Examples.lean",
        "lakefile.lean",
    }
    for path in files:
        text = path.read_text(encoding="utf-8")
        for word in ("sorry", "admit", "axiom", "native_decide", "unsafe", "implemented_by"):
            assert not re.search(rf"\b{word}\b", text), f"{path.name} contains {word}"
    toolchain = (LEAN_DIR / "lean-toolchain").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"leanprover/lean4:v4\.\d+\.\d+", toolchain)


def test_every_theorem_listed_in_the_docs_exists() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    section = docs.split("<!-- theorems:begin -->", 1)[1].split("<!-- theorems:end -->", 1)[0]
    listed = re.findall(r"^\|\s*`(Aimds\.[\w.]+)`", section, flags=re.MULTILINE)
    assert len(listed) >= 10
    defined = _qualified_theorems()
    missing = [name for name in listed if name not in defined]
    assert not missing, f"listed in docs but not proved in lean/: {missing}"
    main = {
        "Aimds.Expr.eval3_agrees",
        "Aimds.block_iff_definite_violation",
        "Aimds.block_mono_cons",
        "Aimds.add_violated_not_allow",
        "Aimds.allow_sound",
    }
    assert main <= set(listed)


def test_ci_workflow_builds_the_lean_project() -> None:
    workflow = (ROOT / ".github" / "workflows" / "lean.yml").read_text(encoding="utf-8")
    assert "elan-init.sh" in workflow and "lake build" in workflow
    assert "working-directory: lean" in workflow
    assert "tests/unit/golden" in workflow


def test_backend_finds_lean_on_path_or_reports_unavailable(tmp_path: Path) -> None:
    assert LeanBackend().available is (shutil.which("lean") is not None)
    assert LeanBackend(lean_bin=str(tmp_path / "lean")).available
    with pytest.raises(ProverError, match="no lean binary"):
        backend = LeanBackend(lean_bin=None)
        backend.lean_bin = None
        backend.check("import AimdsPolicy\n")


NO_LEAN = (
    "no `lean` binary on PATH (no Lean toolchain on this machine; "
    "CI builds lean/ on a hosted runner)"
)


@pytest.fixture(scope="module")
def built_backend() -> LeanBackend:
    backend = LeanBackend(project_dir=DEFAULT_PROJECT, timeout_s=600)
    if backend.lake_bin is not None:
        result = backend.build()
        assert result.ok, result.output
    return backend


@pytest.mark.lean
@pytest.mark.skipif(shutil.which("lean") is None, reason=NO_LEAN)
@pytest.mark.parametrize("name", sorted(CASES))
def test_lean_checks_golden_obligations(built_backend: LeanBackend, name: str) -> None:
    result = built_backend.check(_render(name))
    assert result.ok, result.output


@pytest.mark.lean
@pytest.mark.skipif(shutil.which("lean") is None, reason=NO_LEAN)
def test_lean_rejects_a_wrong_decision(built_backend: LeanBackend) -> None:
    facts = _facts(PEM)
    wrong = render_obligation(SMALL, facts, Action.ALLOW, obligation_hash="b" * 64)  # type: ignore[arg-type]
    assert not built_backend.check(wrong).ok


@pytest.mark.lean
@pytest.mark.skipif(shutil.which("lean") is None, reason=NO_LEAN)
def test_verifier_with_real_lean(built_backend: LeanBackend) -> None:
    with Verifier(policies=SMALL, cache=MemoryProofCache(), lean=built_backend, timeout_s=120) as v:
        outcome = v.verify(Subject(PEM, (PEM,), {"pattern.similarity": 0.1}, (), QUIET, "user"))
    assert outcome.action is Action.BLOCK and outcome.prover == "lean"
