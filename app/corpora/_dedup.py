"""Deduplication of built rows: within the corpora, against the dev corpora and the
held-out source (equal texts and character 5-gram near-duplicates)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.corpora._rows import CorpusRow, normalized_text
from app.errors import ConfigError

#: dev sources whose texts must never reach training (only their keys are read)
HELDOUT_SOURCES: tuple[str, ...] = ("promptshield",)


#: a row whose character 5-gram Jaccard similarity to a held-out text reaches this is dropped
NEAR_DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True, slots=True)
class DedupResult:
    """Rows kept after deduplication and how many were dropped for each reason."""

    rows: tuple[CorpusRow, ...]
    dropped_within: int
    dropped_dev: int
    dropped_heldout: int
    dropped_heldout_near: int = 0
    dropped_dev_near: int = 0


def load_dev_keys(
    dev_dir: str | Path, *, heldout_sources: Sequence[str] = HELDOUT_SOURCES
) -> tuple[frozenset[str], frozenset[str]]:
    """Normalized texts of the dev corpora: (training sources, held-out sources)."""
    root = Path(dev_dir)
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no *.jsonl files in {root}")
    dev: set[str] = set()
    heldout: set[str] = set()
    for path in files:
        target = heldout if path.stem in heldout_sources else dev
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line).get("text")
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{line_no}: not JSON: {exc}") from exc
                if isinstance(text, str):
                    target.add(normalized_text(text))
    return frozenset(dev), frozenset(heldout)


def _shingles(key: str, size: int = 5) -> frozenset[str]:
    if len(key) <= size:
        return frozenset({key})
    return frozenset(key[i : i + size] for i in range(len(key) - size + 1))


class _NearDuplicates:
    """Reference texts, searchable by character 5-gram Jaccard similarity (exact, not sampled)."""

    def __init__(self, keys: Iterable[str], threshold: float) -> None:
        self.threshold = threshold
        self.shingles = [_shingles(k) for k in sorted(set(keys)) if k]
        self.postings: dict[str, list[int]] = {}
        for index, grams in enumerate(self.shingles):
            for gram in grams:
                self.postings.setdefault(gram, []).append(index)

    def matches(self, key: str) -> bool:
        """True if `key` (a normalized text) is a near-duplicate of a reference text."""
        grams = _shingles(key)
        # Jaccard >= t implies |A & B| >= t|A|, so B holds one of any |A| - t|A| + 1 grams of A:
        # the rarest ones give the fewest candidates (floor keeps the prefix long enough)
        prefix = len(grams) - math.floor(self.threshold * len(grams)) + 1
        rarest = sorted(grams, key=lambda g: (len(self.postings.get(g, ())), g))[:prefix]
        for index in sorted({i for g in rarest for i in self.postings.get(g, ())}):
            other = self.shingles[index]
            shared = len(grams & other)
            if shared >= self.threshold * (len(grams) + len(other) - shared):
                return True
        return False


def _near_any(keys: Iterable[str], reference: Iterable[str], threshold: float) -> frozenset[str]:
    """The `keys` whose character 5-gram Jaccard similarity to a reference text is >= threshold.

    Exact; built for few keys against many references (the references are only streamed).
    """
    targets = sorted({k for k in keys if k})
    if not targets:
        return frozenset()
    grams = [_shingles(k) for k in targets]
    postings: dict[str, list[int]] = {}
    for index, target in enumerate(grams):
        for gram in target:
            postings.setdefault(gram, []).append(index)
    smallest = min(len(g) for g in grams)
    found: set[int] = set()
    for ref in reference:
        # a text has at most max(1, len - 4) distinct 5-grams: too short to reach any target
        if max(1, len(ref) - 4) < threshold * smallest:
            continue
        ref_grams = _shingles(ref)
        shared: Counter[int] = Counter()
        for gram in ref_grams:
            shared.update(postings.get(gram, ()))
        for index, count in shared.items():
            if count >= threshold * (len(grams[index]) + len(ref_grams) - count):
                found.add(index)
    return frozenset(targets[i] for i in found)


def dedupe_rows(
    rows: Iterable[CorpusRow],
    *,
    dev_keys: frozenset[str] = frozenset(),
    heldout_keys: frozenset[str] = frozenset(),
    near_threshold: float | None = NEAR_DUPLICATE_JACCARD,
    near_dev_sources: frozenset[str] = frozenset(),
) -> DedupResult:
    """Drop repeated texts, texts already in the dev corpora, and texts of held-out sources.

    A text whose character 5-gram Jaccard similarity to a held-out text is at least
    `near_threshold` is dropped too (`None` turns that check off); so is a row of one of
    `near_dev_sources` that is that near a dev text.
    """
    rows = list(rows)
    near = (
        _NearDuplicates(heldout_keys, near_threshold)
        if near_threshold is not None and heldout_keys
        else None
    )
    near_dev = (
        _near_any(
            (normalized_text(r.text) for r in rows if r.source in near_dev_sources),
            dev_keys,
            near_threshold,
        )
        if near_threshold is not None and near_dev_sources and dev_keys
        else frozenset()
    )
    seen: set[str] = set()
    kept: list[CorpusRow] = []
    within = dev = dev_near = heldout = heldout_near = 0
    for row in rows:
        key = normalized_text(row.text)
        if not key or key in seen:
            within += 1
        elif key in dev_keys:
            dev += 1
        elif row.source in near_dev_sources and key in near_dev:
            dev_near += 1
        elif key in heldout_keys:
            heldout += 1
        elif near is not None and near.matches(key):
            heldout_near += 1
        else:
            kept.append(row)
        seen.add(key)
    return DedupResult(tuple(kept), within, dev, heldout, heldout_near, dev_near)
