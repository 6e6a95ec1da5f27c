"""The screening function: one prompt (and its session state) in, one `ScreenResult` out.

This is the core the `screen` agent and `aimds scan` both call, so the broker path and the
in-process path give the same decisions. A detector that raises makes the screener fail
closed: the result is ESCALATE with the error as its reason, never ALLOW.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import DetectorError
from app.normalize import DEPTH_LIMIT, well_formed
from app.records import Action, Prompt
from app.rules import RuleDetector

log = logging.getLogger(__name__)


#: the stage of a prompt ESCALATEd because an encoded layer was too deep to decode
UNDECODED = "undecoded"


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
        """Uncertain screening results go to `aimds.verification`; screener errors and
        prompts with an undecoded layer (nothing for the verifier to read) do not."""
        return self.action is Action.ESCALATE and self.stage not in ("error", UNDECODED)


@dataclass(frozen=True, slots=True)
class PreparedText:
    """A prompt's normalization and embeddings, computed ahead of screening (in a batch)."""

    text: str
    normalized: Any  # NormalizedText
    views: tuple[str, ...]
    vectors: Any  # the text classifier's rows, one per view
    knn_vectors: Any  # the pattern stage's rows, one per view


class _FailClosed:
    """The `screen` entry point shared by screeners: time it, and fail closed on any error."""

    model_version: str

    @property
    def pattern_version(self) -> str:
        """Version of the pattern set decisions are made with."""
        return "none"

    def screen(
        self,
        prompt: Prompt,
        session: Any = None,
        window_facts: Mapping[str, int] | None = None,
        prepared: PreparedText | None = None,
    ) -> ScreenResult:
        """Screen one prompt; never raises (fails closed to ESCALATE).

        `prepared` is this prompt's stage 1 and embeddings from `prepare` (a batch); a
        preparation of another text is ignored.
        """
        started = time.perf_counter_ns()
        if prepared is not None and prepared.text != prompt.text:
            prepared = None
        try:
            return self._screen(prompt, session, dict(window_facts or {}), started, prepared)
        except Exception as exc:  # noqa: BLE001 - fail closed on any detector failure
            log.exception("screening failed for prompt %s", prompt.id)
            return failed_closed(exc, self.model_version, self.pattern_version, started)

    def prepare(self, texts: Sequence[str]) -> list[PreparedText | None]:
        """Stage 1 and embeddings of many prompts at once (nothing to prepare here)."""
        return [None] * len(texts)

    def _screen(
        self,
        prompt: Prompt,
        session: Any,
        facts: dict[str, int],
        started: int,
        prepared: PreparedText | None,
    ) -> ScreenResult:
        raise NotImplementedError


class RuleScreener(_FailClosed):
    """Rules-only screener: lightly normalizes and scores with `RuleDetector`.

    Scores at or above `block_at` BLOCK, below `allow_below` ALLOW, and the band between goes
    to verification. A baseline for tests and benchmarks; the worker uses `Screener`.
    """

    def __init__(
        self,
        *,
        rules: RuleDetector | None = None,
        allow_below: float = 0.4,
        block_at: float = 0.8,
        model_version: str = "rules-only-1",
    ):
        self._rules = rules or RuleDetector()
        self._allow_below = allow_below
        self._block_at = block_at
        self.model_version = model_version

    def new_session(self) -> Any:
        """Fresh per-session state (the rules-only screener keeps none)."""
        return None

    def load_session(self, state: Any) -> Any:
        """Session state from its table form."""
        return state

    def dump_session(self, session: Any) -> Any:
        """Session state in its table form."""
        return session

    def resume_session(self, stored: Iterable[Any], ts: float) -> Any:
        """The state a prompt at `ts` continues (the rules-only screener keeps none)."""
        return None

    def session_expired(self, session: Any, ts: float) -> bool:
        """Whether a prompt at `ts` starts afresh (always: there is no state to continue)."""
        return True

    def views(self, text: str) -> tuple[str, ...]:
        """The texts detectors scan for this prompt."""
        return (unicodedata.normalize("NFKC", well_formed(text)).casefold(),)

    def _screen(
        self,
        prompt: Prompt,
        session: Any,
        facts: dict[str, int],
        started: int,
        prepared: PreparedText | None,
    ) -> ScreenResult:
        (canonical,) = self.views(prompt.text)
        t_norm = time.perf_counter_ns()
        report = self._rules.scan([canonical], raw=prompt.text)
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


class Screener(_FailClosed):
    """The detection engine: normalize → rules → embed + kNN → fuse, with the session's state.

    Components are loaded once by the caller (see `app.core.build_screener`); `screen` is the
    per-prompt path. The session object is the temporal stage's `SessionState`, kept by the
    worker in a Faust table and by `aimds scan` in memory.
    """

    def __init__(
        self,
        *,
        normalizer: Any,
        rules: RuleDetector,
        embedder: Any,
        store: Any,
        model: Any,
        benign_store: Any = None,
        temporal_config: Any = None,
        knn_k: int = 5,
        max_views: int = 4,
        simhash_seed: int = 20251126,
    ):
        from app.fusion import content_features, screen_patterns
        from app.temporal import (
            DEFAULT_CONFIG,
            TemporalEvent,
            make_hyperplanes,
            vector_simhash,
            warm_up,
        )

        self._content_features = content_features
        self._screen_patterns = screen_patterns
        self._temporal_event = TemporalEvent
        self._vector_simhash = vector_simhash
        self._normalizer = normalizer
        self._rules = rules
        self._embedder = embedder
        self._store = store
        self._benign = benign_store
        self._model = model
        self._temporal = temporal_config or DEFAULT_CONFIG
        self._k = knn_k
        self._max_views = max_views
        # session fingerprints are lexical (near-duplicate and probing detection): with a
        # concatenated classifier embedder, only its first part (hashing) feeds them
        parts = getattr(embedder, "parts", (embedder,))
        self._fingerprint_dim = parts[0].dim
        # one fixed seed on every worker: fingerprints live in table state that moves
        self._planes = make_hyperplanes(self._fingerprint_dim, 64, seed=simhash_seed)
        self._folds = bool(getattr(embedder, "folds_to", lambda _: False)(store.embedder))
        self.model_version = model.version
        # explanation pieces that depend on the model only
        group_of = {"rules": 0, "pattern": 1, "text": 1, "norm": 2}
        self._feature_groups = tuple(group_of[n.split(".")[0]] for n in model.feature_names)
        warm_up()  # the temporal kernels, off the first prompt's path
        self._thresholds_text = (
            f"; thresholds allow<{model.allow_below:.3f} block>={model.block_at:.3f}"
        )

    @property
    def pattern_version(self) -> str:
        """Version of the live pattern set (it changes as learned patterns arrive)."""
        return str(self._store.version)

    @property
    def pattern_store(self) -> Any:
        """The attack pattern store (learned patterns are added to it)."""
        return self._store

    def benign_similarity(self, text: str) -> float:
        """Similarity of `text` to its nearest benign exemplar (0 without a benign store)."""
        if self._benign is None:
            return 0.0
        found = self._benign.match_texts([text], k=1)[0]
        return float(found[0].similarity) if found else 0.0

    # --- session state (temporal stage) ---------------------------------------------------
    def new_session(self) -> Any:
        """Fresh temporal state for a session."""
        from app.temporal import SessionState

        return SessionState()

    def load_session(self, state: Any) -> Any:
        """Temporal state from its table form."""
        from app.temporal import SessionState

        return SessionState.from_dict(state)

    def dump_session(self, session: Any) -> Any:
        """Temporal state in its table form (JSON-able)."""
        return session.to_dict()

    def resume_session(self, stored: Iterable[Any], ts: float) -> Any:
        """The temporal state a prompt at `ts` continues.

        `stored` are table forms of the session's state (None or {} for none), such as the
        worker's windows around the record: the latest of them (`SessionState.resume`), or a
        fresh state when there is none, when the session has been idle longer than the
        temporal stage's idle TTL, or when the state cannot be read (logged: a state written
        by another version, say, must not stop the session's prompts from being decided).
        """
        from app.temporal import SessionState

        try:
            return SessionState.resume(stored, ts, self._temporal)
        except DetectorError as exc:
            log.warning("%s; the session starts afresh", exc)
            return SessionState()

    def session_expired(self, session: Any, ts: float) -> bool:
        """Whether a prompt at `ts` starts the session afresh (idle longer than the TTL).

        An expired session's temporal features equal a fresh one's (its events have left
        every window): expiry bounds the state kept, it does not change decisions.
        """
        return bool(session.expired(ts, self._temporal))

    def views(self, text: str) -> tuple[str, ...]:
        """The texts detectors scan: canonical form first, then decoded/extracted views."""
        normalized = self._normalizer.normalize(text)
        return tuple(v.text for v in normalized.views[: self._max_views]) or (text,)

    # --- the per-prompt path --------------------------------------------------------------

    def prepare(self, texts: Sequence[str]) -> list[PreparedText | None]:
        """Normalize many prompts and embed all their views in one call per embedder.

        Semantic embedders cost less per text in a batch; the screen agent prepares the
        prompts it takes together (AIMDS_SCREEN_BATCH), then screens them one by one.
        """
        normalized = [self._normalizer.normalize(text) for text in texts]
        views = [self._view_texts(n, t) for n, t in zip(normalized, texts, strict=True)]
        vectors, knn_vectors = self._embed([v for vs in views for v in vs])
        out: list[PreparedText | None] = []
        at = 0
        for text, norm, vs in zip(texts, normalized, views, strict=True):
            rows = slice(at, at + len(vs))
            out.append(PreparedText(text, norm, vs, vectors[rows], knn_vectors[rows]))
            at += len(vs)
        return out

    def _view_texts(self, normalized: Any, text: str) -> tuple[str, ...]:
        return tuple(v.text for v in normalized.views[: self._max_views]) or (text,)

    def _embed(self, views: Sequence[str]) -> tuple[Any, Any]:
        """The text classifier's rows (also the session fingerprint) and the pattern stage's."""
        from app.embedders import ConcatEmbedder

        if self._folds:  # hashing at two sizes: one pass over the text gives both
            return self._embedder.embed_folded(views, self._store.embedder.dim)
        knn_vectors = self._store.embedder.embed(views)
        if isinstance(self._embedder, ConcatEmbedder):  # reuse a shared part's rows
            vectors = self._embedder.embed(views, known=(self._store.embedder, knn_vectors))
        else:
            vectors = self._embedder.embed(views)
        return vectors, knn_vectors

    def _screen(
        self,
        prompt: Prompt,
        session: Any,
        facts: dict[str, int],
        started: int,
        prepared: PreparedText | None,
    ) -> ScreenResult:
        model = self._model
        if prepared is None:
            normalized = self._normalizer.normalize(prompt.text)
            views = list(self._view_texts(normalized, prompt.text))
        else:
            normalized, views = prepared.normalized, list(prepared.views)
        t_norm = time.perf_counter_ns()
        report = self._rules.scan(views, raw=prompt.text)
        t_rules = time.perf_counter_ns()
        if prepared is None:
            vectors, knn_vectors = self._embed(views)
        else:
            vectors, knn_vectors = prepared.vectors, prepared.knn_vectors
        evidence, benign_sim = self._screen_patterns(
            self._store, self._benign, views, knn_vectors, self._k
        )
        if len(vectors) == 1:
            text_logit = model.text_logit(vectors[0])
        else:
            text_logit = max(model.text_logit(v) for v in vectors)
        t_pattern = time.perf_counter_ns()
        transforms = normalized.transforms
        features = self._content_features(report, evidence, text_logit, transforms, benign_sim)
        content, parts = model.probability_and_contributions(features)
        temporal = None
        fingerprint = self._vector_simhash(vectors[0][: self._fingerprint_dim], self._planes)
        if session is not None:
            temporal = session.observe(
                self._temporal_event(prompt.ts, fingerprint, content), self._temporal
            )
        t_temporal = time.perf_counter_ns()
        t_score = temporal.score if temporal is not None else 0.0
        fused = model.fuse(content, t_score)
        if fused >= model.block_at:
            action = Action.BLOCK
        elif fused < model.allow_below:
            action = Action.ALLOW
        else:
            action = Action.ESCALATE
        # a layer of encoding was left undecoded: what it hides was not screened (fail closed)
        undecoded = DEPTH_LIMIT in transforms and action is not Action.BLOCK
        if undecoded:
            action = Action.ESCALATE
        if session is not None:
            session.record_outcome(fingerprint, action is Action.BLOCK, prompt.ts, self._temporal)
        stage, reasons = self._explain(
            parts, content, fused, report, evidence, transforms, temporal
        )
        if undecoded:
            stage = UNDECODED
            reasons = (
                f"encoded more than {self._normalizer.max_depth} layers deep: the innermost "
                "layer was not screened, so a person decides (fails closed)",
                *reasons,
            )
        categories = list(report.categories())
        for m in evidence.matches:
            if m.similarity >= 0.5 and m.category not in categories:
                categories.append(m.category)
        session_facts: dict[str, float | int | bool | None] = {
            "prompts_1m": facts.get("prompts_1m"),
            "blocked_recent": facts.get("blocked_10m"),
            "repeat_near": None,
            "probing": None,
            "escalation": None,
            "bot_regularity": None,
        }
        if temporal is not None:  # same keys, same order
            session_facts["repeat_near"] = temporal.repeat_near
            session_facts["probing"] = temporal.probing
            session_facts["escalation"] = temporal.escalation
            session_facts["bot_regularity"] = temporal.bot_regularity
        done = time.perf_counter_ns()
        return ScreenResult(
            action=action,
            score=fused,
            stage=stage,
            reasons=reasons,
            categories=tuple(categories),
            matches=evidence.matches,
            scores={
                "screen.score": fused,
                "content.score": content,
                "rules.score": report.score,
                "pattern.similarity": evidence.max_sim,
                "benign.similarity": benign_sim,
                "text.score": 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, text_logit)))),
                "temporal.score": t_score,
            },
            session_facts=session_facts,
            views=tuple(views),
            timings_us={
                "normalize": (t_norm - started) // 1000,
                "rules": (t_rules - t_norm) // 1000,
                "pattern": (t_pattern - t_rules) // 1000,
                "temporal": (t_temporal - t_pattern) // 1000,
                "fusion": (done - t_temporal) // 1000,
                "total": (done - started) // 1000,
            },
            model_version=self.model_version,
            pattern_version=self.pattern_version,
        )

    def _explain(
        self,
        parts: list[float],
        content: float,
        fused: float,
        report: Any,
        evidence: Any,
        transforms: frozenset[str],
        temporal: Any,
    ) -> tuple[str, tuple[str, ...]]:
        """Which stage's evidence decided, and the reasons a human reads.

        `parts` are the model's feature contributions (`FusionModel.contributions` values).
        """
        groups = [0.0, 0.0, 0.0]  # rules, pattern (kNN and text classifier), normalize
        for group, value in zip(self._feature_groups, parts, strict=True):
            groups[group] += value
        # the first strongest group, in that order (as max() over them picks)
        best = 0
        if groups[1] > groups[best]:
            best = 1
        if groups[2] > groups[best]:
            best = 2
        stage = "fusion" if groups[best] <= 0 else ("rules", "pattern", "normalize")[best]
        if temporal is not None and fused - content > 0.1:
            stage = "temporal"
        reasons = [f"fused score {fused:.3f} (content {content:.3f})" + self._thresholds_text]
        reasons += [f"rule {h.rule_id} ({h.category}): {h.snippet!r}" for h in report.hits[:3]]
        for m in evidence.matches[:2]:
            if m.similarity >= 0.3:
                reasons.append(
                    f"similar to {m.pattern_id} ({m.category}, {m.source}) at {m.similarity:.2f}"
                )
        if transforms:
            reasons.append("de-obfuscated: " + ", ".join(sorted(transforms)))
        # the three largest by magnitude, ties in feature order (a stable sort)
        magnitude = [abs(v) for v in parts]
        top = sorted(range(len(parts)), key=magnitude.__getitem__, reverse=True)[:3]
        names = self._model.feature_names
        reasons.append("top features: " + ", ".join(f"{names[i]} {parts[i]:+.2f}" for i in top))
        if temporal is not None and temporal.flags:
            reasons.append(
                f"session: {', '.join(temporal.flags)} (temporal score {temporal.score:.2f})"
            )
        return stage, tuple(reasons)
