"""The pattern store: known attacks, their embeddings, and nearest-neighbour search over them.

Owns `Pattern` / `PatternMatch`, the attack taxonomy with its severities, the loaders for
the curated pattern pack and the dev-corpus attacks, and `PatternStore`:

- patterns are embedded once, whole by default; with `window_chars` both patterns and
  screened texts are cut into sentence windows first, so a short injection inside a long
  text can match a short pattern (more accurate on some sources, but every window is one
  more query: see perf/bench_index.py for the latency cost);
- rows live in an append-only buffer; a pynndescent index covers the rows present at the
  last build, every later row sits in an exact "delta" searched by brute force, and a
  query merges both;
- `build()` (or `rebuild_in_background()`, which builds the graph in a helper process)
  indexes everything, warms the new index up (numba JIT) and swaps it in atomically;
  queries keep using the previous generation meanwhile;
- `quantize=True` keeps int8 codes instead of float32 rows and searches the index with
  pynndescent's int8 codes (4x less vector memory, some recall lost: see perf/bench_index.py);
  `index_options={"quantization": "int8"}` instead keeps the float32 rows, searches the
  int8 codes and re-ranks the search heap with the floats (more memory, not less);
- `dedup_index=True` indexes each distinct vector once and expands a hit to every row
  holding that vector: bit-identical copies (repeated windows) otherwise fill each other's
  neighbour lists, which wrecks the graph around them;
- `search_kernel="int8"` keeps pynndescent's graph and search tree but walks the graph in our
  own numba kernel over int8 codes of the rows (a quarter of the bytes, prefetched ahead), then
  re-ranks the search heap with the float32 rows: about twice as fast per visited vertex at
  1M patterns, the same recall (see perf/bench_index.py); 256 more bytes per pattern;
- `save()` / `load()` use a versioned directory format that records the embedder it was
  built with; loading with another embedder is refused.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import pickle
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from app._jit import LazyKernels, njit
from app._vectors import (
    FloatMatrix,
    dequantize_int8,
    index_merge_kernel,
    l2_normalize,
    merge_kernel,
    quantize_int8,
    text_windows,
)
from app.embedders import Embedder
from app.errors import ConfigError, PatternStoreError

log = logging.getLogger(__name__)

__all__ = [
    "CATEGORY_SEVERITY",
    "FORMAT_VERSION",
    "Pattern",
    "PatternMatch",
    "PatternStore",
    "default_patterns",
    "load_curated_patterns",
    "load_dev_patterns",
    "unit_queries",
]

#: our attack taxonomy and the default severity of each category (0..1)
CATEGORY_SEVERITY: dict[str, float] = {
    "instruction_override": 0.8,
    "system_prompt_exfiltration": 0.8,
    "tool_abuse": 0.9,
    "data_exfiltration": 0.9,
    "secrets_pii": 0.85,
    "roleplay_jailbreak": 0.75,
    "indirect_injection": 0.85,
    "encoding_obfuscation": 0.7,
    "harmful_request": 0.9,
}

#: on-disk format of `PatternStore.save`; bump on any incompatible change
FORMAT_VERSION = 1

_CURATED_DEFAULT = Path(__file__).with_name("data") / "curated_patterns.yaml"

# (source, category prefix) -> taxonomy category, first match wins; "" matches any category
_DEV_CATEGORY_RULES: tuple[tuple[str, str, str], ...] = (
    ("garak", "sysprompt_extraction", "system_prompt_exfiltration"),
    ("garak", "", "roleplay_jailbreak"),
    ("promptinject", "prompt_leaking", "system_prompt_exfiltration"),
    ("promptinject", "", "instruction_override"),
    ("promptshield", "encoding", "encoding_obfuscation"),
    ("promptshield", "token_smuggling", "encoding_obfuscation"),
    ("promptshield", "adversarial", "tool_abuse"),
    ("promptshield", "agent_manipulation", "tool_abuse"),
    ("promptshield", "payload_injection", "tool_abuse"),
    ("promptshield", "jailbreak", "roleplay_jailbreak"),
    ("promptshield", "persona_replacement", "roleplay_jailbreak"),
    ("promptshield", "prompt_extraction", "system_prompt_exfiltration"),
    ("promptshield", "model_fingerprinting", "system_prompt_exfiltration"),
    ("promptshield", "training_extraction", "secrets_pii"),
    ("promptshield", "rag_poisoning", "indirect_injection"),
    ("promptshield", "", "instruction_override"),
    ("spikee_seeds", "seeds-sysmsg-extraction", "system_prompt_exfiltration"),
    ("spikee_seeds", "seeds-llm-mailbox", "indirect_injection"),
    ("spikee_seeds", "seeds-cybersec", "data_exfiltration"),
    ("spikee_seeds", "", "instruction_override"),
    ("pyrit", "", "roleplay_jailbreak"),
    ("verazuo", "", "roleplay_jailbreak"),
    ("", "", "instruction_override"),
)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One known attack: its text, taxonomy category, severity (0..1) and provenance."""

    id: str
    text: str
    category: str
    severity: float
    source: str

    def digest(self) -> bytes:
        """Stable content hash of this pattern (feeds the pattern-set version)."""
        payload = json.dumps(
            [self.id, self.text, self.category, round(self.severity, 6), self.source],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class PatternMatch:
    """A known pattern close to a screened text, with its cosine similarity."""

    pattern_id: str
    category: str
    severity: float
    similarity: float
    source: str


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------


def _dev_category(source: str, category: str) -> str:
    if category in CATEGORY_SEVERITY:  # rows already in the taxonomy (app/data/corpora)
        return category
    for rule_source, prefix, mapped in _DEV_CATEGORY_RULES:
        if source.startswith(rule_source) and category.startswith(prefix):
            return mapped
    raise AssertionError("the catch-all rule always matches")  # pragma: no cover


def _dedup_key(text: str) -> str:
    return " ".join(text.lower().split())


def load_dev_patterns(
    data_dir: str | Path,
    *,
    exclude_sources: Iterable[str] = (),
    include_sources: Iterable[str] | None = None,
    max_chars: int | None = None,
) -> list[Pattern]:
    """Attack rows (label 1) of `data_dir/*.jsonl` as patterns: deduplicated, categories mapped.

    `exclude_sources` / `include_sources` filter on the row's `source` field (for
    leave-one-source-out validation). `max_chars` drops longer rows.
    """
    root = Path(data_dir)
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no *.jsonl files in {root}")
    excluded = set(exclude_sources)
    included = set(include_sources) if include_sources is not None else None
    seen: set[str] = set()
    out: list[Pattern] = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{line_no}: not JSON: {exc}") from exc
                if row.get("label") != 1:
                    continue
                source = str(row.get("source", path.stem))
                if source in excluded or (included is not None and source not in included):
                    continue
                text = str(row.get("text", "")).strip()
                if not text or (max_chars is not None and len(text) > max_chars):
                    continue
                key = _dedup_key(text)
                if key in seen:
                    continue
                seen.add(key)
                category = _dev_category(source, str(row.get("category", "")))
                digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()
                out.append(
                    Pattern(
                        id=f"dev:{source}:{digest[:12]}",
                        text=text,
                        category=category,
                        severity=CATEGORY_SEVERITY[category],
                        source=f"dev:{source}",
                    )
                )
    return out


def load_curated_patterns(path: str | Path | None = None) -> list[Pattern]:
    """The hand-written pattern pack (`app/data/curated_patterns.yaml` by default)."""
    file = Path(path) if path is not None else _CURATED_DEFAULT
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read curated patterns {file}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("patterns"), list):
        raise ConfigError(f"{file}: expected a mapping with a 'patterns' list")
    out: list[Pattern] = []
    ids: set[str] = set()
    for n, entry in enumerate(document["patterns"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{file}: pattern #{n} is not a mapping")
        try:
            pattern = Pattern(
                id=str(entry["id"]),
                text=str(entry["text"]).strip(),
                category=str(entry["category"]),
                severity=float(
                    entry.get("severity", CATEGORY_SEVERITY.get(entry["category"], 0.0))
                ),
                source=str(entry.get("source", "curated")),
            )
        except KeyError as exc:
            raise ConfigError(f"{file}: pattern #{n} misses field {exc}") from exc
        if pattern.category not in CATEGORY_SEVERITY:
            raise ConfigError(
                f"{file}: pattern {pattern.id}: unknown category {pattern.category!r}"
            )
        if not 0.0 <= pattern.severity <= 1.0:
            raise ConfigError(f"{file}: pattern {pattern.id}: severity outside 0..1")
        if not pattern.text:
            raise ConfigError(f"{file}: pattern {pattern.id}: empty text")
        if pattern.id in ids:
            raise ConfigError(f"{file}: duplicate pattern id {pattern.id}")
        ids.add(pattern.id)
        out.append(pattern)
    return out


def default_patterns(dev_data_dir: str | Path | None = None) -> list[Pattern]:
    """The curated pack, plus the dev-corpus attacks when `dev_data_dir` is given."""
    patterns = load_curated_patterns()
    if dev_data_dir is not None:
        patterns += load_dev_patterns(dev_data_dir)
    return patterns


# ---------------------------------------------------------------------------------------------
# Store internals
# ---------------------------------------------------------------------------------------------


class _RowBuffer:
    """Append-only (n, dim) array with doubling capacity; old views stay valid for readers."""

    def __init__(self, dim: int, dtype: npt.DTypeLike) -> None:
        self.data: npt.NDArray[Any] = np.zeros((16, dim), dtype=dtype)
        self.size = 0

    def append(self, rows: npt.NDArray[Any]) -> None:
        needed = self.size + len(rows)
        if needed > len(self.data):
            grown = np.zeros((max(needed, 2 * len(self.data)), self.data.shape[1]), self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown  # readers holding the old array keep a consistent prefix
        self.data[self.size : needed] = rows
        self.size = needed

    def view(self, n: int) -> npt.NDArray[Any]:
        return self.data[:n]


@dataclass(frozen=True, slots=True)
class _Generation:
    """What queries read: one index (or none) plus the exact delta, swapped as a unit.

    `row_alive` and `row_pattern` are views of the store's row buffers as they were when the
    generation was made (retiring a pattern writes through them); a rebuild that compacts
    the rows gives its generation new ones, so a query never mixes two numberings.
    """

    index: Any  # pynndescent.NNDescent | None
    index_rows: npt.NDArray[np.int64]  # index position -> global row
    delta_rows: npt.NDArray[np.int64]  # global rows searched exactly
    delta_vectors: FloatMatrix  # their float32 unit vectors, contiguous
    row_alive: npt.NDArray[np.bool_]  # global row -> live?
    row_pattern: npt.NDArray[np.int64]  # global row -> pattern index
    query_lock: threading.Lock = field(default_factory=threading.Lock)


_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


class PatternStore:
    """Known attack patterns with a pynndescent index plus an exact delta buffer."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        n_neighbors: int = 30,
        quantize: bool = False,
        window_chars: int | None = None,
        max_windows: int = 32,
        epsilon: float = 0.1,
        exact_below: int = 2048,
        min_search_k: int = 10,
        random_state: int = 42,
        n_jobs: int | None = None,
        index_options: dict[str, Any] | None = None,
        dedup_index: bool = False,
        search_kernel: str = "pynndescent",
    ) -> None:
        if n_neighbors < 2:
            raise ConfigError("n_neighbors must be at least 2")
        if window_chars is not None and window_chars < 40:
            raise ConfigError("window_chars must be at least 40 (or None for whole texts)")
        proxy = (index_options or {}).get("quantization")
        if proxy not in (None, "int8") or (quantize and proxy is not None):
            raise ConfigError(
                "index_options quantization must be 'int8' (float re-ranking) and needs"
                " quantize=False (quantize=True already searches int8 codes alone)"
            )
        if search_kernel not in ("pynndescent", "int8"):
            raise ConfigError("search_kernel must be 'pynndescent' or 'int8'")
        if search_kernel == "int8" and (quantize or proxy is not None):
            raise ConfigError(
                "search_kernel='int8' re-ranks with the float32 rows: it needs quantize=False"
                " and no index_options quantization"
            )
        self.embedder = embedder
        self.n_neighbors = n_neighbors
        self.quantize = quantize
        self.window_chars = window_chars
        self.max_windows = max(1, max_windows)
        self.epsilon = epsilon
        self.exact_below = exact_below
        self.min_search_k = min_search_k
        self.random_state = random_state
        self.n_jobs = n_jobs
        #: extra pynndescent.NNDescent arguments (e.g. pruning_degree_multiplier, diversify_prob)
        self.index_options = dict(index_options or {})
        #: index each distinct vector once (identical rows share one graph vertex)
        self.dedup_index = dedup_index
        #: who walks the search graph: pynndescent (float32 rows) or our int8-code kernel
        self.search_kernel = search_kernel
        self._patterns: list[Pattern] = []
        self._by_id: dict[str, int] = {}
        self._pattern_alive: list[bool] = []
        self._pattern_rows: list[tuple[int, int]] = []  # pattern -> its [start, end) rows
        self._rows = _RowBuffer(embedder.dim, np.int8 if quantize else np.float32)
        self._row_pattern = _RowBuffer(1, np.int64)
        self._row_alive = _RowBuffer(1, np.bool_)
        self._merge = merge_kernel()  # numba: candidate merge of every query
        self._merge_index = index_merge_kernel()  # the same, straight from one index search
        self._digest_sum = 0
        self._n_alive = 0
        self._write_lock = threading.Lock()  # serialises add() against the swap in build()
        self._build_lock = threading.Lock()  # one build at a time
        self._generation = self._new_generation(
            None, _EMPTY_ROWS, _EMPTY_ROWS, np.zeros((0, embedder.dim), np.float32)
        )

    @classmethod
    def from_patterns(
        cls,
        patterns: Sequence[Pattern],
        *,
        embedder: Embedder,
        build: bool = True,
        progress: bool = False,
        **settings: Any,
    ) -> PatternStore:
        """A store holding `patterns`, indexed (and warmed up) unless `build=False`."""
        store = cls(embedder=embedder, **settings)
        store.add(patterns)
        if build:
            store.build(progress=progress)
            store.warm_up()
        return store

    # -- introspection -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of live patterns (replaced or removed ones excluded)."""
        return self._n_alive

    @property
    def version(self) -> str:
        """Content hash of the live pattern set, independent of insertion order."""
        return f"ps-{(self._digest_sum % (1 << 256)).to_bytes(32, 'big').hex()[:16]}"

    @property
    def n_rows(self) -> int:
        """Number of embedded rows (windows), live or not."""
        return self._rows.size

    @property
    def n_delta_rows(self) -> int:
        """Rows not yet covered by the index (searched exactly)."""
        return len(self._generation.delta_rows)

    def patterns(self) -> list[Pattern]:
        """The live patterns, in insertion order."""
        return [p for p, alive in zip(self._patterns, self._pattern_alive, strict=True) if alive]

    # -- writes --------------------------------------------------------------------------------

    def add(self, patterns: Sequence[Pattern], *, vectors: FloatMatrix | None = None) -> None:
        """Embed `patterns` and append them to the exact delta (an existing id is replaced).

        `vectors` (one unit row per pattern) skips embedding; it is only accepted when
        windowing is off, since a windowed pattern has several rows.
        """
        fresh_at = self._new_patterns(patterns)
        fresh = [patterns[i] for i in fresh_at]
        if not fresh:
            return
        if vectors is not None:
            if self.window_chars is not None:
                raise PatternStoreError("precomputed vectors cannot be used with window_chars")
            if vectors.shape != (len(patterns), self.embedder.dim):
                raise PatternStoreError(
                    f"vectors shape {vectors.shape} does not match {len(patterns)} patterns"
                )
            units = l2_normalize(np.asarray(vectors, dtype=np.float32)[fresh_at])
            owners = list(range(len(fresh)))
        else:
            texts: list[str] = []
            owners = []
            for n, pattern in enumerate(fresh):
                for window in self._windows(pattern.text):
                    texts.append(window)
                    owners.append(n)
            units = self.embedder.embed(texts)
        nonzero = np.einsum("ij,ij->i", units, units) > 0.5
        with self._write_lock:
            first_pattern = len(self._patterns)
            for pattern in fresh:
                old = self._by_id.get(pattern.id)
                if old is not None:
                    self._retire(old)
                self._by_id[pattern.id] = len(self._patterns)
                self._patterns.append(pattern)
                self._pattern_alive.append(True)
                self._digest_sum += int.from_bytes(pattern.digest(), "big")
                self._n_alive += 1
            units = units[nonzero]
            owner_idx = np.asarray(owners, dtype=np.int64)[nonzero] + first_pattern
            start = self._rows.size
            self._rows.append(quantize_int8(units) if self.quantize else units)
            self._row_pattern.append(owner_idx[:, None])
            self._row_alive.append(np.ones((len(units), 1), dtype=np.bool_))
            bounds = np.searchsorted(owner_idx, np.arange(first_pattern, len(self._patterns) + 1))
            self._pattern_rows.extend(
                (start + int(a), start + int(b))
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            )
            new_rows = np.arange(start, start + len(units), dtype=np.int64)
            stored = dequantize_int8(quantize_int8(units)) if self.quantize else units
            gen = self._generation
            self._generation = self._new_generation(
                gen.index,
                gen.index_rows,
                np.concatenate([gen.delta_rows, new_rows]),
                np.ascontiguousarray(np.concatenate([gen.delta_vectors, stored])),
                gen.query_lock,
            )

    def _new_generation(
        self,
        index: Any,
        index_rows: npt.NDArray[np.int64],
        delta_rows: npt.NDArray[np.int64],
        delta_vectors: FloatMatrix,
        query_lock: threading.Lock | None = None,
    ) -> _Generation:
        """A generation over the current row buffers (callers hold the write lock)."""
        return _Generation(
            index,
            index_rows,
            delta_rows,
            delta_vectors,
            self._row_alive.data[:, 0],
            self._row_pattern.data[:, 0],
            threading.Lock() if query_lock is None else query_lock,
        )

    def remove(self, pattern_ids: Iterable[str]) -> int:
        """Retire patterns by id (their rows stop matching at once); returns how many."""
        removed = 0
        with self._write_lock:
            for pattern_id in pattern_ids:
                idx = self._by_id.pop(pattern_id, None)
                if idx is not None:
                    self._retire(idx)
                    removed += 1
        return removed

    def _new_patterns(self, patterns: Sequence[Pattern]) -> list[int]:
        fresh: list[int] = []
        batch_ids: set[str] = set()
        for n, pattern in enumerate(patterns):
            if not 0.0 <= pattern.severity <= 1.0:
                raise PatternStoreError(f"pattern {pattern.id}: severity outside 0..1")
            if not pattern.text.strip():
                raise PatternStoreError(f"pattern {pattern.id}: empty text")
            if pattern.id in batch_ids:
                raise PatternStoreError(f"pattern id {pattern.id} appears twice in one add()")
            batch_ids.add(pattern.id)
            old = self._by_id.get(pattern.id)
            if old is not None and self._patterns[old] == pattern:
                continue  # re-delivery of the same pattern (compacted topic replay)
            fresh.append(n)
        return fresh

    def _retire(self, pattern_idx: int) -> None:
        if not self._pattern_alive[pattern_idx]:
            return
        self._pattern_alive[pattern_idx] = False
        self._digest_sum -= int.from_bytes(self._patterns[pattern_idx].digest(), "big")
        self._n_alive -= 1
        start, end = self._pattern_rows[pattern_idx]
        self._row_alive.data[start:end] = False

    def _windows(self, text: str) -> list[str]:
        if self.window_chars is None:
            stripped = text.strip()
            return [stripped] if stripped else []
        # very long texts get wider windows rather than an unbounded query fan-out
        width = max(self.window_chars, -(-len(text) // self.max_windows))
        windows = text_windows(text, max_chars=width)
        while len(windows) > self.max_windows:  # sentence overlap can push the count over
            width = -(-width * len(windows) // self.max_windows)
            windows = text_windows(text, max_chars=width)
        return windows

    # -- index ---------------------------------------------------------------------------------

    def build(
        self, *, progress: bool = False, n_jobs: int | None = None, helper: bool = False
    ) -> None:
        """(Re)build the index over every live row, warm it up, swap it in, empty the delta.

        `n_jobs` overrides the store's thread count for this build. With `helper`, the graph
        is built in this process's helper process (`_Builder`) and sent back pickled.
        """
        with self._build_lock:
            started = time.perf_counter()
            with self._write_lock:
                n_rows = self._rows.size
                alive = self._row_alive.view(n_rows)[:, 0].copy()
                rows_now = self._rows.data  # the prefix [:n_rows] never changes
            live_rows = np.flatnonzero(alive).astype(np.int64)
            index = None
            if len(live_rows) >= max(self.exact_below, 4 * self.n_neighbors):
                index = self._build_index(
                    rows_now[live_rows],
                    progress=progress,
                    n_jobs=self.n_jobs if n_jobs is None else n_jobs,
                    helper=helper,
                )
            with self._write_lock:
                gen = self._generation
                later = gen.delta_rows[gen.delta_rows >= n_rows]
                # rows dead when the build began are in neither the new index nor the delta
                new_row_of = self._compact(np.concatenate([live_rows, later]))
                dropped = 0 if new_row_of is None else int((new_row_of < 0).sum())
                if new_row_of is not None:
                    live_rows, later = new_row_of[live_rows], new_row_of[later]
                if index is None:
                    delta_rows = np.concatenate([live_rows, later])
                    index_rows = _EMPTY_ROWS
                else:
                    delta_rows = later
                    index_rows = live_rows
                self._generation = self._new_generation(
                    index,
                    index_rows,
                    delta_rows,
                    self._float_rows(delta_rows),
                )
            log.info(
                "pattern index built: %d rows indexed, %d exact, %d retired rows freed, %.2f s",
                len(index_rows),
                len(delta_rows),
                dropped,
                time.perf_counter() - started,
            )

    def _compact(self, keep: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
        """Keep only rows `keep` (ascending), renumbered in order: old row -> new (-1: gone).

        Under the write lock, at a rebuild's swap: the dropped rows are those of patterns
        retired (removed or replaced) before the build began. Their patterns keep their
        index, with the text dropped, so a match found just before still names them. None
        when every row is kept.
        """
        n_total = self._rows.size
        if len(keep) == n_total:
            return None
        new_row_of = np.full(n_total, -1, dtype=np.int64)
        new_row_of[keep] = np.arange(len(keep), dtype=np.int64)
        buffers = []
        for old in (self._rows, self._row_pattern, self._row_alive):
            fresh = _RowBuffer(old.data.shape[1], old.data.dtype)
            fresh.append(old.data[keep])
            buffers.append(fresh)
        self._rows, self._row_pattern, self._row_alive = buffers
        for p, (start, end) in enumerate(self._pattern_rows):
            if end > start and new_row_of[start] >= 0:
                first = int(new_row_of[start])
                self._pattern_rows[p] = (first, first + end - start)
            else:
                self._pattern_rows[p] = (0, 0)
                if not self._pattern_alive[p] and self._patterns[p].text:
                    self._patterns[p] = replace(self._patterns[p], text="")
        return new_row_of

    def rebuild_in_background(
        self, *, n_jobs: int | None = 1, helper: bool = True
    ) -> threading.Thread:
        """Start `build()` in a daemon thread; queries use the current generation meanwhile.

        The graph is built in the helper process (`helper`): pynndescent's build kernels are
        compiled on first use in each process (about 35 s) and are not cached, and in this
        process that compilation and the build hold the interpreter lock, which took
        screening p99 from 1.9 to 22 ms (max 0.35 s) for 37 s at a worker's first rebuild;
        built in the helper, p99 was 2.7 ms (`perf/bench_rebuild.py`). If the helper fails,
        the build runs here after all. One build thread by default, so the
        worker that keeps screening keeps a core (with every core, a review measured
        screening p99 rising from ~2-5 ms to 9-19 ms). A failed build is logged; the current
        generation keeps serving.
        """

        def build() -> None:
            try:
                self.build(n_jobs=n_jobs, helper=helper)
            except Exception:  # noqa: BLE001 - the old index stays; the log says why
                log.exception("background rebuild of the pattern index failed")

        thread = threading.Thread(target=build, name="pattern-index-rebuild", daemon=True)
        thread.start()
        return thread

    def _build_index(
        self, rows: npt.NDArray[Any], *, progress: bool, n_jobs: int | None, helper: bool
    ) -> Any:
        def graph(data: npt.NDArray[Any]) -> Any:
            options = self._graph_options(n_jobs)
            if helper:
                try:
                    return _builder().build(data, options)
                except Exception:  # noqa: BLE001 - a build here is slower for screening, not wrong
                    log.exception("the index-build helper failed: building in this process")
                    _drop_builder()
            return _nndescent_index(data, progress=progress, **options)

        index: Any = None
        if self.dedup_index:
            first, group_indptr, group_members = _distinct_groups(rows)
            if len(first) < len(rows):
                if len(first) < max(self.exact_below, 4 * self.n_neighbors):
                    return None  # too few distinct vectors for a graph: the delta is exact
                index = _DistinctIndex(graph(rows[first]), group_indptr, group_members)
        if index is None:
            index = graph(rows)
        # one query compiles the search path (and the hit expansion) before the swap
        _query_index(index, np.eye(1, rows.shape[1], dtype=np.float32), 1, self.epsilon)
        return index

    def _graph_options(self, n_jobs: int | None) -> dict[str, Any]:
        """The arguments of `_nndescent_index` besides the rows (picklable, for the helper)."""
        return {
            "n_neighbors": self.n_neighbors,
            "random_state": self.random_state,
            "n_jobs": n_jobs,
            "quantize": self.quantize,
            "index_options": {"quantization": self._index_quantization(), **self.index_options},
            "search_kernel": self.search_kernel,
        }

    def _index_quantization(self) -> str | None:
        return "int8" if self.quantize else self.index_options.get("quantization")

    def _float_rows(self, rows: npt.NDArray[np.int64]) -> FloatMatrix:
        picked = self._rows.data[rows]
        if self.quantize:
            return dequantize_int8(picked)
        return np.ascontiguousarray(picked, dtype=np.float32)

    def warm_up(self) -> None:
        """Compile numba search paths now so the first real query does not pay for JIT."""
        dim = self.embedder.dim
        probe = np.eye(1, dim, dtype=np.float32)
        gen = self._generation
        if gen.index is None:
            import pynndescent

            rng = np.random.default_rng(0)
            tiny = l2_normalize(rng.standard_normal((256, dim)).astype(np.float32))
            # a throwaway index of the same dtype compiles the kernels the real one will use
            scratch = pynndescent.NNDescent(
                tiny,
                metric="dot",
                n_neighbors=min(self.n_neighbors, 15),
                random_state=0,
                quantization=self._index_quantization(),
            )
            scratch.prepare()
            _query_index(scratch, probe, 5, self.epsilon)
            if self.search_kernel == "int8":
                _query_index(_CodeIndex(scratch), probe, 5, self.epsilon)
        self.query(probe, k=5)
        self.embedder.embed(["warm up"])

    # -- queries -------------------------------------------------------------------------------

    def query(self, vectors: FloatMatrix, k: int = 10) -> list[list[PatternMatch]]:
        """The `k` most similar live patterns for each row of `vectors`, best first."""
        results: list[list[PatternMatch]] = [[] for _ in range(len(vectors))]
        found = self._top_k(vectors, k)
        if found is None:
            return results
        live_q, owner, best, counts = found
        patterns = self._patterns
        for qi, out_i in enumerate(live_q):
            matches = results[out_i]
            for t in range(int(counts[qi])):
                pattern = patterns[int(owner[qi, t])]
                matches.append(
                    PatternMatch(
                        pattern_id=pattern.id,
                        category=pattern.category,
                        severity=pattern.severity,
                        similarity=float(best[qi, t]),
                        source=pattern.source,
                    )
                )
        return results

    def best_similarity(self, vectors: FloatMatrix) -> npt.NDArray[np.float32]:
        """The similarity of each row's nearest live pattern (0 when there is none).

        The same search as `query(vectors, k=1)`, without building matches: for stores whose
        only use is "how close is the nearest one" (the benign exemplars).
        """
        out = np.zeros(len(vectors), dtype=np.float32)
        found = self._top_k(vectors, 1)
        if found is not None:
            live_q, _, best, counts = found
            hit = counts > 0
            out[live_q[hit]] = best[hit, 0]
        return out

    def _top_k(
        self, vectors: FloatMatrix, k: int
    ) -> (
        tuple[
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
            npt.NDArray[np.float32],
            npt.NDArray[np.int64],
        ]
        | None
    ):
        """Query rows searched, and per row the owners, similarities and count of its matches."""
        queries = self.checked_queries(vectors)
        if len(queries) == 0 or k <= 0:
            return None
        prepared = unit_queries(queries)
        if prepared is None:
            return None
        live_q, units = prepared
        found = self.search_units(units, k)
        if found is None:
            return None
        return live_q, *found

    def checked_queries(self, vectors: FloatMatrix) -> FloatMatrix:
        """`vectors` as float32 rows of this store's dimension (PatternStoreError if not)."""
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.embedder.dim:
            raise PatternStoreError(
                f"query vectors must be (n, {self.embedder.dim}), got {queries.shape}"
            )
        return queries

    def search_units(
        self, units: FloatMatrix, k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        """Per unit row (from `unit_queries`, k >= 1): owners, similarities, match counts.

        The search behind `query` and `best_similarity`; a caller that queries several stores
        with the same vectors normalises them once.
        """
        gen = self._generation
        n = len(units)
        if gen.index is not None and not len(gen.delta_rows):
            # the usual case: one index, no delta; its raw output is merged in one kernel call
            k_index = min(max(k, self.min_search_k), len(gen.index_rows))
            with gen.query_lock:  # pynndescent reuses per-index scratch buffers
                idx, dist = _search_index(gen.index, units, k_index, self.epsilon)
            owner = np.empty((n, k), dtype=np.int64)
            best = np.empty((n, k), dtype=np.float32)
            counts = self._merge_index(
                idx,
                dist,
                gen.index_rows,
                gen.row_alive,
                gen.row_pattern,
                k,
                owner,
                best,
            )
            return owner, best, counts
        candidates: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
        if gen.index is not None:
            # a search heap narrower than ~10 loses recall even for k=1; over-fetch, then trim
            k_index = min(max(k, self.min_search_k), len(gen.index_rows))
            with gen.query_lock:
                idx, dist = _query_index(gen.index, units, k_index, self.epsilon)
            valid = idx >= 0
            rows = np.where(valid, gen.index_rows[np.maximum(idx, 0)], -1)
            candidates.append((rows, np.where(valid, 1.0 - dist, -np.inf).astype(np.float32)))
        if len(gen.delta_rows):
            sims = units @ gen.delta_vectors.T
            k_delta = min(k, sims.shape[1])
            top = np.argpartition(-sims, k_delta - 1, axis=1)[:, :k_delta]
            candidates.append(
                (gen.delta_rows[top], np.take_along_axis(sims, top, axis=1).astype(np.float32))
            )
        if not candidates:
            return None
        if len(candidates) == 1:
            rows_all, sims_all = candidates[0]
        else:
            rows_all = np.concatenate([c[0] for c in candidates], axis=1)
            sims_all = np.concatenate([c[1] for c in candidates], axis=1)
        owner = np.empty((n, k), dtype=np.int64)
        best = np.empty((n, k), dtype=np.float32)
        counts = self._merge(
            rows_all,
            sims_all,
            gen.row_alive,
            gen.row_pattern,
            k,
            owner,
            best,
        )
        return owner, best, counts

    def pattern_at(self, owner: int) -> Pattern:
        """The pattern an owner index of `search_units` refers to."""
        return self._patterns[owner]

    def match_texts(self, texts: Sequence[str], k: int = 10) -> list[list[PatternMatch]]:
        """Embed each text (window by window if windowing is on) and merge its windows' matches."""
        windows: list[str] = []
        owner: list[int] = []
        for n, text in enumerate(texts):
            for window in self._windows(text):
                windows.append(window)
                owner.append(n)
        merged: list[dict[str, PatternMatch]] = [{} for _ in texts]
        if windows:
            per_window = self.query(self.embedder.embed(windows), k=k)
            for n, matches in zip(owner, per_window, strict=True):
                best = merged[n]
                for match in matches:
                    held = best.get(match.pattern_id)
                    if held is None or match.similarity > held.similarity:
                        best[match.pattern_id] = match
        return [sorted(b.values(), key=lambda m: m.similarity, reverse=True)[:k] for b in merged]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the store to directory `path` (manifest, patterns, vectors, index pickle)."""
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        with self._write_lock:
            gen = self._generation
            n_rows = self._rows.size
            vectors = self._rows.view(n_rows).copy()
            row_pattern = self._row_pattern.view(n_rows)[:, 0].copy()
            row_alive = self._row_alive.view(n_rows)[:, 0].copy()
            patterns = list(self._patterns)
            pattern_alive = list(self._pattern_alive)
        index_blob = _pickle_index(gen.index, gen.query_lock) if gen.index is not None else b""
        np.save(target / "vectors.npy", vectors)
        np.save(target / "row_pattern.npy", row_pattern)
        np.save(target / "row_alive.npy", row_alive)
        np.save(target / "index_rows.npy", gen.index_rows)
        np.save(target / "delta_rows.npy", gen.delta_rows)
        with (target / "patterns.jsonl").open("w", encoding="utf-8") as handle:
            for pattern, alive in zip(patterns, pattern_alive, strict=True):
                row = {
                    "id": pattern.id,
                    "text": pattern.text,
                    "category": pattern.category,
                    "severity": pattern.severity,
                    "source": pattern.source,
                    "alive": alive,
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        (target / "index.pkl").write_bytes(index_blob)
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": {
                "name": self.embedder.name,
                "version": self.embedder.version,
                "dim": self.embedder.dim,
            },
            "pattern_set_version": self.version,
            "n_patterns": len(self),
            "n_rows": int(n_rows),
            "settings": {
                "n_neighbors": self.n_neighbors,
                "quantize": self.quantize,
                "window_chars": self.window_chars,
                "max_windows": self.max_windows,
                "epsilon": self.epsilon,
                "exact_below": self.exact_below,
                "min_search_k": self.min_search_k,
                "random_state": self.random_state,
                "index_options": self.index_options,
                "dedup_index": self.dedup_index,
                "search_kernel": self.search_kernel,
            },
            "index_sha256": hashlib.sha256(index_blob).hexdigest(),
            "saved_at": time.time(),
        }
        # the manifest goes last: a directory without one is an interrupted save
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls, path: str | Path, *, embedder: Embedder, n_jobs: int | None = None
    ) -> PatternStore:
        """Read a store saved by `save()`; PatternStoreError if built with another embedder."""
        source = Path(path)
        try:
            manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PatternStoreError(f"no readable pattern store at {source}: {exc}") from exc
        if manifest.get("format_version") != FORMAT_VERSION:
            raise PatternStoreError(
                f"{source}: format version {manifest.get('format_version')!r}, "
                f"this code reads {FORMAT_VERSION}"
            )
        saved = manifest["embedder"]
        current = {"name": embedder.name, "version": embedder.version, "dim": embedder.dim}
        if saved != current:
            raise PatternStoreError(
                f"{source} was built with embedder {saved}, refusing to use it with {current}"
            )
        settings = manifest["settings"]
        store = cls(
            embedder=embedder,
            n_neighbors=settings["n_neighbors"],
            quantize=settings["quantize"],
            window_chars=settings["window_chars"],
            max_windows=settings.get("max_windows", 32),
            epsilon=settings["epsilon"],
            exact_below=settings["exact_below"],
            min_search_k=settings["min_search_k"],
            random_state=settings["random_state"],
            n_jobs=n_jobs,
            index_options=settings.get("index_options"),
            dedup_index=settings.get("dedup_index", False),
            search_kernel=settings.get("search_kernel", "pynndescent"),
        )
        try:
            vectors = np.load(source / "vectors.npy", allow_pickle=False)
            row_pattern = np.load(source / "row_pattern.npy", allow_pickle=False)
            row_alive = np.load(source / "row_alive.npy", allow_pickle=False)
            index_rows = np.load(source / "index_rows.npy", allow_pickle=False)
            delta_rows = np.load(source / "delta_rows.npy", allow_pickle=False)
            # split on "\n" only: str.splitlines also breaks on U+2028 etc. inside JSON strings
            text = (source / "patterns.jsonl").read_text(encoding="utf-8")
            lines = [line for line in text.split("\n") if line.strip()]
            index_blob = (source / "index.pkl").read_bytes()
        except (OSError, ValueError) as exc:
            raise PatternStoreError(f"{source}: damaged pattern store: {exc}") from exc
        if hashlib.sha256(index_blob).hexdigest() != manifest["index_sha256"]:
            raise PatternStoreError(f"{source}: index.pkl does not match its checksum")
        expected_dtype = np.int8 if store.quantize else np.float32
        if vectors.dtype != expected_dtype or vectors.shape[1:] != (embedder.dim,):
            raise PatternStoreError(
                f"{source}: vectors.npy has shape/dtype {vectors.shape}/{vectors.dtype}"
            )
        for line in lines:
            row = json.loads(line)
            pattern = Pattern(
                row["id"], row["text"], row["category"], row["severity"], row["source"]
            )
            store._patterns.append(pattern)
            store._pattern_alive.append(bool(row["alive"]))
            if row["alive"]:
                store._by_id[pattern.id] = len(store._patterns) - 1
                store._digest_sum += int.from_bytes(pattern.digest(), "big")
                store._n_alive += 1
        store._rows.append(vectors)
        store._row_pattern.append(row_pattern[:, None])
        store._row_alive.append(row_alive[:, None])
        bounds = np.searchsorted(row_pattern, np.arange(len(store._patterns) + 1))
        store._pattern_rows = [
            (int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        index = _unpickle_index(index_blob) if index_blob else None
        store._generation = store._new_generation(
            index, index_rows, delta_rows, store._float_rows(delta_rows)
        )
        if store.version != manifest["pattern_set_version"]:
            raise PatternStoreError(f"{source}: pattern set does not match its recorded version")
        return store


_ONE_ROW = np.zeros(1, dtype=np.int64)
_ONE_ROW.setflags(write=False)
_ONE = np.float32(1.0)


def unit_queries(
    queries: FloatMatrix,
) -> tuple[npt.NDArray[np.int64], FloatMatrix] | None:
    """The rows of float32 `queries` worth searching (squared norm > 0.25), scaled to unit norm.

    Returns their positions and the unit rows, or None when no row is worth searching. Every
    store normalises queries this way, so one result serves every store of the same dimension.
    """
    norms = np.einsum("ij,ij->i", queries, queries)
    if len(queries) == 1:  # the common case, in float32 scalars (IEEE: the same bits)
        norm = norms[0]
        if not norm > 0.25:
            return None
        return _ONE_ROW, queries * (_ONE / np.sqrt(norm))
    live_q = np.flatnonzero(norms > 0.25)
    if len(live_q) == 0:
        return None
    # times the reciprocal, as l2_normalize does: the same bits, so the same features
    return live_q, queries[live_q] * (1.0 / np.sqrt(norms[live_q]))[:, None]


def _raw_placeholder(n: int, dim: int) -> FloatMatrix:
    """Zero-memory (n, dim) stand-in for pynndescent's float rows (int8 search never reads them)."""
    return np.broadcast_to(np.zeros(dim, dtype=np.float32), (n, dim))


_PLACEHOLDER = "__aimds_raw_placeholder__"
_DISTINCT = "__aimds_distinct_index__"


class _DistinctIndex:
    """A pynndescent index over distinct rows, answering in positions of all indexed rows."""

    __slots__ = ("inner", "group_indptr", "group_members")

    def __init__(
        self,
        inner: Any,
        group_indptr: npt.NDArray[np.int64],
        group_members: npt.NDArray[np.int64],
    ) -> None:
        self.inner = inner
        #: distinct vector u is held by positions group_members[group_indptr[u]:group_indptr[u+1]]
        self.group_indptr = group_indptr
        self.group_members = group_members


def _distinct_groups(
    rows: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First position of each distinct row (ascending) and the positions sharing it (CSR)."""
    contiguous = np.ascontiguousarray(rows)
    keys = contiguous.view(np.dtype((np.void, contiguous.dtype.itemsize * rows.shape[1])))[:, 0]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first), dtype=np.int64)
    group = rank[inverse.ravel()]  # position -> its distinct vector, numbered by first position
    members = np.argsort(group, kind="stable").astype(np.int64)
    indptr = np.searchsorted(group[members], np.arange(len(first) + 1)).astype(np.int64)
    return first[order].astype(np.int64), indptr, members


def _expand_groups_py(idx, dist, indptr, members):
    # each hit (a distinct vector) becomes every position holding it, in hit order; rows are
    # as wide as the widest expansion (a dead copy must not crowd out a live one), and -1
    # marks empty slots, as in pynndescent's own output
    n, m = idx.shape
    width = 0
    for i in range(n):
        total = 0
        for j in range(m):
            u = idx[i, j]
            if u >= 0:
                total += indptr[u + 1] - indptr[u]
        width = max(width, total)
    out_idx = np.full((n, width), -1, dtype=np.int64)
    out_dist = np.full((n, width), np.inf, dtype=np.float32)
    for i in range(n):
        c = 0
        for j in range(m):
            u = idx[i, j]
            if u < 0:
                continue
            for t in range(indptr[u], indptr[u + 1]):
                out_idx[i, c] = members[t]
                out_dist[i, c] = dist[i, j]
                c += 1
    return out_idx, out_dist


_EXPAND = LazyKernels(lambda: (njit(_expand_groups_py),))


def _expand_kernel() -> Any:
    return _EXPAND()[0]


def _nndescent_index(
    rows: npt.NDArray[Any],
    *,
    progress: bool,
    n_neighbors: int,
    random_state: int,
    n_jobs: int | None,
    quantize: bool,
    index_options: dict[str, Any],
    search_kernel: str,
) -> Any:
    """pynndescent's graph and search tree over `rows`, prepared (a `_CodeIndex` for int8)."""
    import pynndescent

    data = dequantize_int8(rows) if quantize else np.ascontiguousarray(rows)
    index = pynndescent.NNDescent(
        data,
        metric="dot",
        n_neighbors=n_neighbors,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=progress,
        low_memory=True,
        **index_options,
    )
    index.prepare()
    index.verbose = False  # progress was for the build: later searches print nothing
    if quantize:
        # the int8 search reads only the codes: drop the float copy kept for reranking
        index._raw_data = _raw_placeholder(len(data), data.shape[1])
    del data
    if search_kernel == "int8":
        return _CodeIndex(index)
    return index


def _helper_build(rows: npt.NDArray[Any], options: dict[str, Any]) -> bytes:
    """`_nndescent_index` in the helper process, pickled as a saved store pickles it."""
    return _pickle_index(_nndescent_index(rows, progress=False, **options), threading.Lock())


class _Builder:
    """A helper process that builds pynndescent graphs, started on first use.

    One process for this process's lifetime (`_builder()`), shared by every store, so only
    its first build compiles pynndescent's kernels; "spawn", because forking a process that
    runs threads (Faust, the rebuild thread) is unsafe.
    """

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    def build(self, rows: npt.NDArray[Any], options: dict[str, Any]) -> Any:
        """The index `_nndescent_index(rows, **options)` would return, built over there."""
        return _unpickle_index(self._pool.submit(_helper_build, rows, options).result())

    def close(self) -> None:
        """Stop the helper process (a build in progress is finished first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


_BUILDER: _Builder | None = None
_BUILDER_LOCK = threading.Lock()


def _drop_builder() -> None:
    """Forget a failed helper (the next rebuild starts a new one)."""
    global _BUILDER
    with _BUILDER_LOCK:
        failed, _BUILDER = _BUILDER, None
    if failed is not None:
        with contextlib.suppress(Exception):
            failed.close()


def _builder() -> _Builder:
    """This process's helper process for index builds (started by the first call)."""
    global _BUILDER
    with _BUILDER_LOCK:
        if _BUILDER is None:
            _BUILDER = _Builder()
            log.info("index builds in the background run in a helper process (spawned now)")
            # shut down while the interpreter is whole (collected later, the pool's exit hook
            # finds multiprocessing half torn down and prints a traceback)
            atexit.register(_BUILDER.close)
        return _BUILDER


def _pickle_index(index: Any, lock: threading.Lock) -> bytes:
    if isinstance(index, _DistinctIndex):
        groups = {
            _DISTINCT: True,
            "inner": _index_state(index.inner, lock),
            "group_indptr": index.group_indptr,
            "group_members": index.group_members,
        }
        return pickle.dumps(groups, protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.dumps(_index_state(index, lock), protocol=pickle.HIGHEST_PROTOCOL)


def _index_state(index: Any, lock: threading.Lock) -> dict[str, Any]:
    if isinstance(index, _CodeIndex):
        # the codes are derived from the rows: rebuilt on load rather than stored
        return {_CODES: True, "inner": _index_state(index.inner, lock)}
    with lock:
        state: dict[str, Any] = index.__getstate__()
    raw = state["_raw_data"]
    if isinstance(raw, np.ndarray) and raw.strides[0] == 0:
        # never let pickle materialise the placeholder into n * dim floats
        state["_raw_data"] = (_PLACEHOLDER, raw.shape[0], raw.shape[1])
    return state


def _unpickle_index(blob: bytes) -> Any:
    # the blob's checksum was verified against the manifest by the caller; the store
    # directory must be as trusted as the code (only our own build step writes it)
    state = pickle.loads(blob)  # noqa: S301
    if state.get(_DISTINCT):
        return _DistinctIndex(
            _index_from_state(state["inner"]), state["group_indptr"], state["group_members"]
        )
    return _index_from_state(state)


def _index_from_state(state: dict[str, Any]) -> Any:
    import pynndescent

    if state.get(_CODES):
        return _CodeIndex(_index_from_state(state["inner"]))
    raw = state["_raw_data"]
    if isinstance(raw, tuple) and raw and raw[0] == _PLACEHOLDER:
        state["_raw_data"] = _raw_placeholder(raw[1], raw[2])
    # a verbose index prints to stdout when it compiles its search (in __setstate__ too):
    # `aimds scan` writes JSONL there
    state["verbose"] = False
    index = pynndescent.NNDescent.__new__(pynndescent.NNDescent)
    index.__setstate__(state)
    return index


def _query_index(
    index: Any, units: FloatMatrix, k: int, epsilon: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    indices, distances = _search_index(index, units, k, epsilon)
    return np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float32)


def _search_index(index: Any, units: FloatMatrix, k: int, epsilon: float) -> tuple[Any, Any]:
    """The index's raw neighbours of unit rows (the merge kernel takes the raw arrays)."""
    if isinstance(index, _DistinctIndex):
        idx, dist = _search_index(index.inner, units, k, epsilon)
        return _expand_kernel()(idx, dist, index.group_indptr, index.group_members)
    if isinstance(index, _CodeIndex):
        return index.query(units, k, epsilon)
    if getattr(index, "quantization", None) == "int8":
        raw = index._raw_data
        if isinstance(raw, np.ndarray) and raw.strides[0] == 0:
            # rerank_width=0: rank by the int8 codes alone (the float rows were dropped)
            return index.query(units, k=k, epsilon=epsilon, rerank_width=0)
        # the float rows were kept: the int8 search (heap of 1.66 k) is re-ranked with them
        return index.query(units, k=k, epsilon=epsilon, pre_normalized=True)
    return index.query(units, k=k, epsilon=epsilon, pre_normalized=True)


# ---------------------------------------------------------------------------------------------
# search_kernel="int8": pynndescent's search graph walked with int8 codes, re-ranked in float32
# ---------------------------------------------------------------------------------------------

_CODES = "__aimds_code_index__"
#: seed of the random entry points a query adds when the search tree gives too few (fixed per
#: query, so a result never depends on the queries before it)
_CODE_SEED = 0x2545F4914F6CDD1D
_prefetch_line: Any = None  # the numba intrinsic, made with the kernels (numba loads lazily)


class _CodeIndex:
    """A prepared pynndescent index searched by int8 codes of its rows, re-ranked in float32.

    pynndescent builds the k-NN graph, its search graph and its search tree; queries walk that
    graph in `_code_search_py` (the same best-first search as pynndescent's), scoring vertices
    by int8 codes with prefetching, and the search heap is re-ranked with the float32 rows.
    """

    __slots__ = ("inner", "codes", "scales", "tree", "visited", "heap_d", "heap_v", "pending")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        rows = inner._raw_data  # unit rows in the index's vertex order
        # per-row symmetric int8 codes (fresh numpy arrays: the kernel reads them at random)
        self.codes, self.scales = _int8_codes(rows)
        forest = getattr(inner, "_search_forest", ())
        if forest:
            tree = forest[0]
            self.tree = (
                np.ascontiguousarray(tree.hyperplanes, dtype=np.float32),
                np.ascontiguousarray(tree.offsets, dtype=np.float32),
                np.ascontiguousarray(tree.children, dtype=np.int32),
                np.ascontiguousarray(tree.indices, dtype=np.int32),
            )
        else:  # no search tree: random entry points only
            self.tree = (
                np.zeros((1, rows.shape[1]), np.float32),
                np.zeros(1, np.float32),
                np.zeros((1, 2), np.int32),
                np.zeros(0, np.int32),
            )
        n = len(rows)
        self.visited = np.zeros(n // 8 + 1, dtype=np.uint8)
        # every pushed candidate is a distinct vertex, so n slots never overflow
        self.heap_d = np.empty(n, dtype=np.float32)
        self.heap_v = np.empty(n, dtype=np.int32)
        indptr = inner._search_graph.indptr
        self.pending = np.empty(max(1, int(np.diff(indptr).max(initial=0))), dtype=np.int32)

    def query(
        self, units: FloatMatrix, k: int, epsilon: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """pynndescent-style (positions, 1 - similarity) of the k best, exact similarities."""
        inner = self.inner
        graph = inner._search_graph
        n = len(units)
        out_idx = np.empty((n, k), dtype=np.int64)
        out_dist = np.empty((n, k), dtype=np.float32)
        _code_kernel()(
            np.ascontiguousarray(units, dtype=np.float32),
            self.codes,
            self.scales,
            inner._raw_data,
            inner._vertex_order,
            graph.indptr,
            graph.indices,
            *self.tree,
            k,
            np.float32(epsilon),
            self.visited,
            self.heap_d,
            self.heap_v,
            self.pending,
            out_idx,
            out_dist,
        )
        return out_idx, out_dist


def _int8_codes(rows: FloatMatrix) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Symmetric int8 codes of each row (row ~ scale * code) and the per-row scales."""
    peak = np.abs(rows).max(axis=1)
    peak[peak == 0] = 1.0
    codes = np.empty(rows.shape, dtype=np.int8)
    for start in range(0, len(rows), 65536):  # bounded temporaries at 1M rows
        block = slice(start, start + 65536)
        codes[block] = np.rint(rows[block] * (127.0 / peak[block])[:, None])
    return codes, (peak / 127.0).astype(np.float32)


def _make_prefetch() -> Any:
    """A numba intrinsic prefetching the cache line of `array[row, col]` (`array[row]` if 1-D)."""
    from llvmlite import binding, ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    # LLVM 15+ has opaque pointers: the intrinsic's pointer suffix changed from p0i8 to p0
    name = "llvm.prefetch.p0" if binding.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"

    @intrinsic
    def prefetch_line(typingctx: Any, array: Any, row: Any, col: Any) -> Any:
        signature = types.void(array, row, col)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            array_type, row_type, col_type = sig.args
            handle = context.make_array(array_type)(context, builder, args[0])
            at = [context.cast(builder, args[1], row_type, types.intp)]
            if array_type.ndim == 2:
                at.append(context.cast(builder, args[2], col_type, types.intp))
            pointer = cgutils.get_item_pointer(context, builder, array_type, handle, at)
            byte_ptr = ir.PointerType(ir.IntType(8))
            i32 = ir.IntType(32)
            fn_type = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fn_type, name)
            # read access, high locality, data cache
            flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
            builder.call(fn, [builder.bitcast(pointer, byte_ptr), *flags])
            return context.get_dummy_value()

        return signature, codegen

    return prefetch_line


def _code_dot_py(query, codes, scales, v):
    row = codes[v]
    acc = np.float32(0.0)
    for t in range(query.shape[0]):
        acc += query[t] * np.float32(row[t])
    return np.float32(1.0) - acc * scales[v]


def _code_prefetch_py(codes, scales, v, step):
    for col in range(0, codes.shape[1], step):
        _prefetch_line(codes, v, col)
    _prefetch_line(scales, v, 0)


def _best_push_py(best_d, best_v, d, v):
    # replace the root of the max-heap of the k best (the caller checked d < best_d[0])
    size = best_d.shape[0]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and best_d[c + 1] > best_d[c]:
            c += 1
        if best_d[c] <= d:
            break
        best_d[i] = best_d[c]
        best_v[i] = best_v[c]
        i = c
    best_d[i] = d
    best_v[i] = v


def _open_push_py(heap_d, heap_v, n, d, v):
    # push onto the min-heap of vertices still to expand; returns its new size
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if heap_d[parent] <= d:
            break
        heap_d[i] = heap_d[parent]
        heap_v[i] = heap_v[parent]
        i = parent
    heap_d[i] = d
    heap_v[i] = v
    return n + 1


def _open_pop_py(heap_d, heap_v, n):
    # drop the root of the min-heap (read by the caller); returns its new size
    n -= 1
    d = heap_d[n]
    v = heap_v[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and heap_d[c + 1] < heap_d[c]:
            c += 1
        if heap_d[c] >= d:
            break
        heap_d[i] = heap_d[c]
        heap_v[i] = heap_v[c]
        i = c
    heap_d[i] = d
    heap_v[i] = v
    return n


def _visit_py(visited, v):
    # mark v visited; True if it was not before
    loc = v >> 3
    mask = np.uint8(1 << (v & 7))
    if visited[loc] & mask:
        return False
    visited[loc] |= mask
    return True


def _code_search_py(
    queries,
    codes,
    scales,
    rows,
    vertex_order,
    indptr,
    indices,
    hyperplanes,
    offsets,
    children,
    leaf_vertices,
    k,
    epsilon,
    visited,
    heap_d,
    heap_v,
    pending,
    out_idx,
    out_dist,
):
    # pynndescent's search (seed from the search tree's leaf, then best-first over the search
    # graph while a candidate is within (1 + epsilon) of the k-th best distance), with
    # distance 1 - similarity by int8 codes; the unvisited neighbours of an expanded vertex
    # are gathered first and their rows prefetched a few ahead of the dot products (at 1M
    # rows the search waits on memory, not arithmetic); the k best are then re-scored with
    # the float32 rows, so returned similarities are exact
    n_vertices = codes.shape[0]
    step = max(1, 64 // codes.itemsize)
    ahead = 4
    one = np.float32(1.0)
    best_d = np.empty(k, dtype=np.float32)
    best_v = np.empty(k, dtype=np.int32)
    sims = np.empty(k, dtype=np.float32)
    for qi in range(queries.shape[0]):
        query = queries[qi]
        visited[:] = 0
        best_d[:] = np.inf
        best_v[:] = -1
        n_open = 0
        n_seen = 0
        lo = 0
        hi = 0
        if leaf_vertices.shape[0] > 0:
            node = 0
            while children[node, 0] > 0:
                margin = offsets[node]
                plane = hyperplanes[node]
                for t in range(query.shape[0]):
                    margin += plane[t] * query[t]
                node = children[node, 0] if margin > 0 else children[node, 1]
            lo = -children[node, 0]
            hi = -children[node, 1]
        for j in range(lo, min(hi, lo + ahead)):
            _code_prefetch(codes, scales, leaf_vertices[j], step)
        for j in range(lo, hi):
            if j + ahead < hi:
                _code_prefetch(codes, scales, leaf_vertices[j + ahead], step)
            v = leaf_vertices[j]
            if not _visit(visited, v):
                continue
            n_seen += 1
            d = _code_dot(query, codes, scales, v)
            if d < best_d[0]:
                _best_push(best_d, best_v, d, v)
            n_open = _open_push(heap_d, heap_v, n_open, d, v)
        state = np.uint64(_CODE_SEED)
        tries = 0
        while n_seen < min(k, n_vertices) and tries < 4 * k + 16:
            tries += 1
            state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
            v = np.int32((state >> np.uint64(33)) % np.uint64(n_vertices))
            if not _visit(visited, v):
                continue
            n_seen += 1
            d = _code_dot(query, codes, scales, v)
            if d < best_d[0]:
                _best_push(best_d, best_v, d, v)
            n_open = _open_push(heap_d, heap_v, n_open, d, v)
        bound = best_d[0] * (one + epsilon)
        while n_open > 0 and heap_d[0] < bound:
            vertex = heap_v[0]
            n_open = _open_pop(heap_d, heap_v, n_open)
            n_pending = 0
            for e in range(indptr[vertex], indptr[vertex + 1]):
                u = indices[e]
                if _visit(visited, u):
                    if n_pending < ahead:
                        _code_prefetch(codes, scales, u, step)
                    pending[n_pending] = u
                    n_pending += 1
            for j in range(n_pending):
                if j + ahead < n_pending:
                    _code_prefetch(codes, scales, pending[j + ahead], step)
                u = pending[j]
                d = _code_dot(query, codes, scales, u)
                if d < bound:
                    if d < best_d[0]:
                        _best_push(best_d, best_v, d, u)
                        bound = best_d[0] * (one + epsilon)
                    n_open = _open_push(heap_d, heap_v, n_open, d, u)
        found = 0
        for j in range(k):
            v = best_v[j]
            if v < 0:
                continue
            row = rows[v]
            s = np.float32(0.0)
            for t in range(query.shape[0]):
                s += query[t] * row[t]
            sims[found] = s
            best_v[found] = v
            found += 1
        order = np.argsort(-sims[:found], kind="mergesort")
        for j in range(k):
            if j < found:
                out_idx[qi, j] = vertex_order[best_v[order[j]]]
                out_dist[qi, j] = one - sims[order[j]]
            else:
                out_idx[qi, j] = -1
                out_dist[qi, j] = np.inf


_code_dot: Any = _code_dot_py
_code_prefetch: Any = _code_prefetch_py
_best_push: Any = _best_push_py
_open_push: Any = _open_push_py
_open_pop: Any = _open_pop_py
_visit: Any = _visit_py


def _compile_code_search() -> tuple[Any, ...]:
    import numba

    global _prefetch_line, _code_dot, _code_prefetch, _best_push, _open_push, _open_pop, _visit
    _prefetch_line = _make_prefetch()

    def inline(function: Any) -> Any:
        return numba.njit(cache=True, nogil=True, fastmath=True, inline="always")(function)

    _code_dot = inline(_code_dot_py)
    _code_prefetch = inline(_code_prefetch_py)
    _best_push = inline(_best_push_py)
    _open_push = inline(_open_push_py)
    _open_pop = inline(_open_pop_py)
    _visit = inline(_visit_py)
    # fastmath: the dot products vectorise; results are re-ranked exactly anyway
    return (numba.njit(cache=True, nogil=True, fastmath=True)(_code_search_py),)


_CODE_SEARCH = LazyKernels(_compile_code_search)


def _code_kernel() -> Any:
    return _CODE_SEARCH()[0]
