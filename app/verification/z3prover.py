"""The embedded prover: policy conditions in Z3, and decisions that depend on unknown facts.

`Z3Encoder` translates conditions into Z3 over one context: bool facts as Bool, int facts as
Int, real facts (scores) as Real, enum facts as an Int index; every unknown fact ranges over its
domain (counts >= 0, scores in [0, 1], enum index in range). Numbers enter Z3 as exact rationals
of their shortest decimal form, which orders floats exactly as Python does.

`Z3Prover.decide` discharges an obligation whose three-valued evaluation left some policies
unknown: it proves safety for every value of the unknowns (ALLOW), proves that a block policy
fires for every value (BLOCK), or returns a witness assignment under which some policy fires
(ESCALATE with the counterexample). A Z3 `unknown` answer raises `ProverTimeout`/`ProverError`;
the verifier turns those into ESCALATE (fail closed).

One `Z3Prover` owns one Z3 context and must not be used by two threads at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import z3

from app.errors import ProverError, ProverTimeout
from app.records import Action
from app.verification.facts import CATALOG, FactSpec, FactType, Value
from app.verification.logic import eval3
from app.verification.policy import And, Cmp, Const, Expr, Not, Op, Or, Policy, PolicySet, Ref, refs


def exact_rational(value: int | float) -> Fraction:
    """The rational a number stands for: ints exactly, floats by their shortest decimal repr."""
    if isinstance(value, bool):
        return Fraction(int(value))
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(float(value)))


class Z3Encoder:
    """Translates policy conditions and fact values into Z3 terms over one context."""

    def __init__(self, ctx: z3.Context | None = None):
        self.ctx = ctx if ctx is not None else z3.Context()
        self._vars: dict[str, Any] = {}
        self._domains: dict[str, Any] = {}

    def var(self, spec: FactSpec) -> Any:
        """The Z3 constant standing for a fact."""
        term = self._vars.get(spec.name)
        if term is None:
            if spec.type is FactType.BOOL:
                term = z3.Bool(spec.name, self.ctx)
            elif spec.type is FactType.REAL:
                term = z3.Real(spec.name, self.ctx)
            else:
                term = z3.Int(spec.name, self.ctx)
            self._vars[spec.name] = term
        return term

    def domain(self, spec: FactSpec) -> Any | None:
        """The domain constraint of a fact (None for bool facts)."""
        if spec.type is FactType.BOOL:
            return None
        if spec.name in self._domains:
            return self._domains[spec.name]
        term = self.var(spec)
        parts = []
        if spec.type is FactType.ENUM:
            parts = [term >= 0, term < len(spec.values)]
        else:
            if spec.lo is not None:
                parts.append(term >= self._number(spec.lo, spec.type is FactType.INT))
            if spec.hi is not None:
                parts.append(term <= self._number(spec.hi, spec.type is FactType.INT))
        constraint = z3.And(*parts) if len(parts) > 1 else (parts[0] if parts else None)
        self._domains[spec.name] = constraint
        return constraint

    def _number(self, value: int | float, as_int: bool) -> Any:
        rational = exact_rational(value)
        if as_int and rational.denominator == 1:
            return z3.IntVal(rational.numerator, self.ctx)
        return z3.RealVal(f"{rational.numerator}/{rational.denominator}", self.ctx)

    def value(self, spec: FactSpec, value: Value) -> Any:
        """A fact value as a Z3 literal of the fact's sort."""
        if spec.type is FactType.BOOL:
            return z3.BoolVal(bool(value), self.ctx)
        if spec.type is FactType.ENUM:
            return z3.IntVal(spec.values.index(str(value)), self.ctx)
        assert isinstance(value, int | float)
        return self._number(value, spec.type is FactType.INT)

    def equals(self, spec: FactSpec, value: Value) -> Any:
        """The constraint `fact == value`."""
        return self.var(spec) == self.value(spec, value)

    def _side(self, node: Ref | Const, other: Ref | Const) -> tuple[Any, bool]:
        """A comparison operand as a Z3 term, and whether it is integer-valued."""
        if isinstance(node, Ref):
            return self.var(node.spec), node.spec.type in (FactType.INT, FactType.ENUM)
        if node.type is FactType.BOOL:
            return z3.BoolVal(bool(node.value), self.ctx), False
        if node.type is FactType.ENUM:
            assert isinstance(other, Ref)
            return z3.IntVal(other.spec.values.index(str(node.value)), self.ctx), True
        assert isinstance(node.value, int | float)
        rational = exact_rational(node.value)
        return self._number(node.value, True), rational.denominator == 1

    def encode(self, node: Expr) -> Any:
        """A policy condition as a Z3 Bool term."""
        if isinstance(node, Cmp):
            left, left_int = self._side(node.left, node.right)
            right, right_int = self._side(node.right, node.left)
            if not (left_int and right_int) and z3.is_arith(left) and z3.is_arith(right):
                if z3.is_int(left):
                    left = z3.ToReal(left)
                if z3.is_int(right):
                    right = z3.ToReal(right)
            op = node.op
            if op is Op.EQ:
                return left == right
            if op is Op.NE:
                return left != right
            if op is Op.LT:
                return left < right
            if op is Op.LE:
                return left <= right
            if op is Op.GT:
                return left > right
            return left >= right
        if isinstance(node, And):
            return z3.And(*[self.encode(a) for a in node.args])
        if isinstance(node, Or):
            return z3.Or(*[self.encode(a) for a in node.args])
        if isinstance(node, Not):
            return z3.Not(self.encode(node.arg))
        if isinstance(node, Ref):
            return self.var(node.spec)
        return z3.BoolVal(bool(node.value), self.ctx)

    def model_value(self, spec: FactSpec, model: Any) -> Value:
        """The value a Z3 model gives a fact (completed when the model leaves it free)."""
        term = model.eval(self.var(spec), model_completion=True)
        if spec.type is FactType.BOOL:
            return bool(z3.is_true(term))
        if spec.type is FactType.ENUM:
            return spec.values[term.as_long()]
        if spec.type is FactType.INT:
            return int(term.as_long())
        rational = term.as_fraction()
        return float(rational)


@dataclass(frozen=True, slots=True)
class ProofResult:
    """What a prover concluded about one obligation."""

    action: Action
    violated: tuple[str, ...]
    reasons: tuple[str, ...]
    proof: str | None
    counterexample: dict[str, Any] | None


def _names(policies: Iterable[Policy]) -> str:
    return ", ".join(p.id for p in policies)


class Z3Prover:
    """Decides obligations that depend on unknown facts, with one private Z3 context."""

    name = "z3"

    def __init__(self, policies: PolicySet):
        self.encoder = Z3Encoder(z3.Context())
        self.ctx = self.encoder.ctx
        self._formula = {p.id: self.encoder.encode(p.when) for p in policies}
        self._facts = {p.id: tuple(sorted({r.name for r in refs(p.when)})) for p in policies}
        self._policies = tuple(policies)
        self.solver = z3.Solver(ctx=self.ctx)

    def interrupt(self) -> None:
        """Ask a running check to stop (safe to call from another thread)."""
        self.ctx.interrupt()

    def _check(self, query: Any, timeout_ms: int) -> tuple[Any, Any]:
        self.solver.push()
        try:
            self.solver.add(query)
            self.solver.set("timeout", max(1, int(timeout_ms)))
            result = self.solver.check()
            if result == z3.unknown:
                why = self.solver.reason_unknown()
                if any(w in why for w in ("timeout", "canceled", "interrupted", "resource")):
                    raise ProverTimeout(f"z3: {why}")
                raise ProverError(f"z3 answered unknown: {why}")
            model = self.solver.model() if result == z3.sat else None
            return result, model
        finally:
            self.solver.pop()

    def decide(
        self,
        facts: Mapping[str, Value | None],
        undecided: Sequence[Policy],
        definite: Sequence[Policy],
        timeout_ms: int,
    ) -> ProofResult:
        """Decide an obligation: `undecided` policies are unknown under `facts`, `definite` fire.

        The caller has already returned BLOCK when a block policy fires definitely, so every
        policy in `definite` has action ESCALATE. Raises `ProverTimeout` when interrupted or out
        of time, `ProverError` on any other Z3 failure.
        """
        try:
            return self._decide(facts, undecided, definite, timeout_ms)
        except z3.Z3Exception as exc:
            message = str(exc.value if hasattr(exc, "value") else exc)
            if "cancel" in message or "interrupt" in message or "timeout" in message:
                raise ProverTimeout(f"z3: {message}") from exc
            raise ProverError(f"z3: {message}") from exc

    def _decide(
        self,
        facts: Mapping[str, Value | None],
        undecided: Sequence[Policy],
        definite: Sequence[Policy],
        timeout_ms: int,
    ) -> ProofResult:
        cone = sorted({name for p in undecided for name in self._facts[p.id]})
        unknown = [name for name in cone if facts.get(name) is None]
        background = []
        for name in cone:
            spec = CATALOG[name]
            value = facts.get(name)
            if value is None:
                domain = self.encoder.domain(spec)
                if domain is not None:
                    background.append(domain)
            else:
                background.append(self.encoder.equals(spec, value))
        blockers = [p for p in undecided if p.action is Action.BLOCK]
        unknown_text = "{" + ", ".join(unknown) + "}"
        self.solver.push()
        try:
            self.solver.add(*background)
            witness = None
            if blockers:
                any_block = z3.Or(*[self._formula[p.id] for p in blockers])
                result, witness = self._check(any_block, timeout_ms)
                if result == z3.sat:
                    forced, _ = self._check(z3.Not(any_block), timeout_ms)
                    if forced == z3.unsat:
                        violated = tuple(p.id for p in definite) + tuple(p.id for p in blockers)
                        return ProofResult(
                            Action.BLOCK,
                            violated,
                            (
                                f"for every value of {unknown_text} a block policy fires: "
                                + _names(blockers),
                            ),
                            f"unsat: no assignment of {unknown_text} within their domains avoids "
                            f"all of {_names(blockers)}",
                            None,
                        )
            if witness is None:
                others = [p for p in undecided if p.action is not Action.BLOCK]
                if others:
                    result, witness = self._check(
                        z3.Or(*[self._formula[p.id] for p in others]), timeout_ms
                    )
                if witness is None:
                    proof = (
                        f"unsat: no assignment of {unknown_text} within their domains violates "
                        f"{_names(undecided)}"
                    )
                    if definite:
                        return ProofResult(
                            Action.ESCALATE,
                            tuple(p.id for p in definite),
                            tuple(f"{p.id} fires ({p.action.value.lower()})" for p in definite),
                            proof,
                            None,
                        )
                    return ProofResult(
                        Action.ALLOW,
                        (),
                        ("no policy can fire for any value of the unknown facts",),
                        proof,
                        None,
                    )
            return self._counterexample(facts, unknown, witness, definite)
        finally:
            self.solver.pop()

    def _counterexample(
        self,
        facts: Mapping[str, Value | None],
        unknown: Sequence[str],
        model: Any,
        definite: Sequence[Policy],
    ) -> ProofResult:
        assignment = {name: self.encoder.model_value(CATALOG[name], model) for name in unknown}
        completed = dict(facts)
        completed.update(assignment)
        fired = [p for p in self._policies if eval3(p.when, completed) is True]
        violated = tuple(dict.fromkeys([p.id for p in definite] + [p.id for p in fired]))
        shown = ", ".join(f"{k}={v!r}" for k, v in assignment.items())
        reasons = tuple(f"{p.id} fires ({p.action.value.lower()})" for p in definite) + (
            f"may violate {', '.join(p.id for p in fired)} when {shown}",
        )
        return ProofResult(
            Action.ESCALATE,
            violated,
            reasons,
            None,
            {"assignment": assignment, "violated": [p.id for p in fired]},
        )
