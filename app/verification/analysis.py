"""Static analysis of a policy set with Z3, and the loaders that run it.

Checks, over every value of every fact within its domain:
- error `always-fires`: a policy violated by every input (it would block or escalate all traffic);
- error `contradictory-set`: no input satisfies every policy at once (Safe is unsatisfiable);
- warning `never-fires`: a condition no input can make true (dead policy);
- warning `dead-branch`: a top-level `or` branch that can never be true (a contradiction inside);
- warning `constant-comparison`: a comparison that is always true or always false in its domain;
- warning `shadowed`/`duplicate`: whenever the policy fires, another with an equal or stronger
  action fires too, so it never changes a decision.

`load_policies` parses, type-checks and analyses: errors raise `PolicyError`, warnings are logged.
`check_policy_file` returns the report instead (for `aimds policies check FILE`).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import z3

from app.errors import PolicyError
from app.records import Action
from app.verification.facts import CATALOG
from app.verification.policy import (
    Cmp,
    Expr,
    Not,
    Or,
    Policy,
    PolicySet,
    read_policy_file,
    render,
)
from app.verification.z3prover import Z3Encoder

log = logging.getLogger(__name__)

_RANK = {Action.ALLOW: 0, Action.ESCALATE: 1, Action.BLOCK: 2}


class Level(enum.StrEnum):
    """How serious a finding is: errors stop start-up, warnings are logged."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a policy set."""

    level: Level
    code: str
    message: str
    policy: str | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = (
            f"{self.file}:{self.line}: "
            if self.line is not None
            else (f"{self.file}: " if self.file else "")
        )
        subject = f"{self.policy}: " if self.policy else ""
        return f"{where}{self.level.value}: [{self.code}] {subject}{self.message}"


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    """The findings of a static analysis run over one policy file."""

    file: str
    policies: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings that stop start-up."""
        return tuple(f for f in self.findings if f.level is Level.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Findings that are only logged."""
        return tuple(f for f in self.findings if f.level is Level.WARNING)

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def __str__(self) -> str:
        lines = [str(f) for f in self.findings]
        lines.append(
            f"{self.file}: {self.policies} policies, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        )
        return "\n".join(lines)


class _Analyzer:
    def __init__(self, policy_set: PolicySet, timeout_ms: int):
        self.set = policy_set
        self.encoder = Z3Encoder(z3.Context())
        self.solver = z3.Solver(ctx=self.encoder.ctx)
        self.solver.set("timeout", timeout_ms)
        for name in policy_set.facts():
            domain = self.encoder.domain(CATALOG[name])
            if domain is not None:
                self.solver.add(domain)
        self.findings: list[Finding] = []

    def sat(self, *query: Any) -> bool | None:
        self.solver.push()
        try:
            self.solver.add(*query)
            result = self.solver.check()
        finally:
            self.solver.pop()
        if result == z3.unknown:
            return None
        return bool(result == z3.sat)

    def add(self, level: Level, code: str, message: str, policy: Policy | None = None) -> None:
        self.findings.append(
            Finding(
                level,
                code,
                message,
                policy.id if policy else None,
                self.set.file,
                policy.line if policy else None,
            )
        )

    def run(self) -> AnalysisReport:
        formulas = {p.id: self.encoder.encode(p.when) for p in self.set}
        live: list[Policy] = []
        always = False
        for policy in self.set:
            formula = formulas[policy.id]
            can_fire = self.sat(formula)
            can_hold = self.sat(z3.Not(formula))
            if can_fire is None or can_hold is None:
                self.add(
                    Level.WARNING,
                    "undecided",
                    "Z3 could not analyse this condition in time",
                    policy,
                )
                continue
            if not can_hold:
                always = True
                self.add(
                    Level.ERROR,
                    "always-fires",
                    f"violated by every input: it would {policy.action.value.lower()} all traffic",
                    policy,
                )
            if not can_fire:
                self.add(
                    Level.WARNING, "never-fires", f"can never fire: {render(policy.when)}", policy
                )
                continue
            live.append(policy)
            self._branches(policy)
            self._atoms(policy)
        if not always and self.sat(*[z3.Not(f) for f in formulas.values()]) is False:
            self.add(Level.ERROR, "contradictory-set", "no input satisfies every policy at once")
        self._shadowing(live, formulas)
        return AnalysisReport(self.set.file, len(self.set), tuple(self.findings))

    def _branches(self, policy: Policy) -> None:
        if not isinstance(policy.when, Or):
            return
        for branch in policy.when.args:
            if self.sat(self.encoder.encode(branch)) is False:
                self.add(
                    Level.WARNING,
                    "dead-branch",
                    f"contradictory branch never true: {render(branch)}",
                    policy,
                )

    def _atoms(self, policy: Policy) -> None:
        seen: set[str] = set()
        for atom in _comparisons(policy.when):
            text = render(atom)
            if text in seen:
                continue
            seen.add(text)
            formula = self.encoder.encode(atom)
            if self.sat(formula) is False:
                self.add(
                    Level.WARNING,
                    "constant-comparison",
                    f"always false in its domain: {text}",
                    policy,
                )
            elif self.sat(z3.Not(formula)) is False:
                self.add(
                    Level.WARNING,
                    "constant-comparison",
                    f"always true in its domain: {text}",
                    policy,
                )

    def _shadowing(self, live: list[Policy], formulas: dict[str, Any]) -> None:
        reported: set[frozenset[str]] = set()
        for p in live:
            for q in live:
                if p is q or _RANK[q.action] < _RANK[p.action]:
                    continue
                if self.sat(formulas[p.id], z3.Not(formulas[q.id])) is not False:
                    continue
                pair = frozenset((p.id, q.id))
                equivalent = (
                    q.action is p.action
                    and self.sat(formulas[q.id], z3.Not(formulas[p.id])) is False
                )
                if equivalent:
                    if pair in reported:
                        continue
                    reported.add(pair)
                    later, earlier = (p, q) if p.line > q.line else (q, p)
                    self.add(
                        Level.WARNING,
                        "duplicate",
                        f"fires exactly when {earlier.id} does (same action): remove one",
                        later,
                    )
                else:
                    self.add(
                        Level.WARNING,
                        "shadowed",
                        f"never changes a decision: whenever it fires, "
                        f"{q.id} ({q.action.value.lower()}) fires too",
                        p,
                    )


def _comparisons(node: Expr) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    if isinstance(node, Not):
        return _comparisons(node.arg)
    if hasattr(node, "args"):
        return [c for arg in node.args for c in _comparisons(arg)]
    return []


def analyze(policy_set: PolicySet, *, timeout_ms: int = 5000) -> AnalysisReport:
    """Run every static check on a loaded policy set."""
    return _Analyzer(policy_set, timeout_ms).run()


def check_policy_file(path: str | Path | None) -> AnalysisReport:
    """Load, type-check and analyse a policy file; problems are findings, never exceptions."""
    target = str(path) if path is not None else "<default>"
    try:
        policy_set = read_policy_file(path)
    except PolicyError as exc:
        message = str(exc)
        prefix = f"{exc.file}:{exc.line}: " if exc.line is not None else f"{exc.file}: "
        message = message.removeprefix(prefix)
        finding = Finding(Level.ERROR, "invalid", message, None, exc.file or target, exc.line)
        return AnalysisReport(exc.file or target, 0, (finding,))
    return analyze(policy_set)


def load_policies(path: str | Path | None = None) -> PolicySet:
    """Load the policies to serve (None = packaged default): errors raise, warnings are logged."""
    policy_set = read_policy_file(path)
    report = analyze(policy_set)
    for finding in report.warnings:
        log.warning("policy analysis: %s", finding)
    if report.errors:
        first = report.errors[0]
        details = "; ".join(str(f) for f in report.errors)
        raise PolicyError(f"policy analysis failed: {details}", file=first.file, line=first.line)
    log.info(
        "loaded %d policies from %s (digest %s)",
        len(policy_set),
        policy_set.file,
        policy_set.digest[:12],
    )
    return policy_set


__all__ = [
    "AnalysisReport",
    "Finding",
    "Level",
    "analyze",
    "check_policy_file",
    "load_policies",
]
