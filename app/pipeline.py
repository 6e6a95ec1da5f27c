"""The per-prompt steps shared by the Faust agents and `aimds scan`.

`Pipeline` turns a parsed prompt into either a final decision record or a verification
request, and a verification request into a final decision. `LocalScanner` adds what the
worker keeps in Faust tables (dedup, session state, windowed counters) as plain in-process
state, so `aimds scan` and the worker give the same decisions on the same input.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.decisions import (
    dead_letter,
    decision_record,
    screened_decision,
    verification_request,
)
from app.errors import DuplicatePrompt, ParseError, TimestampOutOfRange
from app.records import Action, Prompt, parse_prompt
from app.screening import ScreenResult
from app.windows import (
    BLOCKED_STEP_S,
    BLOCKED_WINDOW_S,
    RATE_WINDOW_S,
    SESSION_WINDOW_S,
    HoppingCounter,
    TumblingCounter,
)

log = logging.getLogger(__name__)

#: how far a prompt's `ts` may be from its Kafka record time before the record time is used
#: instead (producers stamp both; a second covers their clocks and Kafka's milliseconds)
EVENT_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a screened prompt goes next: `decisions` (final) or `verification`."""

    topic: str
    record: dict[str, Any]
    result: ScreenResult


class Pipeline:
    """Screening and verification steps, without any Kafka or Faust."""

    def __init__(
        self,
        *,
        screener: Any,
        verifier: Any = None,
        max_text_chars: int = 200_000,
        max_clock_skew_s: float = 300.0,
        clock: Any = time.time,
    ):
        self.screener = screener
        self.verifier = verifier
        self.max_text_chars = max_text_chars
        self.max_clock_skew_s = max_clock_skew_s
        self._clock = clock

    def parse(self, raw: bytes | None, record_ts: float | None = None) -> Prompt:
        """Bytes to a validated prompt (`ParseError` on bad input, a future `ts` included).

        `record_ts` is the Kafka record's time, the event time of the worker's windowed
        tables. Too far ahead of the clock, it is refused first: Faust's windowed tables
        allocate without bound for a far-future time. A `ts` more than
        `EVENT_TIME_TOLERANCE_S` away from it is replaced by it, so the temporal stage runs on
        the same clock as the tables: a `ts` claimed in the record's body cannot space a burst
        out over hours.
        """
        latest = self.latest_accepted_ts()
        if record_ts is not None and record_ts > latest:
            raise TimestampOutOfRange(
                f"Kafka record time {record_ts:.0f} is ahead of this worker's"
                f" clock by more than {self.max_clock_skew_s:g}s"
            )
        prompt = parse_prompt(raw, max_text_chars=self.max_text_chars, latest_ts=latest)
        if (
            record_ts is not None
            and math.isfinite(record_ts)
            and record_ts >= 0.0
            and abs(prompt.ts - record_ts) > EVENT_TIME_TOLERANCE_S
        ):
            log.debug(
                "prompt %s: ts %.3f replaced by its Kafka record time %.3f",
                prompt.id,
                prompt.ts,
                record_ts,
            )
            prompt = replace(prompt, ts=record_ts)
        return prompt

    def latest_accepted_ts(self) -> float:
        """The latest event time accepted now: the clock plus the allowed skew."""
        return float(self._clock()) + self.max_clock_skew_s

    def prepare(self, prompts: Sequence[Prompt]) -> list[Any]:
        """The screener's batch preparation of `prompts` (normalize + embed), or Nones.

        A failed batch is not an error: each prompt is then screened on its own, and fails
        closed there if the failure is its own.
        """
        try:
            return list(self.screener.prepare([p.text for p in prompts]))
        except Exception:  # noqa: BLE001 - fall back to screening one by one
            log.exception("preparing a batch of %d prompts failed", len(prompts))
            return [None] * len(prompts)

    def screen(
        self,
        prompt: Prompt,
        session: Any,
        window_facts: Mapping[str, int],
        prepared: Any = None,
    ) -> Routed:
        """Screen a prompt and route it: final decision, or verification when uncertain."""
        result = self.screener.screen(
            prompt, session=session, window_facts=window_facts, prepared=prepared
        )
        if result.needs_verification:
            return Routed("verification", verification_request(prompt, result), result)
        return Routed("decisions", screened_decision(prompt, result), result)

    def verify(self, prompt: Prompt, screen: Mapping[str, Any]) -> dict[str, Any]:
        """The final decision for a prompt that screening routed to verification.

        Fails closed: without a verifier, or when it fails, the decision is ESCALATE.
        """
        started = time.perf_counter_ns()
        timings = dict(screen.get("timings_us", {}))
        if self.verifier is None:
            return self._escalate(prompt, screen, "no verifier configured", timings, started)
        try:
            from app.verification import Subject

            subject = Subject(
                text=prompt.text,
                views=tuple(self.screener.views(prompt.text)),
                scores={k: float(v) for k, v in screen.get("scores", {}).items()},
                categories=tuple(screen.get("categories", ())),
                session=dict(screen.get("session", {})),
                role=prompt.role,
            )
            outcome = self.verifier.verify(subject)
        except Exception as exc:  # noqa: BLE001 - fail closed
            log.exception("verification failed for prompt %s", prompt.id)
            return self._escalate(prompt, screen, f"verifier failed: {exc}", timings, started)
        timings["verify"] = (time.perf_counter_ns() - started) // 1000
        timings["total"] = timings.get("total", 0) + timings["verify"]
        reasons = list(screen.get("reasons", ())) + [f"verification: {r}" for r in outcome.reasons]
        return decision_record(
            prompt,
            action=outcome.action,
            score=float(screen.get("score", 0.0)),
            stage="verification",
            reasons=reasons,
            categories=screen.get("categories", ()),
            matched_patterns=screen.get("matched_patterns", ()),
            violated_policies=outcome.violated,
            timings_us=timings,
            model_version=str(screen.get("model_version", "")),
            pattern_version=str(screen.get("pattern_version", "")),
            verification=outcome.audit(),
        )

    def timeout_decision(
        self, prompt: Prompt, screen: Mapping[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """ESCALATE because the obligation was not discharged within its time budget."""
        return self._escalate(
            prompt,
            screen,
            f"timeout: verification took longer than {timeout_s:g}s",
            dict(screen.get("timings_us", {})),
            time.perf_counter_ns() - int(timeout_s * 1e9),
            prover="timeout",
        )

    def _escalate(
        self,
        prompt: Prompt,
        screen: Mapping[str, Any],
        why: str,
        timings: dict[str, int],
        started_ns: int,
        prover: str = "none",
    ) -> dict[str, Any]:
        timings["verify"] = (time.perf_counter_ns() - started_ns) // 1000
        return decision_record(
            prompt,
            action=Action.ESCALATE,
            score=float(screen.get("score", 1.0)),
            stage="verification",
            reasons=[*screen.get("reasons", ()), f"verification: {why}"],
            categories=screen.get("categories", ()),
            matched_patterns=screen.get("matched_patterns", ()),
            timings_us=timings,
            model_version=str(screen.get("model_version", "")),
            pattern_version=str(screen.get("pattern_version", "")),
            verification={"verdict": "ESCALATE", "prover": prover, "reason": why},
        )


class LocalScanner:
    """The worker's whole per-record path in one process (for `aimds scan` and tests).

    Keeps the state the worker keeps in Faust tables: prompt ids seen per session (bounded,
    TTL by event time), per-session temporal state, and the windowed counters.
    """

    def __init__(self, pipeline: Pipeline, *, dedup_ttl_s: float = 3600.0, prune_every: int = 4096):
        self.pipeline = pipeline
        self._dedup_ttl_s = dedup_ttl_s
        self._prune_every = prune_every
        self._processed = 0
        self._newest_ts = -math.inf
        # same windows as the worker's `seen_prompt_ids` table: tumbling by the TTL, and an
        # id counts as seen in the current or the previous window
        self._seen = TumblingCounter(dedup_ttl_s, keep=2)
        self._sessions: dict[str, Any] = {}
        self._rate = TumblingCounter(RATE_WINDOW_S)
        self._blocked = HoppingCounter(BLOCKED_WINDOW_S, BLOCKED_STEP_S)

    def process(
        self, raw: bytes | None, *, key: bytes | None = None, offset: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """One raw record in; `("decisions", record)` or `("deadletter", record)` out."""
        try:
            prompt = self.pipeline.parse(raw)
            self._check_duplicate(prompt)
        except ParseError as exc:
            return "deadletter", dead_letter(
                raw, key=key, stage="parse", error=exc, topic="scan", partition=0, offset=offset
            )
        sid = prompt.session_id
        facts = {
            "prompts_1m": self._rate.add(sid, prompt.ts),
            "blocked_10m": self._blocked.recent(sid, prompt.ts),
        }
        self._newest_ts = max(self._newest_ts, prompt.ts)
        self._processed += 1
        if self._processed % self._prune_every == 0:
            self._prune()
        screener = self.pipeline.screener
        session = self._sessions.get(sid)
        if session is None or screener.session_expired(session, prompt.ts):
            session = self._sessions[sid] = screener.new_session()
        routed = self.pipeline.screen(prompt, session, facts)
        if routed.result.action is Action.BLOCK:
            self._blocked.add(sid, prompt.ts)
        if routed.topic == "verification":
            return "decisions", self.pipeline.verify(prompt, routed.record["screen"])
        return "decisions", routed.record

    def _prune(self) -> None:
        """Drop the states of sessions idle for longer than the TTL a window before the newest
        prompt: any prompt since `SESSION_WINDOW_S` before the newest would start them afresh
        anyway. The worker's session windows expire after about as long."""
        before = self._newest_ts - SESSION_WINDOW_S
        expired = self.pipeline.screener.session_expired
        for sid in [sid for sid, s in self._sessions.items() if expired(s, before)]:
            del self._sessions[sid]

    def _check_duplicate(self, prompt: Prompt) -> None:
        key = dedup_key(prompt)
        if self._seen.current(key, prompt.ts) or self._seen.current(
            key, prompt.ts - self._dedup_ttl_s
        ):
            raise duplicate(prompt)
        self._seen.add(key, prompt.ts)


def dedup_key(prompt: Prompt) -> str:
    """Key of a prompt id in the dedup windows (ids are unique per session).

    The session id's length comes first, so no (session, id) pair can spell another's key
    (with a bare separator, ("s", "x\x1fq") and ("s\x1fx", "q") collided: a review finding).
    """
    return f"{len(prompt.session_id)}:{prompt.session_id}\x1f{prompt.id}"


def duplicate(prompt: Prompt) -> DuplicatePrompt:
    """The error for a prompt id already screened for its session."""
    return DuplicatePrompt(
        f"prompt id {prompt.id!r} was already screened for session {prompt.session_id!r}"
    )
