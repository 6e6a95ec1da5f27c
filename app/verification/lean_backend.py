"""The Lean 4 backend: an obligation as a Lean file against the model in `lean/`, checked by `lean`.

`render_obligation` is pure: it numbers the facts the policies reference, writes the known ones
as `some v` and the unknown ones as `none`, writes every policy condition as an `Aimds.Expr`
term, and states the three-valued decision as `theorem decision : decideObligation facts
policies = .X := by decide`. For BLOCK and ALLOW it also states what the decision means for every
completion of the unknown facts, proved by the model's `block_sound` / `allow_sound` theorems.

Numbers become natural numbers: every number of the obligation (fact values and constants) is
multiplied by the least common denominator of their exact rationals, which preserves order and
equality, so the Lean evaluation agrees with the Python one. Enum members become their index.

`LeanBackend.check` runs `lake env lean FILE` in the Lean project (or `lean FILE` with
`LEAN_PATH` pointing at the built library) when a `lean` binary is on PATH; without one,
`available` is False and nothing runs.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from app.errors import ProverError, ProverTimeout
from app.records import Action
from app.verification.facts import CATALOG, FactType, Value
from app.verification.policy import And, Cmp, Const, Expr, Not, Op, Or, PolicySet, Ref
from app.verification.z3prover import exact_rational

DEFAULT_PROJECT = Path(__file__).resolve().parents[2] / "lean"

_OPS = {Op.EQ: "eq", Op.NE: "ne", Op.LT: "lt", Op.LE: "le", Op.GT: "gt", Op.GE: "ge"}
_DECISION = {Action.ALLOW: "allow", Action.ESCALATE: "escalate", Action.BLOCK: "block"}


def _lean_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _Renderer:
    def __init__(self, policies: PolicySet, facts: Mapping[str, Value | None]):
        self.policies = policies
        self.names = list(policies.facts())
        self.index = {name: i for i, name in enumerate(self.names)}
        self.facts = facts
        numbers: list[Fraction] = []
        for name in self.names:
            value = facts.get(name)
            if value is not None and CATALOG[name].numeric:
                assert isinstance(value, int | float)
                numbers.append(exact_rational(value))
        for policy in policies:
            numbers.extend(self._constants(policy.when))
        self.scale = 1
        for number in numbers:
            self.scale = self.scale * number.denominator // math.gcd(self.scale, number.denominator)

    def _constants(self, node: Expr) -> list[Fraction]:
        if isinstance(node, Cmp):
            return [
                exact_rational(side.value)
                for side in (node.left, node.right)
                if isinstance(side, Const)
                and side.type in (FactType.INT, FactType.REAL)
                and isinstance(side.value, int | float)
            ]
        if isinstance(node, Not):
            return self._constants(node.arg)
        if isinstance(node, And | Or):
            return [c for arg in node.args for c in self._constants(arg)]
        return []

    def nat(self, value: int | float) -> int:
        scaled = exact_rational(value) * self.scale
        assert scaled.denominator == 1 and scaled >= 0
        return int(scaled)

    def value(self, name: str, value: Value) -> str:
        spec = CATALOG[name]
        if spec.type is FactType.BOOL:
            return f".bool {'true' if value else 'false'}"
        if spec.type is FactType.ENUM:
            return f".sym {spec.values.index(str(value))}"
        assert isinstance(value, int | float)
        return f".num {self.nat(value)}"

    def term(self, side: Ref | Const, other: Ref | Const) -> str:
        if isinstance(side, Ref):
            return f"(.fact {self.index[side.name]})"
        if side.type is FactType.BOOL:
            return f"(.lit (.bool {'true' if side.value else 'false'}))"
        if side.type is FactType.ENUM:
            assert isinstance(other, Ref)
            return f"(.lit (.sym {other.spec.values.index(str(side.value))}))"
        assert isinstance(side.value, int | float)
        return f"(.lit (.num {self.nat(side.value)}))"

    def expr(self, node: Expr) -> str:
        if isinstance(node, Ref):
            return f".fact {self.index[node.name]}"
        if isinstance(node, Const):
            return f".lit {'true' if node.value else 'false'}"
        if isinstance(node, Cmp):
            left = self.term(node.left, node.right)
            right = self.term(node.right, node.left)
            return f".cmp .{_OPS[node.op]} {left} {right}"
        if isinstance(node, Not):
            return f".neg ({self.expr(node.arg)})"
        ctor = ".conj" if isinstance(node, And) else ".disj"
        args = [self.expr(a) for a in node.args]
        out = args[-1]
        for arg in reversed(args[:-1]):
            out = f"{ctor} ({arg}) ({out})"
        return out


def namespace_for(obligation_hash: str) -> str:
    """The Lean namespace of an obligation file."""
    return f"AimdsObligation_{obligation_hash[:16]}"


def render_obligation(
    policies: PolicySet,
    facts: Mapping[str, Value | None],
    decision: Action,
    *,
    obligation_hash: str,
) -> str:
    """The Lean 4 text stating that the model decides `decision` for these facts and policies."""
    r = _Renderer(policies, facts)
    ns = namespace_for(obligation_hash)
    lines = [
        "import AimdsPolicy",
        "",
        f"-- AIMDS verification obligation {obligation_hash}",
        "-- generated by app/verification/lean_backend.py; checked against the model in lean/",
        "",
        f"namespace {ns}",
        "",
        "/-- The facts the policies reference (`none` = unknown). Index: name = value.",
    ]
    for name in r.names:
        value = facts.get(name)
        lines.append(f"  {r.index[name]}: {name} = {'unknown' if value is None else repr(value)}")
    lines.append(f"  Numbers are exact rationals scaled by {r.scale} to naturals. -/")
    entries = []
    for name in r.names:
        value = facts.get(name)
        entries.append("none" if value is None else f"some ({r.value(name, value)})")
    lines.append("def facts : Aimds.PFacts := Aimds.lookup [")
    lines.extend(
        f"  {entry}{',' if i < len(entries) - 1 else ''}" for i, entry in enumerate(entries)
    )
    lines.append("]")
    lines.append("")
    lines.append("/-- The policy set, in file order. -/")
    lines.append("def policies : List Aimds.Policy := [")
    for i, policy in enumerate(policies):
        sep = "," if i < len(policies) - 1 else ""
        response = "block" if policy.action is Action.BLOCK else "escalate"
        lines.append(f"  -- {policy.source}")
        lines.append(
            f"  {{ name := {_lean_string(policy.id)}, response := .{response},\n"
            f"    trigger := {r.expr(policy.when)} }}{sep}"
        )
    lines.append("]")
    lines.append("")
    lines.append("set_option maxRecDepth 8192 in")
    lines.append("theorem decision :")
    lines.append(f"    Aimds.decideObligation facts policies = .{_DECISION[decision]} := by decide")
    if decision is Action.BLOCK:
        lines += [
            "",
            "/-- BLOCK: every completion of the unknown facts violates a block policy. -/",
            "theorem meaning : ∀ env : Aimds.Env, Aimds.Completes facts env →",
            "    ∃ p : Aimds.Policy, p ∈ policies ∧ p.response = .block ∧",
            "      p.trigger.eval env = true :=",
            "  fun _ hc => Aimds.block_sound decision hc",
        ]
    elif decision is Action.ALLOW:
        lines += [
            "",
            "/-- ALLOW: for every completion of the unknown facts every policy holds. -/",
            "theorem meaning : ∀ env : Aimds.Env, Aimds.Completes facts env →",
            "    ∀ p : Aimds.Policy, p ∈ policies → p.trigger.eval env = false :=",
            "  fun _ hc => Aimds.allow_sound decision hc",
        ]
    lines += ["", f"end {ns}", ""]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class LeanResult:
    """The outcome of checking one obligation file with Lean."""

    ok: bool
    output: str
    elapsed_s: float
    command: tuple[str, ...]


class LeanBackend:
    """Checks obligations with a local Lean 4 toolchain against the model in `lean/`."""

    name = "lean"

    def __init__(
        self,
        *,
        project_dir: str | Path = DEFAULT_PROJECT,
        lean_bin: str | None = None,
        lake_bin: str | None = None,
        timeout_s: float = 60.0,
    ):
        self.project_dir = Path(project_dir)
        self.lean_bin = lean_bin if lean_bin is not None else shutil.which("lean")
        self.lake_bin = lake_bin if lake_bin is not None else shutil.which("lake")
        self.timeout_s = timeout_s

    @property
    def available(self) -> bool:
        """True when a `lean` binary was found."""
        return self.lean_bin is not None

    def _command(self, file: Path) -> tuple[tuple[str, ...], dict[str, str] | None]:
        if self.lake_bin is not None:
            return (self.lake_bin, "env", self.lean_bin or "lean", str(file)), None
        assert self.lean_bin is not None
        env = dict(os.environ)
        libs = [
            self.project_dir / ".lake" / "build" / "lib" / "lean",
            self.project_dir / ".lake" / "build" / "lib",
        ]
        env["LEAN_PATH"] = os.pathsep.join(str(p) for p in libs)
        return (self.lean_bin, str(file)), env

    def build(self) -> LeanResult:
        """Run `lake build` in the Lean project (needed once before `check`)."""
        if self.lake_bin is None:
            raise ProverError("lake is not on PATH: cannot build the Lean model")
        return self._run((self.lake_bin, "build"), None, self.timeout_s * 10)

    def check(self, text: str, *, timeout_s: float | None = None) -> LeanResult:
        """Check one obligation file's text with Lean; `ok` is True when it compiles."""
        if not self.available:
            raise ProverError("no lean binary on PATH")
        with tempfile.TemporaryDirectory(prefix="aimds-lean-") as tmp:
            file = Path(tmp) / "Obligation.lean"
            file.write_text(text, encoding="utf-8")
            command, env = self._command(file)
            return self._run(command, env, timeout_s if timeout_s is not None else self.timeout_s)

    def _run(
        self, command: tuple[str, ...], env: dict[str, str] | None, timeout_s: float
    ) -> LeanResult:
        start = time.perf_counter()
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command,
                cwd=self.project_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProverTimeout(f"lean did not finish within {timeout_s:.1f}s") from exc
        except OSError as exc:
            raise ProverError(f"cannot run lean: {exc}") from exc
        output = (done.stdout + done.stderr).strip()
        return LeanResult(done.returncode == 0, output, time.perf_counter() - start, command)
