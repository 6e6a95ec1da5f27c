"""The screening function: one prompt (and its session state) in, one `ScreenResult` out.

This is the core the `screen` agent and `aimds scan` both call, so the broker path and the
in-process path give the same decisions. A detector that raises makes the screener fail
closed: the result is ESCALATE with the error as its reason, never ALLOW.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.records import Action, Prompt
from app.rules import RuleDetector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What the screening stage concluded about one prompt.

    `action` is ALLOW or BLOCK when the screener is sure; ESCALATE means "uncertain": the
    prompt goes to the verification stage (`needs_verification`), or, when the screener
    itself failed, straight to a human (`stage == "error"`).
    """

    action: Action
    score: float
    stage: str
    reasons: tuple[str, ...]
    categories: tuple[str, ...] = ()
    matches: tuple[Any, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    session_facts: Mapping[str, float | int | bool | None] = field(default_factory=dict)
    views: tuple[str, ...] = ()
    timings_us: Mapping[str, int] = field(default_factory=dict)
    model_version: str = ""
    pattern_version: str = ""

    @property
    def needs_verification(self) -> bool:
        """Uncertain screening results go to `aimds.verification`; screener errors do not."""
        return self.action is Action.ESCALATE and self.stage != "error"


class Screener:
    """Interim rule-based screener (backbone): normalizes lightly and scores with `RuleDetector`.

    Scores at or above `block_at` BLOCK, below `allow_below` ALLOW, and the band between goes
    to verification. The detection engine replaces this with normalization, temporal,
    pattern and fusion stages behind the same `screen` signature.
    """

    def __init__(
        self,
        *,
        rules: RuleDetector | None = None,
        allow_below: float = 0.4,
        block_at: float = 0.8,
        model_version: str = "rules-interim-1",
    ):
        self._rules = rules or RuleDetector()
        self._allow_below = allow_below
        self._block_at = block_at
        self.model_version = model_version
        self.pattern_version = "none"

    def new_session(self) -> Any:
        """Fresh per-session state (the interim screener keeps none)."""
        return None

    def load_session(self, state: Any) -> Any:
        """Session state from its table form."""
        return state

    def dump_session(self, session: Any) -> Any:
        """Session state in its table form."""
        return session

    def views(self, text: str) -> tuple[str, ...]:
        """The texts detectors scan for this prompt."""
        return (unicodedata.normalize("NFKC", text).casefold(),)

    def screen(
        self,
        prompt: Prompt,
        session: Any = None,
        window_facts: Mapping[str, int] | None = None,
    ) -> ScreenResult:
        """Screen one prompt; never raises (fails closed to ESCALATE)."""
        started = time.perf_counter_ns()
        try:
            return self._screen(prompt, dict(window_facts or {}), started)
        except Exception as exc:  # noqa: BLE001 - fail closed on any detector failure
            log.exception("screening failed for prompt %s", prompt.id)
            return failed_closed(exc, self.model_version, self.pattern_version, started)

    def _screen(self, prompt: Prompt, facts: dict[str, int], started: int) -> ScreenResult:
        (canonical,) = self.views(prompt.text)
        t_norm = time.perf_counter_ns()
        report = self._rules.scan([canonical])
        t_rules = time.perf_counter_ns()
        score = report.score
        if score >= self._block_at:
            action = Action.BLOCK
        elif score < self._allow_below:
            action = Action.ALLOW
        else:
            action = Action.ESCALATE
        reasons = tuple(f"rule {h.rule_id} ({h.category}): {h.snippet!r}" for h in report.hits)
        return ScreenResult(
            action=action,
            score=score,
            stage="rules",
            reasons=reasons or ("no rule matched",),
            categories=report.categories(),
            scores={"rules.score": score, "screen.score": score},
            session_facts=facts,
            views=(canonical,),
            timings_us={
                "normalize": (t_norm - started) // 1000,
                "rules": (t_rules - t_norm) // 1000,
                "total": (time.perf_counter_ns() - started) // 1000,
            },
            model_version=self.model_version,
            pattern_version=self.pattern_version,
        )


def failed_closed(
    exc: BaseException, model_version: str, pattern_version: str, started_ns: int
) -> ScreenResult:
    """The ESCALATE result of a screener that could not decide."""
    return ScreenResult(
        action=Action.ESCALATE,
        score=1.0,
        stage="error",
        reasons=(f"detector failed, failing closed: {type(exc).__name__}: {exc}"[:500],),
        timings_us={"total": (time.perf_counter_ns() - started_ns) // 1000},
        model_version=model_version,
        pattern_version=pattern_version,
    )
