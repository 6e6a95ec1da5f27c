"""Verification orchestration: facts, obligation, provers, cache, timeout and the audit trail.

`Verifier.verify(subject)` extracts the facts, evaluates every policy three-valued, and decides:

1. a block policy fires on definite facts            -> BLOCK    (prover "three-valued")
2. no policy is unknown: some escalate policy fires  -> ESCALATE (prover "three-valued")
                         none fires                  -> ALLOW    (prover "three-valued")
3. some policy depends on unknown facts: the proof cache, else Z3 decides (prover "z3"):
   safe for every value of the unknowns -> ALLOW (or ESCALATE if an escalate policy fires);
   a block policy fires for every value -> BLOCK; otherwise ESCALATE with the counterexample.

Precedence is BLOCK > ESCALATE > ALLOW. Z3 runs in a worker thread under a wall-clock budget
(`timeout_s`, also passed to Z3 as its timeout): past it the call is interrupted and the
decision is ESCALATE with reason "timeout". Any failure fails closed to ESCALATE; `verify`
never raises. With a `LeanBackend` whose `lean` binary is present, three-valued decisions are
re-checked in Lean (prover "lean"); a Lean failure also escalates.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import ProverError, ProverTimeout
from app.records import Action
from app.verification.cache import ProofCache
from app.verification.facts import FactSet, Subject, Value, extract_facts
from app.verification.lean_backend import LeanBackend, namespace_for, render_obligation
from app.verification.logic import eval3
from app.verification.policy import Policy, PolicySet
from app.verification.z3prover import ProofResult, Z3Prover

log = logging.getLogger(__name__)

#: bump when the meaning of a cached proof changes (facts, encoding or decision rule)
ENGINE_VERSION = "aimds-verify/1"


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """How one policy evaluated three-valued on the extracted facts."""

    id: str
    action: Action
    severity: str
    status: str  # "violated" | "holds" | "unknown"
    description: str


@dataclass(frozen=True, slots=True)
class VerificationOutcome:
    """The final decision on one obligation, with its proof or counterexample."""

    action: Action
    violated: tuple[str, ...]
    reasons: tuple[str, ...]
    prover: str
    proof: str | None
    counterexample: dict[str, Any] | None
    facts: dict[str, Value | None]
    obligation_hash: str
    elapsed_us: int
    cached: bool
    checks: tuple[PolicyCheck, ...] = ()
    policy_set: str = ""
    notes: tuple[str, ...] = ()
    referenced: tuple[str, ...] = field(default=())

    def audit(self) -> dict[str, Any]:
        """A human-readable, JSON-able audit trail of this decision."""
        shown = self.referenced or tuple(self.facts)
        return {
            "verdict": self.action.value,
            "prover": self.prover,
            "cached": self.cached,
            "elapsed_us": self.elapsed_us,
            "obligation": self.obligation_hash,
            "policy_set": self.policy_set,
            "facts": {name: self.facts.get(name) for name in shown},
            "unknown_facts": [name for name in shown if self.facts.get(name) is None],
            "policies": [
                {
                    "id": c.id,
                    "action": c.action.value,
                    "severity": c.severity,
                    "status": c.status,
                    "description": c.description,
                }
                for c in sorted(
                    self.checks, key=lambda c: ("violated", "unknown", "holds").index(c.status)
                )
            ],
            "violated": list(self.violated),
            "reasons": list(self.reasons),
            "proof": self.proof,
            "counterexample": self.counterexample,
            "notes": list(self.notes),
        }


def _reason(policy: Policy) -> str:
    action = policy.action.value.lower()
    return f"{policy.id} ({action}, {policy.severity.value}): {policy.description}"


class Verifier:
    """Decides undecided prompts against a policy set; thread-safe, never raises from `verify`."""

    def __init__(
        self,
        *,
        policies: PolicySet,
        cache: ProofCache | None = None,
        timeout_s: float = 2.0,
        lean: LeanBackend | None = None,
        max_scan_chars: int = 200_000,
    ):
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.policies = policies
        self.cache = cache
        self.timeout_s = timeout_s
        self.lean = lean
        self.max_scan_chars = max_scan_chars
        self._referenced = policies.facts()
        self._lock = threading.Lock()
        self._z3 = Z3Prover(policies)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aimds-z3")
        self.timeouts = 0

    def close(self) -> None:
        """Stop the prover thread (pending work is abandoned)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------------

    def obligation_hash(self, facts: Mapping[str, Value | None]) -> str:
        """Hash of the obligation: engine version, policy-set digest, referenced fact values."""
        body = [ENGINE_VERSION, self.policies.digest, [[n, facts.get(n)] for n in self._referenced]]
        return hashlib.sha256(orjson.dumps(body)).hexdigest()

    def verify(self, subject: Subject) -> VerificationOutcome:
        """Decide one subject: ALLOW, BLOCK or ESCALATE with proof/counterexample and audit."""
        start = time.perf_counter()
        try:
            return self._verify(subject, start)
        except Exception as exc:  # fail closed: a verifier bug must never let a prompt through
            log.exception("verification failed; escalating")
            return VerificationOutcome(
                action=Action.ESCALATE,
                violated=(),
                reasons=(f"verification failed: {type(exc).__name__}: {exc}",),
                prover="error",
                proof=None,
                counterexample=None,
                facts={},
                obligation_hash="",
                elapsed_us=self._elapsed(start),
                cached=False,
                policy_set=self.policies.digest,
            )

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _elapsed(start: float) -> int:
        return int((time.perf_counter() - start) * 1e6)

    def _verify(self, subject: Subject, start: float) -> VerificationOutcome:
        fact_set = extract_facts(subject, max_scan_chars=self.max_scan_chars)
        facts = fact_set.values
        statuses = [(p, eval3(p.when, facts)) for p in self.policies]
        checks = tuple(
            PolicyCheck(
                p.id,
                p.action,
                p.severity.value,
                "violated" if s is True else ("holds" if s is False else "unknown"),
                p.description,
            )
            for p, s in statuses
        )
        fired = [p for p, s in statuses if s is True]
        undecided = [p for p, s in statuses if s is None]
        key = self.obligation_hash(facts)

        def outcome(result: ProofResult, prover: str, cached: bool = False) -> VerificationOutcome:
            return VerificationOutcome(
                action=result.action,
                violated=result.violated,
                reasons=result.reasons + tuple(fact_set.notes),
                prover=prover,
                proof=result.proof,
                counterexample=result.counterexample,
                facts=dict(facts),
                obligation_hash=key,
                elapsed_us=self._elapsed(start),
                cached=cached,
                checks=checks,
                policy_set=self.policies.digest,
                notes=fact_set.notes,
                referenced=self._referenced,
            )

        blockers = [p for p in fired if p.action is Action.BLOCK]
        if blockers or not undecided:
            result = self._three_valued(fired, blockers, fact_set)
            prover = "three-valued"
            if self.lean is not None and self.lean.available:
                result, prover = self._lean_check(result, facts, key, start)
            return outcome(result, prover)

        if self.cache is not None:
            hit = self._cache_get(key)
            if hit is not None:
                result, prover = hit
                return outcome(result, f"cache:{prover}", cached=True)

        remaining = self.timeout_s - (time.perf_counter() - start)
        if remaining <= 0:
            return outcome(self._timeout(fired), "timeout")
        try:
            result = self._prove(facts, undecided, fired, remaining)
        except ProverTimeout:
            return outcome(self._timeout(fired), "timeout")
        except ProverError as exc:
            log.warning("z3 failed on obligation %s: %s", key[:16], exc)
            return outcome(
                ProofResult(
                    Action.ESCALATE,
                    tuple(p.id for p in fired),
                    (f"z3 failed: {exc}",),
                    None,
                    None,
                ),
                "z3",
            )
        if self.cache is not None:
            self._cache_set(key, result, "z3")
        return outcome(result, "z3")

    def _three_valued(
        self, fired: Sequence[Policy], blockers: Sequence[Policy], fact_set: FactSet
    ) -> ProofResult:
        ordered = list(blockers) + [p for p in fired if p.action is not Action.BLOCK]
        violated = tuple(p.id for p in ordered)
        unknown = sorted(n for n in self._referenced if fact_set.values.get(n) is None)
        unknown_text = "{" + ", ".join(unknown) + "}"
        if blockers:
            return ProofResult(
                Action.BLOCK,
                violated,
                tuple(_reason(p) for p in ordered),
                f"three-valued: {', '.join(p.id for p in blockers)} violated on definite facts "
                f"(whatever the unknown facts {unknown_text})",
                None,
            )
        if fired:
            return ProofResult(
                Action.ESCALATE,
                violated,
                tuple(_reason(p) for p in ordered),
                f"three-valued: no block policy can fire; {violated[0]}"
                + (f" and {len(violated) - 1} more" if len(violated) > 1 else "")
                + " violated on definite facts",
                None,
            )
        return ProofResult(
            Action.ALLOW,
            (),
            ("no policy fires",),
            f"three-valued: all {len(self.policies)} policies hold on the known facts"
            + (f"; unknown facts {unknown_text} do not matter" if unknown else ""),
            None,
        )

    def _timeout(self, fired: Sequence[Policy]) -> ProofResult:
        self.timeouts += 1
        return ProofResult(
            Action.ESCALATE,
            tuple(p.id for p in fired),
            (f"timeout: no proof within {self.timeout_s:g} s",),
            None,
            None,
        )

    def _prove(
        self,
        facts: Mapping[str, Value | None],
        undecided: Sequence[Policy],
        fired: Sequence[Policy],
        remaining_s: float,
    ) -> ProofResult:
        with self._lock:
            prover, executor = self._z3, self._executor
        future = executor.submit(prover.decide, facts, undecided, fired, int(remaining_s * 1000))
        try:
            return future.result(timeout=remaining_s)
        except FutureTimeout:
            prover.interrupt()
            future.cancel()
            self._replace_prover(prover)
            raise ProverTimeout(f"no answer within {remaining_s:.3f}s") from None
        except ProverTimeout:
            self._replace_prover(prover)
            raise

    def _replace_prover(self, stale: Z3Prover) -> None:
        """Swap in a fresh context and thread: an interrupted Z3 context is not trusted again."""
        with self._lock:
            if self._z3 is not stale:
                return
            old = self._executor
            self._z3 = Z3Prover(self.policies)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aimds-z3")
        old.shutdown(wait=False, cancel_futures=True)

    def _cache_get(self, key: str) -> tuple[ProofResult, str] | None:
        assert self.cache is not None
        try:
            raw = self.cache.get(key)
        except Exception as exc:  # a custom cache must not fail a verification either
            log.warning("proof cache get failed: %s", exc)
            return None
        if raw is None:
            return None
        try:
            result = ProofResult(
                Action(raw["action"]),
                tuple(str(v) for v in raw["violated"]),
                tuple(str(r) for r in raw["reasons"]),
                None if raw["proof"] is None else str(raw["proof"]),
                None if raw["counterexample"] is None else dict(raw["counterexample"]),
            )
            return result, str(raw["prover"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("proof cache entry %s unusable (%s); recomputing", key[:16], exc)
            return None

    def _cache_set(self, key: str, result: ProofResult, prover: str) -> None:
        assert self.cache is not None
        value = {
            "action": result.action.value,
            "violated": list(result.violated),
            "reasons": list(result.reasons),
            "proof": result.proof,
            "counterexample": result.counterexample,
            "prover": prover,
        }
        try:
            self.cache.set(key, value)
        except Exception as exc:
            log.warning("proof cache set failed: %s", exc)

    def _lean_check(
        self, result: ProofResult, facts: Mapping[str, Value | None], key: str, start: float
    ) -> tuple[ProofResult, str]:
        assert self.lean is not None
        text = render_obligation(self.policies, facts, result.action, obligation_hash=key)
        remaining = self.timeout_s - (time.perf_counter() - start)
        try:
            if remaining <= 0:
                raise ProverTimeout("no time left for the lean check")
            checked = self.lean.check(text, timeout_s=remaining)
        except ProverTimeout:
            return self._timeout([]), "timeout"
        except ProverError as exc:
            return (
                ProofResult(
                    Action.ESCALATE, result.violated, (f"lean check failed: {exc}",), None, None
                ),
                "lean",
            )
        if not checked.ok:
            first = checked.output.splitlines()[:3]
            return (
                ProofResult(
                    Action.ESCALATE,
                    result.violated,
                    ("lean rejected the obligation: " + " | ".join(first),),
                    None,
                    None,
                ),
                "lean",
            )
        proof = (
            f"lean: {namespace_for(key)}.decision : decideObligation facts policies = "
            f".{result.action.value.lower()} (by decide, {checked.elapsed_s:.2f}s)"
        )
        return ProofResult(result.action, result.violated, result.reasons, proof, None), "lean"


__all__ = ["ENGINE_VERSION", "PolicyCheck", "VerificationOutcome", "Verifier"]
