"""Stage 4: fusing rule hits, kNN similarities, obfuscation signals and a text classifier.

`content_features` turns what stages 1 and 3 found in one prompt into a fixed feature vector;
`FusionModel` maps it to a calibrated attack probability with a logistic regression trained by
`aimds train` (app/training.py) on the dev corpora, and holds the two thresholds: BLOCK at or
above `block_at`, ALLOW below `allow_below`, the band between goes to verification. Session
(temporal) evidence cannot be learned from single-prompt corpora, so it is combined outside the
learned model by a noisy-or with a fixed weight below `block_at`: temporal evidence alone can
route a prompt to verification, never block it outright.

The model is a small JSON file: versioned by the hash of its content, loaded once at start,
named in every decision.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.errors import ConfigError
from app.patterns import PatternMatch, PatternStore, unit_queries
from app.rules import CATEGORIES, RuleReport

DECODERS = frozenset(
    {"base64", "hex", "url", "rot13", "reversed", "charcode", "escape", "html_entity"}
)
LETTER_LEVEL = frozenset(
    {
        "leet",
        "separators",
        "homoglyph",
        "zero_width",
        "bidi",
        "unicode_tags",
        "styled",
        "combining",
        "fullwidth",
        "variation_selectors",
        "control",
    }
)
CARRIERS = frozenset(
    {"html_comment", "html_attribute", "hidden_span", "markdown", "json_string", "yaml_string"}
)

#: Every feature is evidence FOR an attack: the fusion is fitted with non-negative weights, so
#: no feature can lower a score by being present (collinear similarity features otherwise get
#: cancelling weights that do not transfer to new traffic). kNN evidence is a margin over the
#: similarity to benign exemplars: close to a known attack AND closer than to ordinary prompts.
FEATURES: tuple[str, ...] = (
    "rules.score",
    "rules.max",
    *(f"rules.{c}" for c in CATEGORIES),
    "pattern.margin",
    "pattern.top3_margin",
    "pattern.severity_margin",
    "pattern.curated_margin",
    "text.logit",
    "norm.decoders",
    "norm.letter_level",
    "norm.carriers",
)


@dataclass(frozen=True, slots=True)
class PatternEvidence:
    """What the kNN search found over all of a prompt's views."""

    max_sim: float
    top3_mean: float
    severity_sim: float
    curated_max_sim: float
    matches: tuple[Any, ...]  # PatternMatch, best first


def pattern_evidence(per_view: Sequence[Sequence[Any]], *, keep: int = 5) -> PatternEvidence:
    """Merge the matches of every view: best similarity per pattern, best first."""
    best: dict[str, Any] = {}
    for matches in per_view:
        for m in matches:
            held = best.get(m.pattern_id)
            if held is None or m.similarity > held.similarity:
                best[m.pattern_id] = m
    return _ranked_evidence(sorted(best.values(), key=lambda m: m.similarity, reverse=True), keep)


def _ranked_evidence(ranked: Sequence[Any], keep: int) -> PatternEvidence:
    """The evidence of distinct-pattern matches already ranked best first."""
    sims = [max(0.0, float(m.similarity)) for m in ranked]
    return PatternEvidence(
        max_sim=sims[0] if sims else 0.0,
        top3_mean=sum(sims[:3]) / len(sims[:3]) if sims else 0.0,
        severity_sim=max(
            (float(m.severity) * max(0.0, float(m.similarity)) for m in ranked), default=0.0
        ),
        curated_max_sim=max(
            (max(0.0, float(m.similarity)) for m in ranked if m.source == "curated"), default=0.0
        ),
        matches=tuple(ranked[:keep]),
    )


def _split_by_window(store: Any, views: Sequence[str]) -> tuple[list[int], list[int]]:
    """Views that fit in one of the store's windows (searched with their vector), and longer."""
    limit = store.window_chars
    short = [i for i, v in enumerate(views) if limit is None or len(v.strip()) <= limit]
    taken = set(short)
    return short, [i for i in range(len(views)) if i not in taken]


def knn(store: Any, views: Sequence[str], vectors: np.ndarray, k: int) -> list[list[Any]]:
    """Matches of every view in `store`.

    A view that fits in one window is searched with its already computed vector; a longer one
    is cut into the store's windows (`match_texts`). Training and screening both call this,
    so the features a model was trained on are exactly the ones it sees.
    """
    out: list[list[Any]] = [[] for _ in views]
    if store is None or not views:
        return out
    short, long = _split_by_window(store, views)
    if short:
        for i, matches in zip(short, store.query(vectors[short], k=k), strict=True):
            out[i] = matches
    if long:
        found = store.match_texts([views[i] for i in long], k=k)
        for i, matches in zip(long, found, strict=True):
            out[i] = matches
    return out


def benign_similarity(store: Any, views: Sequence[str], vectors: np.ndarray) -> float:
    """Highest similarity of any view to a benign exemplar (0 when there are none).

    The same search as `knn(store, views, vectors, 1)`, without building matches.
    """
    if store is None or not views:
        return 0.0
    short, long = _split_by_window(store, views)
    best = 0.0
    if short:
        best = max(best, float(store.best_similarity(vectors[short]).max()))
    if long:
        for matches in store.match_texts([views[i] for i in long], k=1):
            best = max([best] + [float(m.similarity) for m in matches])
    return best


def screen_patterns(
    store: Any, benign: Any, views: Sequence[str], vectors: np.ndarray, k: int
) -> tuple[PatternEvidence, float]:
    """`pattern_evidence(knn(store, ...))` and `benign_similarity(benign, ...)` in one pass.

    The screener's per-prompt path: the same searches in the same order with the same
    results, but the query rows are normalised once for both stores and no match is built
    that the evidence does not keep. Windowed stores take the general path.
    """
    queries = None
    if (
        isinstance(store, PatternStore)
        and isinstance(benign, PatternStore)
        and store.window_chars is None
        and benign.window_chars is None
        and store.embedder.dim == benign.embedder.dim
        and 0 < len(views) == len(vectors)
        and k > 0
    ):
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != store.embedder.dim:
            queries = None
    if queries is None:
        evidence = pattern_evidence(knn(store, views, vectors, k))
        return evidence, benign_similarity(benign, views, vectors)
    prepared = unit_queries(queries)
    if prepared is None:  # no row worth searching: neither store is queried
        return pattern_evidence([[] for _ in views]), 0.0
    live_q, units = prepared
    found = store.search_units(units, k)
    if found is None:
        evidence = pattern_evidence([[] for _ in views])
    elif len(views) == 1:  # its matches are distinct patterns, ranked: no merge, no sort
        evidence = _ranked_evidence(_matches_per_view(store, live_q, found, 1)[0], keep=5)
    else:
        evidence = pattern_evidence(_matches_per_view(store, live_q, found, len(views)))
    benign_sim = 0.0
    nearest = benign.search_units(units, 1)
    if nearest is not None:
        _, best, counts = nearest
        for row in range(len(live_q)):
            if counts[row] > 0:
                benign_sim = max(benign_sim, float(best[row, 0]))
    return evidence, benign_sim


def _matches_per_view(
    store: Any, live_q: np.ndarray, found: tuple[Any, Any, Any], n_views: int
) -> list[list[Any]]:
    """`store.query`'s matches from a `search_units` result."""
    owner, best, counts = found
    out: list[list[Any]] = [[] for _ in range(n_views)]
    for row, view in enumerate(live_q.tolist()):
        n = int(counts[row])
        for pattern_index, similarity in zip(
            owner[row, :n].tolist(), best[row, :n].tolist(), strict=True
        ):
            p = store.pattern_at(pattern_index)
            out[view].append(PatternMatch(p.id, p.category, p.severity, similarity, p.source))
    return out


_NO_CATEGORY_SCORES = (0.0,) * len(CATEGORIES)


def content_features(
    rules: RuleReport,
    patterns: PatternEvidence,
    text_logit: float,
    transforms: frozenset[str],
    benign_sim: float = 0.0,
) -> np.ndarray:
    """The feature vector of one prompt, in `FEATURES` order.

    `benign_sim` is the similarity to the nearest benign exemplar: with it the model weighs
    "close to a known attack" against "just as close to ordinary prompts" (short generic
    requests look alike under any lexical embedding).
    """
    if rules.hits:
        row = [rules.score, max(h.weight for h in rules.hits)]
        row += rules.category_scores(CATEGORIES)
    else:  # what the general expressions give without hits, without computing them
        row = [rules.score, 0.0, *_NO_CATEGORY_SCORES]
    row += [
        patterns.max_sim - benign_sim,
        patterns.top3_mean - benign_sim,
        patterns.severity_sim - benign_sim,
        patterns.curated_max_sim - benign_sim,
    ]
    row.append(min(12.0, max(-12.0, float(text_logit))))
    if transforms:
        row += [
            min(3, len(transforms & DECODERS)),
            min(3, len(transforms & LETTER_LEVEL)),
            min(3, len(transforms & CARRIERS)),
        ]
    else:
        row += [0, 0, 0]
    return np.asarray(row, dtype=np.float64)


@dataclass(frozen=True)
class FusionModel:
    """Logistic fusion of content features plus the text classifier and the thresholds."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    text_coef: np.ndarray  # logistic regression over the default embedder's vector
    text_intercept: float
    embedder: str  # name/version of the embedder the text classifier was trained on
    allow_below: float
    block_at: float
    temporal_weight: float = 0.6
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.feature_names) != FEATURES:
            raise ConfigError(
                "fusion model was trained on other features; retrain with `aimds train`"
            )
        if not 0.0 <= self.allow_below <= self.block_at <= 1.0:
            raise ConfigError(
                f"fusion model thresholds out of order: {self.allow_below} / {self.block_at}"
            )
        if self.temporal_weight >= self.block_at:
            raise ConfigError("temporal_weight must stay below block_at (temporal never blocks)")

    @property
    def version(self) -> str:
        """Content hash of the model: changes whenever weights or thresholds change."""
        digest = hashlib.sha256(orjson.dumps(self._payload(), option=orjson.OPT_SORT_KEYS))
        return "fusion-" + digest.hexdigest()[:12]

    def text_logit(self, vector: np.ndarray) -> float:
        """Logit of the text classifier for one embedding."""
        return float(vector @ self.text_coef + self.text_intercept)

    def probability(self, features: np.ndarray) -> float:
        """Attack probability of one prompt from its content features."""
        z = float(((features - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def contributions(self, features: np.ndarray) -> dict[str, float]:
        """Each feature's additive share of the logit (for explanations)."""
        parts = (features - self.mean) / self.scale * self.coef
        return {n: float(v) for n, v in zip(self.feature_names, parts, strict=True)}

    def probability_and_contributions(self, features: np.ndarray) -> tuple[float, list[float]]:
        """`probability(features)` and the values of `contributions(features)` (in
        `feature_names` order), from one standardisation of the features."""
        standard = (features - self.mean) / self.scale
        z = float(standard @ self.coef + self.intercept)
        probability = 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))
        return probability, (standard * self.coef).tolist()

    def fuse(self, content: float, temporal: float) -> float:
        """Final score: content probability noisy-or'ed with weighted temporal risk."""
        return 1.0 - (1.0 - content) * (1.0 - self.temporal_weight * temporal)

    def with_thresholds(self, allow_below: float | None, block_at: float | None) -> FusionModel:
        """A copy with thresholds overridden (settings), validated again."""
        return FusionModel(
            **{
                **self._fields(),
                "allow_below": self.allow_below if allow_below is None else allow_below,
                "block_at": self.block_at if block_at is None else block_at,
            }
        )

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def _payload(self) -> dict[str, Any]:
        out = self._fields()
        for name in ("mean", "scale", "coef", "text_coef"):
            out[name] = [round(float(x), 9) for x in out[name]]
        out["feature_names"] = list(self.feature_names)
        out["provenance"] = dict(self.provenance)
        return out

    def save(self, path: str | Path) -> None:
        """Write the model as JSON."""
        payload = self._payload() | {"version": self.version}
        Path(path).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: str | Path) -> FusionModel:
        """Read a model written by `save` (ConfigError when missing or malformed)."""
        try:
            raw = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot load fusion model {path}: {exc}") from exc
        raw.pop("version", None)
        try:
            for name in ("mean", "scale", "coef", "text_coef"):
                raw[name] = np.asarray(raw[name], dtype=np.float64)
            raw["feature_names"] = tuple(raw["feature_names"])
            return cls(**raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed fusion model {path}: {exc}") from exc
