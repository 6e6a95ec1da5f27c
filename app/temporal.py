"""Temporal stage: per-session behaviour (rate, repetition, probing, escalation, bot timing).

Owns stage 2 of the screener as plain, Faust-free classes:

- prompt fingerprints: `vector_simhash` (64 random-hyperplane sign bits of the prompt's
  embedding, the pipeline path) and `text_simhash` (word-shingle SimHash, a text-only fallback
  for tools and tests), compared with `hamming`;
- `SessionState`: one session's bounded state (the newest `history_size` events by event time,
  10 s hop counters, the recently blocked prompts) with `observe`, `record_outcome`, `expired`
  and a compact JSON-able `to_dict` / `from_dict` for a Faust table keyed by session;
- `TemporalAnalyzer`: a dict of sessions with an injected clock and LRU bound, for the CLI and
  tests.

`observe` runs one numba kernel over the history kept in an int64 array (compiled lazily;
`warm_up` compiles it at start), escalation DTW included (against the shapes' templates,
tabulated per config), and for a session kept in memory the rate counters and the probing
blocks too (in int64 columns; a state rebuilt by `from_dict` keeps them in Python, which is
cheaper for one event). It computes exactly what the list path does (Python ints and
`_escalation`, the reference, still used when a time or a config value leaves the range
where int64 is exact); the tests compare the two on random sessions.

Windows run on event time (the prompts' `ts`), never on the wall clock; the clock only
decides when an idle session expires. Which window feeds which feature:

| feature | window |
| --- | --- |
| `rate_1m` | hopping: 60 s wide, advancing every 10 s (six 10 s tumbling counters) |
| burst (short) | sliding 10 s over the event history |
| `repeat_*` | sliding 600 s around the event |
| `probing` | 900 s after the latest block of a near-identical prompt |
| `escalation` | count window: the last 6 and the last 12 turns |
| `bot_regularity`, `burstiness` | count window: the last 16 inter-arrival gaps |
| whole state | events older than 30 min behind the newest are dropped; 30 min idle expires |

Each behaviour becomes a risk component in [0, 1] (a `Ramp`: 0 at `start`, 0.5 at `flag`,
1 at `full`); a component at 0.5 or more raises its flag, and `score` combines the
components as a noisy-OR, so one clear behaviour is enough and ordinary sessions stay near 0.

Escalation is not z-normalised: z-normalising a flat session of low scores blows its noise
up into a shape that can match a ramp. The score window must first rise in absolute terms
(the lower of the last two turns at least `escalation_rise` above the window's minimum); only
then is it min-max scaled and compared by banded DTW with each attack shape, and the match is
weighted by the size of the rise. A single spike (the content stage's job) does not count.

Faust wiring (the worker): the hyperplanes must come from one fixed seed on every worker
(fingerprints live in table state that moves between workers on rebalance); per event:
`state = SessionState.from_dict(table[sid]) if sid in table else SessionState()`,
`features = state.observe(event, config, now=time.time())`, fuse, then
`state.record_outcome(fp, blocked, event.ts, config)` and `table[sid] = state.to_dict()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from app._jit import LazyKernels, njit
from app.errors import ConfigError, DetectorError

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_SHAPES",
    "FLAGS",
    "AttackShape",
    "Ramp",
    "SessionState",
    "TemporalAnalyzer",
    "TemporalConfig",
    "TemporalEvent",
    "TemporalFeatures",
    "hamming",
    "make_hyperplanes",
    "text_simhash",
    "vector_simhash",
]

#: the flags a `TemporalFeatures` can carry, in the order of the risk components
FLAGS: tuple[str, ...] = ("burst", "repetition_loop", "probing", "escalation", "bot_timing")

#: a risk component at or above this level raises its flag (the `flag` point of every `Ramp`)
FLAG_LEVEL = 0.5

_MASK64 = (1 << 64) - 1
_STATE_VERSION = 1
_SCORE_UNITS = 10_000  # content scores are kept as integers in 1e-4 (JSON-compact, exact)
_INT64_MAX = (1 << 63) - 1
_TWO64 = 1 << 64
_NO_HISTORY: npt.NDArray[np.int64] = np.empty((3, 0), dtype=np.int64)  # never written
_NO_HOPS: npt.NDArray[np.int64] = np.empty((2, 0), dtype=np.int64)  # never written
_WORD = re.compile(r"\w+")


def _to_ms(seconds: float) -> int:
    return int(round(seconds * 1000.0))


# ---------------------------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------------------------


def make_hyperplanes(dim: int, bits: int = 64, seed: int = 0) -> npt.NDArray[np.float32]:
    """`bits` random Gaussian hyperplanes in `dim` dims (fixed seed: all workers must agree)."""
    if dim < 1:
        raise ConfigError(f"hyperplanes: dim must be >= 1, got {dim}")
    if not 1 <= bits <= 64:
        raise ConfigError(f"hyperplanes: bits must be within 1..64, got {bits}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((bits, dim)).astype(np.float32)


def vector_simhash(vec: npt.NDArray[np.floating[Any]], planes: npt.NDArray[np.float32]) -> int:
    """SimHash of an embedding: bit i is set when `vec` lies on the positive side of plane i."""
    sides = planes @ vec
    if sides.ndim == 1 and sides.shape[0] <= 64 and sides.dtype in _SIGN_DTYPES:
        # the same product, its signs packed in one compiled call (no bool array, no bytes)
        return int(_kernels()[1](sides)) & _MASK64
    above = sides > 0.0
    return int.from_bytes(np.packbits(above, bitorder="little").tobytes(), "little")


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def text_simhash(text: str, bits: int = 64) -> int:
    """Charikar SimHash of a text's lower-cased word uni- and bi-gram shingles (0 if no words)."""
    if not 1 <= bits <= 64:
        raise ConfigError(f"text_simhash: bits must be within 1..64, got {bits}")
    words = _WORD.findall(text.lower())
    shingles = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    if not shingles:
        return 0
    hashes = np.fromiter(map(_feature_hash, shingles), dtype=np.uint64, count=len(shingles))
    bit_rows = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    majority = bit_rows[:, :bits].sum(axis=0, dtype=np.int64) * 2 > len(shingles)
    return int.from_bytes(np.packbits(majority, bitorder="little").tobytes(), "little")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two fingerprints."""
    return (a ^ b).bit_count()


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ramp:
    """Piecewise-linear risk of a feature: 0 at `start`, 0.5 (flag level) at `flag`, 1 at `full`.

    A ramp may decrease (`start > flag > full`), e.g. for the coefficient of variation of
    inter-arrival times, where lower means more machine-like.
    """

    start: float
    flag: float
    full: float

    def __post_init__(self) -> None:
        rising = self.start < self.flag < self.full
        falling = self.start > self.flag > self.full
        if not (rising or falling):
            raise ConfigError(f"ramp {self}: start, flag, full must be strictly monotone")

    def __call__(self, x: float) -> float:
        """The risk in [0, 1] of feature value `x`."""
        return _ramp_value(x, self.start, self.flag, self.full)


@dataclass(frozen=True, slots=True)
class AttackShape:
    """A multi-turn attack trajectory: content-score levels over turns, scaled to [0, 1]."""

    name: str
    levels: tuple[float, ...]


#: the multi-turn shapes escalation is matched against (min-max scaled score trajectories)
DEFAULT_SHAPES: tuple[AttackShape, ...] = (
    # steady climb, one notch a turn (Crescendo-style)
    AttackShape("crescendo", (0.0, 0.25, 0.5, 0.75, 1.0)),
    # climb in steps, each step held for a turn or two
    AttackShape("staircase", (0.0, 0.0, 0.33, 0.33, 0.67, 0.67, 1.0, 1.0)),
    # a probe, a retreat to harmless talk when it meets resistance, then the strike
    AttackShape("probe_retreat_strike", (0.0, 0.6, 0.1, 0.1, 0.6, 1.0, 1.0)),
    # a sustained middle plateau of borderline turns, then the hostile ones
    AttackShape("plateau_then_spike", (0.0, 0.45, 0.45, 0.45, 0.45, 1.0, 1.0)),
)


# ---------------------------------------------------------------------------------------------
# Compiled hot path: `SessionState.observe` on the history arrays, and SimHash sign packing
# ---------------------------------------------------------------------------------------------

#: times (ms), scores (1e-4) and the windows around them stay within this on the compiled path,
#: where every integer sum and product is then exact in int64 and every int-to-float
#: conversion exact, so it computes the very floats the list path (Python ints) does
_SAFE_MS = 1 << 52

#: `kernel_ints` layout: history_size, horizon_ms, burst_short_ms, repeat_ms, near_hamming,
#: bot_gaps, bot_min_gaps, the longest escalation span, escalation_band, the shortest
#: escalation span, whether the kernel runs the escalation DTW (1) or leaves it to
#: `_escalation` (0), hop_ms, hops_per_window, probe_ms, probe_suspicious_units,
#: probe_hamming, probe_hamming_suspicious, then the distinct escalation spans ascending
_KERNEL_INTS = 17
#: `kernel_floats` layout: the (start, flag, full) of burst_rate, burst_short, repeat_near and
#: bot_cv, then escalation_rise (start, full), escalation_tolerance and escalation_floor
_KERNEL_FLOATS = 16
#: the most template values (`_shape_table`) the compiled escalation takes; a config that
#: needs more leaves the DTW to `_escalation`
_MAX_TABLE = 1 << 18
#: `_shape_table` of a config whose escalation the kernel does not run (never read)
_NO_TABLE: npt.NDArray[np.float64] = np.zeros((0, 1, 3, 1), dtype=np.float64)

_SIGN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@lru_cache(maxsize=512)
def _template(
    levels: tuple[float, ...], length: int, band: int
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """The shape resampled to `length` turns, with its lower and upper envelope over the band."""
    src = np.linspace(0.0, 1.0, len(levels))
    dst = np.linspace(0.0, 1.0, length)
    values = tuple(float(v) for v in np.interp(dst, src, levels))
    lower = tuple(min(values[max(0, i - band) : i + band + 1]) for i in range(length))
    upper = tuple(max(values[max(0, i - band) : i + band + 1]) for i in range(length))
    return values, lower, upper


def _shape_table(config: TemporalConfig) -> npt.NDArray[np.float64] | None:
    """Each shape's `_template` at each window length the DTW can see (None: too large)."""
    # indexed [length - shortest span, shape, (values, lower, upper), turn]
    first = min(config.escalation_spans)
    # a window is never longer than the history, which the kernel cuts to history_size
    last = min(max(config.escalation_spans), config.history_size)
    count = max(0, last - first + 1)
    width = max(1, last)
    if count * len(config.shapes) * 3 * width > _MAX_TABLE:
        return None
    table = np.zeros((count, len(config.shapes), 3, width), dtype=np.float64)
    for at in range(count):
        length = first + at
        for k, shape in enumerate(config.shapes):
            for part, values in enumerate(_template(shape.levels, length, config.escalation_band)):
                table[at, k, part, :length] = values
    return table


def _kernel_parameters(
    config: TemporalConfig, derived: _Derived
) -> tuple[
    npt.NDArray[np.int64] | None, npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None
]:
    """The compiled path's (ints, floats, shape table); all None off its exact range."""
    # the table alone is None when it is too large: the escalation DTW then stays in Python
    table = _shape_table(config)
    spans = sorted(set(config.escalation_spans))
    ints = (
        config.history_size,
        derived.horizon_ms,
        derived.burst_short_ms,
        derived.repeat_ms,
        config.near_hamming,
        config.bot_gaps,
        config.bot_min_gaps,
        max(config.escalation_spans),
        config.escalation_band,
        min(config.escalation_spans),
        0 if table is None else 1,
        derived.hop_ms,
        derived.hops_per_window,
        derived.probe_ms,
        derived.probe_suspicious_units,
        config.probe_hamming,
        config.probe_hamming_suspicious,
        *spans,
    )
    floats = (
        *(
            getattr(ramp, part)
            for ramp in (config.burst_rate, config.burst_short, config.repeat_near, config.bot_cv)
            for part in ("start", "flag", "full")
        ),
        *config.escalation_rise,
        config.escalation_tolerance,
        config.escalation_floor,
    )
    # squares of the gaps (each at most the horizon) must stay exact in int64
    exact_ints = all(type(v) is int and 0 <= v <= _SAFE_MS for v in ints) and (
        config.bot_gaps * derived.horizon_ms < 1 << 31
    )
    exact_floats = all(
        type(v) in (int, float) and math.isfinite(v) and abs(v) <= _SAFE_MS and float(v) == v
        for v in floats
    )
    if not (exact_ints and exact_floats):
        return None, None, None
    return (
        np.array(ints, dtype=np.int64),
        np.array(floats, dtype=np.float64),
        table,
    )


def _ramp_value(x: float, start: float, flag: float, full: float) -> float:
    # `Ramp.__call__`; the compiled kernel inlines its numba twin, `_ramp`
    if start > full:
        x, start, flag, full = -x, -start, -flag, -full
    if x <= start:
        return 0.0
    if x >= full:
        return 1.0
    if x < flag:
        return 0.5 * (x - start) / (flag - start)
    return 0.5 + 0.5 * (x - flag) / (full - flag)


_ramp = _ramp_value  # replaced by its numba-compiled twin in `_kernels`


def _popcount(x: Any) -> Any:
    # the bits set in a uint64 (SWAR)
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


def _bisect_left(a: Any, n: int, x: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _bisect_right(a: Any, n: int, x: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _dtw_rows(x: Any, t: Any, n: int, band: int, give_up: float, prev: Any, cur: Any) -> float:
    # `_banded_dtw` on arrays (`prev` and `cur` have room for n + 1 cells)
    inf = np.inf
    prev[0] = 0.0
    for j in range(1, n + 1):
        prev[j] = inf
    for i in range(n):
        xi = x[i]
        for j in range(n + 1):
            cur[j] = inf
        left = inf
        row_min = inf
        for j in range(max(0, i - band), min(n, i + band + 1)):
            diag = prev[j]
            up = prev[j + 1]
            step = diag if diag < up else up
            if left < step:
                step = left
            gap = xi - t[j]
            left = (gap if gap >= 0.0 else -gap) + step
            cur[j + 1] = left
            if left < row_min:
                row_min = left
        if row_min > give_up:
            return inf
        prev, cur = cur, prev
    return prev[n]


def _escalate(scores: Any, n: int, ints: Any, floats: Any, table: Any) -> tuple[float, int]:
    # `_escalation` after its pre-check (the kernel's `rising`), on the score row and the
    # config's `_shape_table`: the same float operations in the same order, and candidates
    # tried in the order of Python's stable descending sort; returns (escalation, index of
    # the shape in `config.shapes`, or -1 for none)
    rise_start = floats[12]
    rise_full = floats[13]
    tolerance = floats[14]
    floor = floats[15]
    band = ints[8]
    shortest = ints[9]
    spans = ints.shape[0] - _KERNEL_INTS
    shapes = table.shape[1]
    width = table.shape[3]
    scaled = np.empty((spans, width), dtype=np.float64)
    ceilings = np.empty(spans * shapes, dtype=np.float64)
    gates = np.empty(spans * shapes, dtype=np.float64)
    rows = np.empty(spans * shapes, dtype=np.int64)
    lengths = np.empty(spans * shapes, dtype=np.int64)
    kinds = np.empty(spans * shapes, dtype=np.int64)
    count = 0
    previous = -1
    for row in range(spans):
        length = min(ints[_KERNEL_INTS + row], n)
        if length == previous:  # the sorted set of window lengths
            continue
        previous = length
        if length < shortest:
            continue
        start = n - length
        low = scores[start]
        high = low
        for i in range(start + 1, n):
            if scores[i] < low:
                low = scores[i]
            if scores[i] > high:
                high = scores[i]
        rise = (min(scores[n - 1], scores[n - 2]) - low) / 10_000
        if rise <= rise_start:
            continue
        gate = (rise - rise_start) / (rise_full - rise_start)
        if not gate < 1.0:
            gate = 1.0
        amplitude = high - low
        for k in range(length):
            scaled[row, k] = (scores[start + k] - low) / amplitude
        at = length - shortest
        for kind in range(shapes):
            bound = 0.0
            for k in range(length):
                xk = scaled[row, k]
                upper = table[at, kind, 2, k]
                if xk > upper:
                    bound += xk - upper
                else:
                    lower = table[at, kind, 1, k]
                    if xk < lower:
                        bound += lower - xk
            ceiling = gate * (1.0 - bound / length / tolerance)
            if ceiling >= floor:
                # insert after every candidate with a ceiling at least as high (stable)
                pos = count
                while pos > 0 and ceilings[pos - 1] < ceiling:
                    ceilings[pos] = ceilings[pos - 1]
                    gates[pos] = gates[pos - 1]
                    rows[pos] = rows[pos - 1]
                    lengths[pos] = lengths[pos - 1]
                    kinds[pos] = kinds[pos - 1]
                    pos -= 1
                ceilings[pos] = ceiling
                gates[pos] = gate
                rows[pos] = row
                lengths[pos] = length
                kinds[pos] = kind
                count += 1
    best = floor
    best_kind = -1
    prev = np.empty(width + 1, dtype=np.float64)
    cur = np.empty(width + 1, dtype=np.float64)
    for c in range(count):
        if ceilings[c] <= best:
            break
        gate = gates[c]
        length = lengths[c]
        give_up = (1.0 - best / gate) * tolerance * length
        values = table[length - shortest, kinds[c], 0]
        cost = _dtw_rows(scaled[rows[c]], values, length, band, give_up, prev, cur)
        value = gate * (1.0 - cost / length / tolerance)
        if value > best:
            best = value
            best_kind = kinds[c]
    if best_kind < 0:
        return 0.0, -1
    return best, best_kind


def _observe_history(
    hist: Any,
    n: int,
    ts: int,
    fp: int,
    score: int,
    ints: Any,
    floats: Any,
    table: Any,
    hops: Any,
    n_hops: int,
    blocks: Any,
    n_blocks: int,
    known_rate: int,
) -> tuple[int, int, int, int, int, int, int, int, float, float, float, float, bool, float, int]:
    # `SessionState._observe_lists` from the insertion to the components, on the history rows
    # (times, fingerprints as int64 bits, scores) of `hist`, which has room for one more event,
    # the rate counters (hop, count; dict order) in `hops`, which has room for one more hop,
    # and the blocks (time, fingerprint bits, variants; list order) in `blocks`; returns
    # (events kept, hops kept, blocks kept, rate, probing hits, short-window count, exact
    # and near repeats, burst, repetition, burstiness, bot timing, whether the escalation DTW
    # must run, and when `ints` says the kernel runs it, its escalation and shape index as
    # `_escalate` returns them)
    times = hist[0]
    fps = hist[1].view(np.uint64)
    scores = hist[2]
    # insert by event time, after equal times
    if n == 0 or ts >= times[n - 1]:
        at = n
    else:
        at = _bisect_right(times, n, ts)
        for i in range(n, at, -1):
            times[i] = times[i - 1]
            hist[1, i] = hist[1, i - 1]
            scores[i] = scores[i - 1]
    times[at] = ts
    hist[1, at] = fp
    scores[at] = score
    n += 1
    newest = times[n - 1]

    # `SessionState._count_rate`: the dict becomes columns kept in its insertion order
    # (n_hops < 0: the caller keeps the counters and the blocks, and counted `known_rate`)
    first_live = newest // ints[11] - ints[12] + 1
    hop = ts // ints[11]
    if n_hops >= 0 and hop >= first_live:
        at_hop = n_hops
        for i in range(n_hops):
            if hops[0, i] == hop:
                at_hop = i
                break
        if at_hop == n_hops:
            hops[0, n_hops] = hop
            hops[1, n_hops] = 0
            n_hops += 1
        hops[1, at_hop] += 1
    if n_hops > ints[12]:
        live = 0
        for i in range(n_hops):
            if hops[0, i] >= first_live:
                hops[0, live] = hops[0, i]
                hops[1, live] = hops[1, i]
                live += 1
        n_hops = live
    rate = known_rate
    for i in range(n_hops):
        if hops[0, i] >= first_live:
            rate += hops[1, i]

    # `SessionState._probe_hits`, the list becoming columns in its order
    hits = 0
    if n_blocks > 0:
        radius = ints[16] if score >= ints[14] else ints[15]
        mine = np.uint64(fp)
        live = 0
        for i in range(n_blocks):
            blocked_at = blocks[0, i]
            until = blocked_at + ints[13]
            if blocked_at <= ts <= until:
                if _popcount(np.uint64(blocks[1, i]) ^ mine) <= radius:
                    blocks[2, i] += 1
            if until >= newest:
                blocks[0, live] = blocked_at
                blocks[1, live] = blocks[1, i]
                blocks[2, live] = blocks[2, i]
                if blocks[2, live] > hits:
                    hits = blocks[2, live]
                live += 1
        n_blocks = live

    cut = max(n - ints[0], _bisect_left(times, n, newest - ints[1]))
    if cut > 0:
        for i in range(cut, n):
            times[i - cut] = times[i]
            hist[1, i - cut] = hist[1, i]
            scores[i - cut] = scores[i]
        n -= cut
    kept = at >= cut

    short = n - _bisect_right(times, n, newest - ints[2])
    burst = _ramp(float(rate), floats[0], floats[1], floats[2])
    burst_short = _ramp(float(short), floats[3], floats[4], floats[5])
    if burst_short > burst:
        burst = burst_short

    lo = _bisect_left(times, n, ts - ints[3])
    hi = _bisect_right(times, n, ts + ints[3])
    mine = np.uint64(fp)
    exact = 0
    near = 0
    for i in range(lo, hi):
        distance = _popcount(fps[i] ^ mine)
        if distance == 0:
            exact += 1
        if distance <= ints[4]:
            near += 1
    if kept:
        exact -= 1
        near -= 1
    repetition = _ramp(float(near), floats[6], floats[7], floats[8])

    rising = False
    if n >= 3:
        first = max(0, n - ints[7])
        low = scores[first]
        for i in range(first + 1, n):
            if scores[i] < low:
                low = scores[i]
        last = min(scores[n - 1], scores[n - 2])
        rising = not ((last - low) / 10_000 <= floats[12])
    escalation = 0.0
    kind = -1
    if rising and ints[10] == 1:
        escalation, kind = _escalate(scores, n, ints, floats, table)

    burstiness = 0.0
    bot = 0.0
    count = min(ints[5], n - 1)
    if count >= 2:
        first = n - count - 1
        total = times[n - 1] - times[first]
        squares = 0
        for i in range(first, n - 1):
            gap = times[i + 1] - times[i]
            squares += gap * gap
        mean = total / count
        sd = math.sqrt(count * squares - total * total) / count
        burstiness = (sd - mean) / (sd + mean) if sd + mean > 0.0 else 0.0
        if count >= ints[6]:
            cv = sd / mean if mean > 0.0 else 0.0
            bot = _ramp(cv, floats[9], floats[10], floats[11])
    return (
        n,
        n_hops,
        n_blocks,
        rate,
        hits,
        short,
        exact,
        near,
        burst,
        repetition,
        burstiness,
        bot,
        rising,
        escalation,
        kind,
    )


def _widened(columns: npt.NDArray[np.int64], used: int, width: int) -> npt.NDArray[np.int64]:
    """A copy of the int64 `columns` with room for `width` columns, its first `used` kept."""
    wider = np.empty((columns.shape[0], width), dtype=np.int64)
    wider[:, :used] = columns[:, :used]
    return wider


def _record_block(blocks: Any, n_blocks: int, at: int, fp: int, radius: int, most: int) -> int:
    # `SessionState.record_outcome` of a block on the block columns (room for one more);
    # returns the blocks kept
    mine = np.uint64(fp)
    for i in range(n_blocks):
        if _popcount(np.uint64(blocks[1, i]) ^ mine) <= radius:
            if at > blocks[0, i]:
                blocks[0, i] = at
            return n_blocks
    blocks[0, n_blocks] = at
    blocks[1, n_blocks] = fp
    blocks[2, n_blocks] = 0
    n_blocks += 1
    if n_blocks > most:
        oldest = 0  # the first of the earliest, as `min` picks it
        for i in range(1, n_blocks):
            if blocks[0, i] < blocks[0, oldest]:
                oldest = i
        for i in range(oldest + 1, n_blocks):
            blocks[0, i - 1] = blocks[0, i]
            blocks[1, i - 1] = blocks[1, i]
            blocks[2, i - 1] = blocks[2, i]
        n_blocks -= 1
    return n_blocks


def _sign_bits(sides: Any) -> int:
    # bit i set when sides[i] > 0 (as `np.packbits(sides > 0, bitorder="little")` reads)
    bits = 0
    for i in range(sides.shape[0]):
        if sides[i] > 0.0:
            bits |= 1 << i
    return bits


def _compile_kernels() -> tuple[Any, ...]:
    global _ramp, _popcount, _bisect_left, _bisect_right, _dtw_rows, _escalate
    _ramp = njit(_ramp, inline=True)
    _popcount = njit(_popcount, inline=True)
    _bisect_left = njit(_bisect_left, inline=True)
    _bisect_right = njit(_bisect_right, inline=True)
    _dtw_rows = njit(_dtw_rows)
    _escalate = njit(_escalate)
    return njit(_observe_history), njit(_sign_bits), njit(_record_block)


#: the numba-compiled `_observe_history`, `_sign_bits` and `_record_block` (compiled once,
#: cached on disk)
_kernels = LazyKernels(_compile_kernels)


def warm_up() -> None:
    """Compile the temporal stage's kernels now, so the first prompt does not pay for the JIT."""
    state = SessionState()
    for i in range(3):
        state.observe(TemporalEvent(1_000.0 + i, i, 0.1 * i), DEFAULT_CONFIG)
    state.record_outcome(2, True, 1_002.0, DEFAULT_CONFIG)  # `_record_block`
    planes = make_hyperplanes(4, 8)
    for dtype in _SIGN_DTYPES:
        vector_simhash(np.ones(4, dtype=dtype), planes)


@dataclass(frozen=True, slots=True)
class _Derived:
    """Config values in the units the hot path uses (integer ms, hop counts), computed once."""

    horizon_ms: int
    burst_short_ms: int
    hop_ms: int
    hops_per_window: int
    repeat_ms: int
    probe_ms: int
    probe_suspicious_units: int
    min_span: int
    #: the probing risk of no variant (`probe_hits(0)`)
    no_probing: float
    #: the compiled `SessionState.observe` path's parameters (`_KERNEL_INTS`/`_KERNEL_FLOATS`
    #: layout), or None when a value is outside the range that path computes exactly in
    kernel_ints: npt.NDArray[np.int64] | None
    kernel_floats: npt.NDArray[np.float64] | None
    #: `_shape_table` for the compiled escalation (`_NO_TABLE` when the DTW stays in Python)
    kernel_table: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TemporalConfig:
    """Every window and threshold of the temporal stage (defaults documented per field)."""

    #: events kept per session (the newest by event time)
    history_size: int = 64
    #: events more than this far behind the session's newest event are dropped (s)
    history_horizon_s: float = 1800.0
    #: a session not touched for this long (by the injected clock) expires (s)
    idle_ttl_s: float = 1800.0

    #: width of the hopping rate window (s); `rate_1m` counts the prompts in it
    rate_window_s: float = 60.0
    #: hop of the rate window (s): the counters are tumbling windows of this width
    rate_hop_s: float = 10.0
    #: burst risk from `rate_1m` (prompts per hopping minute)
    burst_rate: Ramp = Ramp(8.0, 20.0, 40.0)
    #: sliding window for short bursts (s)
    burst_short_window_s: float = 10.0
    #: burst risk from the prompts in the short window (nobody types 6 prompts in 10 s)
    burst_short: Ramp = Ramp(3.0, 6.0, 10.0)

    #: window around an event in which earlier copies count as repetitions (s)
    repeat_window_s: float = 600.0
    #: max Hamming distance of the 64-bit `vector_simhash` fingerprints of a prompt and a light
    #: edit of it: the largest distance matched by <= 0.5% of pairs of different benign dev
    #: prompts (tuning sources), for app.embedders.HashingEmbedder; other embedders need their
    #: own value (`python -m perf.bench_temporal --calibrate`)
    near_hamming: int = 17
    #: repetition risk from the number of near-duplicates (exact included) in the window;
    #: retyping a question twice (2 earlier copies) stays at 0
    repeat_near: Ramp = Ramp(2.0, 4.0, 8.0)

    #: how long after a block variants of the blocked prompt count as probing (s)
    probe_window_s: float = 900.0
    #: max Hamming distance of a prompt to a blocked one for it to count as a probing variant
    #: (<= 1% of different benign dev pairs, HashingEmbedder, calibrated like `near_hamming`)
    probe_hamming: int = 18
    #: the same, for a prompt the content stage also finds suspicious: looser, because a
    #: rewritten attack that still scores as one is a probe even when it was rewritten a lot
    #: (<= 5% of different benign dev pairs)
    probe_hamming_suspicious: int = 21
    #: content score from which a prompt counts as suspicious for `probe_hamming_suspicious`
    probe_suspicious_score: float = 0.3
    #: probing risk from the number of variants seen after the block
    probe_hits: Ramp = Ramp(1.0, 3.0, 6.0)
    #: blocked prompts remembered per session
    max_blocked: int = 8

    #: lengths of the score windows matched against the shapes (the last k turns)
    escalation_spans: tuple[int, ...] = (6, 12)
    #: Sakoe-Chiba band of the DTW (turns a shape may be shifted by)
    escalation_band: int = 1
    #: rise of the score (the lower of the last two turns minus the window's minimum) at which
    #: escalation starts to count, and at which it counts fully; a flat session never matches
    escalation_rise: tuple[float, float] = (0.15, 0.35)
    #: mean absolute DTW deviation (in min-max scaled units) at which a shape stops matching
    escalation_tolerance: float = 0.2
    #: escalation below this is reported as 0: weak matches carry no signal, and skipping them
    #: keeps the DTW off most benign sessions whose scores merely wobble
    escalation_floor: float = 0.2
    #: the library of multi-turn attack shapes
    shapes: tuple[AttackShape, ...] = DEFAULT_SHAPES

    #: inter-arrival gaps looked at for bot timing and burstiness (the newest ones)
    bot_gaps: int = 16
    #: gaps needed before bot timing can flag (humans may be regular for a few turns)
    bot_min_gaps: int = 8
    #: bot-timing risk from the coefficient of variation of the gaps (humans are irregular)
    bot_cv: Ramp = Ramp(0.35, 0.1, 0.0)

    _derived: _Derived = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positive = {
            "history_horizon_s": self.history_horizon_s,
            "idle_ttl_s": self.idle_ttl_s,
            "rate_window_s": self.rate_window_s,
            "rate_hop_s": self.rate_hop_s,
            "burst_short_window_s": self.burst_short_window_s,
            "repeat_window_s": self.repeat_window_s,
            "probe_window_s": self.probe_window_s,
            "escalation_tolerance": self.escalation_tolerance,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"temporal config: {name} must be a positive number, got {value}")
        if self.history_size < 2:
            raise ConfigError(
                f"temporal config: history_size must be >= 2, got {self.history_size}"
            )
        if self.rate_hop_s > self.rate_window_s:
            raise ConfigError("temporal config: rate_hop_s must not exceed rate_window_s")
        for name, dist in (
            ("near_hamming", self.near_hamming),
            ("probe_hamming", self.probe_hamming),
            ("probe_hamming_suspicious", self.probe_hamming_suspicious),
        ):
            if not 0 <= dist <= 64:
                raise ConfigError(f"temporal config: {name} must be within 0..64, got {dist}")
        if self.max_blocked < 1:
            raise ConfigError("temporal config: max_blocked must be >= 1")
        if not self.escalation_spans or min(self.escalation_spans) < 3:
            raise ConfigError("temporal config: escalation_spans must be non-empty, each >= 3")
        if not 0.0 <= self.escalation_floor < FLAG_LEVEL:
            raise ConfigError("temporal config: escalation_floor must be within [0, 0.5)")
        if self.escalation_band < 0:
            raise ConfigError("temporal config: escalation_band must be >= 0")
        lo, hi = self.escalation_rise
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(
                "temporal config: escalation_rise needs 0 <= start < full <= 1, "
                f"got {self.escalation_rise}"
            )
        if not self.shapes:
            raise ConfigError("temporal config: the shape library is empty")
        for shape in self.shapes:
            if len(shape.levels) < 2 or not all(0.0 <= v <= 1.0 for v in shape.levels):
                raise ConfigError(
                    f"temporal config: shape {shape.name!r} needs >= 2 levels in [0, 1]"
                )
        if not 2 <= self.bot_min_gaps <= self.bot_gaps:
            raise ConfigError("temporal config: need 2 <= bot_min_gaps <= bot_gaps")
        derived = _Derived(
            horizon_ms=_to_ms(self.history_horizon_s),
            burst_short_ms=_to_ms(self.burst_short_window_s),
            hop_ms=max(1, _to_ms(self.rate_hop_s)),
            hops_per_window=max(1, round(self.rate_window_s / self.rate_hop_s)),
            repeat_ms=_to_ms(self.repeat_window_s),
            probe_ms=_to_ms(self.probe_window_s),
            probe_suspicious_units=math.ceil(self.probe_suspicious_score * _SCORE_UNITS),
            min_span=min(self.escalation_spans),
            no_probing=self.probe_hits(0),
            kernel_ints=None,
            kernel_floats=None,
            kernel_table=_NO_TABLE,
        )
        ints, floats, table = _kernel_parameters(self, derived)
        object.__setattr__(
            self,
            "_derived",
            replace(
                derived,
                kernel_ints=ints,
                kernel_floats=floats,
                kernel_table=_NO_TABLE if table is None else table,
            ),
        )


DEFAULT_CONFIG = TemporalConfig()


# ---------------------------------------------------------------------------------------------
# Events and features
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemporalEvent:
    """One screened prompt as the temporal stage sees it."""

    ts: float  # event time, seconds since the epoch
    fingerprint: int  # 64-bit SimHash of the prompt
    content_score: float  # content-stage risk in [0, 1]


@dataclass(frozen=True, slots=True)
class TemporalFeatures:
    """The temporal stage's view of a session right after one event."""

    rate_1m: float  # prompts in the hopping 60 s window
    burstiness: float  # Goh-Barabasi (sd - mean) / (sd + mean) of recent gaps, in [-1, 1]
    repeat_exact: int  # earlier identical fingerprints in the repetition window
    repeat_near: int  # earlier near-identical fingerprints (exact included)
    probing: int  # variants of a recently blocked prompt seen since its block
    escalation: float  # best match of the recent score trajectory to an attack shape, [0, 1]
    bot_regularity: float  # machine-like regularity of the inter-arrival times, [0, 1]
    turns: int  # prompts observed in this session
    score: float  # combined temporal risk in [0, 1]
    flags: tuple[str, ...]  # subset of FLAGS, in FLAGS order
    escalation_shape: str = ""  # name of the best-matching shape ("" when escalation is 0)


# ---------------------------------------------------------------------------------------------
# Escalation: banded DTW against the shape library
# ---------------------------------------------------------------------------------------------


def _lb_keogh(x: list[float], lower: tuple[float, ...], upper: tuple[float, ...]) -> float:
    """Lower bound of the banded DTW cost: each point's distance to the shape's envelope."""
    bound = 0.0
    for xi, lo, hi in zip(x, lower, upper, strict=True):
        if xi > hi:
            bound += xi - hi
        elif xi < lo:
            bound += lo - xi
    return bound


def _banded_dtw(x: list[float], t: tuple[float, ...], band: int, give_up: float) -> float:
    """DTW cost (sum of |x_i - t_j|) of two equal-length series within a Sakoe-Chiba band.

    Returns `inf` as soon as every cell of a row exceeds `give_up` (early abandon).
    """
    n = len(x)
    inf = math.inf
    prev = [0.0] + [inf] * n  # prev[j + 1] is the cost of the path ending at (i - 1, j)
    for i in range(n):
        xi = x[i]
        cur = [inf] * (n + 1)
        left = row_min = inf
        for j in range(max(0, i - band), min(n, i + band + 1)):
            diag = prev[j]
            up = prev[j + 1]
            step = diag if diag < up else up
            if left < step:
                step = left
            gap = xi - t[j]
            left = (gap if gap >= 0.0 else -gap) + step
            cur[j + 1] = left
            if left < row_min:
                row_min = left
        if row_min > give_up:
            return inf
        prev = cur
    return prev[n]


def _escalation(scores: list[int], config: TemporalConfig) -> tuple[float, str]:
    """Best (shape match x rise gate) over the configured spans and shapes, and that shape."""
    n = len(scores)
    rise_start, rise_full = config.escalation_rise
    # the longest window has the lowest minimum: if it shows no rise, no window does
    widest = scores[-max(config.escalation_spans) :]
    if (min(widest[-1], widest[-2]) - min(widest)) / _SCORE_UNITS <= rise_start:
        return 0.0, ""
    tolerance = config.escalation_tolerance
    band = config.escalation_band
    floor = config.escalation_floor
    candidates = []
    for length in sorted({min(span, n) for span in config.escalation_spans}):
        if length < config._derived.min_span:
            continue
        window = scores[-length:]
        low = min(window)
        rise = (min(window[-1], window[-2]) - low) / _SCORE_UNITS
        if rise <= rise_start:
            continue
        gate = min(1.0, (rise - rise_start) / (rise_full - rise_start))
        amplitude = max(window) - low
        scaled = [(v - low) / amplitude for v in window]
        for shape in config.shapes:
            values, lower, upper = _template(shape.levels, length, band)
            bound = _lb_keogh(scaled, lower, upper)
            # the best value this candidate could reach, from the bound
            ceiling = gate * (1.0 - bound / length / tolerance)
            if ceiling >= floor:
                candidates.append((ceiling, gate, length, scaled, values, shape.name))
    best, best_shape = floor, ""
    # most promising first: once the best is found, the others' ceilings rule them out
    candidates.sort(key=lambda c: c[0], reverse=True)
    for ceiling, gate, length, scaled, values, name in candidates:
        if ceiling <= best:
            break
        # a match below `best` is useless: abandon once the cost passes that level
        give_up = (1.0 - best / gate) * tolerance * length
        cost = _banded_dtw(scaled, values, band, give_up)
        value = gate * (1.0 - cost / length / tolerance)
        if value > best:
            best, best_shape = value, name
    return (best, best_shape) if best_shape else (0.0, "")


# ---------------------------------------------------------------------------------------------
# Session state
# ---------------------------------------------------------------------------------------------


class SessionState:
    """One session's bounded temporal state: recent events, rate counters, recent blocks."""

    __slots__ = (
        "_blocked",
        "_blocks",
        "_fp",
        "_hist",
        "_hops",
        "_n",
        "_n_blocks",
        "_n_rates",
        "_rates",
        "_sc",
        "_ts",
        "last_seen",
        "turns",
    )

    def __init__(self) -> None:
        # the history sorted by event time, times in integer ms and scores in 1e-4 so the
        # state round-trips through JSON exactly: normally the first `_n` columns of `_hist`
        # (rows: times, fingerprints as int64 bits, scores) for the compiled path; as the
        # parallel lists `_ts`, `_fp`, `_sc` (`_hist` None) once a value or the config leaves
        # the range that path is exact in
        self._hist: npt.NDArray[np.int64] | None = _NO_HISTORY
        self._n = 0
        self._ts: list[int] = []
        self._fp: list[int] = []
        self._sc: list[int] = []
        self._hops: dict[int, int] = {}  # tumbling rate counter: hop index -> prompts
        self._blocked: list[list[int]] = []  # [block time ms, fingerprint, variants seen since]
        # a session kept in memory has its rate counters and blocks in columns instead, for
        # the compiled path, in the dict's and the list's order: the first `_n_rates` of
        # `_rates` (rows: hop, prompts) and the first `_n_blocks` of `_blocks` (rows: block
        # time, fingerprint as int64 bits, variants), `_hops` and `_blocked` staying empty;
        # `_rates` is None when they are in `_hops` and `_blocked`: on the list path, and in
        # a state from `from_dict` (building columns would cost a table round trip more than
        # the compiled counters save)
        self._rates: npt.NDArray[np.int64] | None = _NO_HOPS
        self._n_rates = 0
        self._blocks: npt.NDArray[np.int64] = _NO_HISTORY
        self._n_blocks = 0
        self.turns = 0
        self.last_seen: float | None = None  # clock time of the last activity

    def __len__(self) -> int:
        return self._n if self._hist is not None else len(self._ts)

    def touch(self, now: float) -> None:
        """Mark the session active at clock time `now` (expiry counts from the latest touch)."""
        if self.last_seen is None or now > self.last_seen:
            self.last_seen = now

    def expired(self, now: float, config: TemporalConfig) -> bool:
        """True when the session has been idle for longer than `config.idle_ttl_s`."""
        return self.last_seen is None or now - self.last_seen > config.idle_ttl_s

    def observe(
        self, event: TemporalEvent, config: TemporalConfig, *, now: float | None = None
    ) -> TemporalFeatures:
        """Add one prompt to the session and return the session's features after it.

        `now` is the clock time used for expiry (the event time when omitted). Events may
        arrive out of order: they are placed by event time, so gaps are never negative.
        """
        ts_f = float(event.ts)
        score_f = float(event.content_score)
        if not (math.isfinite(ts_f) and math.isfinite(score_f)):
            raise DetectorError(f"temporal: non-finite event time or score ({ts_f}, {score_f})")
        ts = round(ts_f * 1000.0)  # `_to_ms` (round of a float is already an int)
        # the score clipped to [0, 1] as `min(1.0, max(0.0, score_f))` clips it
        clipped = score_f if score_f > 0.0 else 0.0
        score = round((clipped if clipped < 1.0 else 1.0) * _SCORE_UNITS)
        fp = event.fingerprint & _MASK64
        self.turns += 1
        touched = ts_f if now is None else now
        if self.last_seen is None or touched > self.last_seen:  # `touch`, inlined
            self.last_seen = touched

        derived = config._derived
        hist = self._hist
        if hist is None or derived.kernel_ints is None or not -_SAFE_MS <= ts <= _SAFE_MS:
            return self._observe_lists(ts, fp, score, config)
        n = self._n
        if n >= hist.shape[1]:
            self._hist = hist = _widened(hist, n, max(n + 1, config.history_size + 1))
        rates = self._rates
        if rates is None:  # the counters stay in `_hops` and `_blocked`, counted here
            newest = ts if n == 0 else max(ts, hist.item(0, n - 1))
            known_rate = self._count_rate(ts, newest, config)
            rates, n_rates, blocks, n_blocks = _NO_HOPS, -1, _NO_HISTORY, 0
        else:  # the kernel counts them in its columns
            n_rates = self._n_rates
            if n_rates >= rates.shape[1]:
                self._rates = rates = _widened(rates, n_rates, max(8, 2 * n_rates + 1))
            known_rate, blocks, n_blocks = 0, self._blocks, self._n_blocks
        (
            n,
            n_rates,
            n_blocks,
            rate,
            hits,
            short,
            exact,
            near,
            burst,
            repetition,
            burstiness,
            bot,
            rising,
            escalation,
            kind,
        ) = _kernels()[0](
            hist,
            n,
            ts,
            fp - _TWO64 if fp > _INT64_MAX else fp,
            score,
            derived.kernel_ints,
            derived.kernel_floats,
            derived.kernel_table,
            rates,
            n_rates,
            blocks,
            n_blocks,
            known_rate,
        )
        self._n = n
        if self._rates is None:
            hits = self._probe_hits(ts, fp, score, newest, config) if self._blocked else 0
        else:
            self._n_rates, self._n_blocks = n_rates, n_blocks
        probing = config.probe_hits(hits) if hits else derived.no_probing
        if kind >= 0:
            shape = config.shapes[kind].name
            if not shape:  # `_escalation` reports a nameless shape's match as none
                escalation = 0.0
        elif rising and derived.kernel_table is _NO_TABLE:
            escalation, shape = _escalation(hist[2, :n].tolist(), config)
        else:
            shape = ""
        return self._features(
            rate, burstiness, exact, near, hits, burst, repetition, probing, escalation, bot, shape
        )

    def _observe_lists(
        self, ts: int, fp: int, score: int, config: TemporalConfig
    ) -> TemporalFeatures:
        """`observe` on the history lists (Python ints: any range, any config)."""
        self._to_lists()
        derived = config._derived
        times, fps, scores = self._ts, self._fp, self._sc
        if not times or ts >= times[-1]:
            at = len(times)
            times.append(ts)
            fps.append(fp)
            scores.append(score)
        else:
            at = bisect_right(times, ts)
            times.insert(at, ts)
            fps.insert(at, fp)
            scores.insert(at, score)
        newest = times[-1]
        cut = max(
            len(times) - config.history_size,
            bisect_left(times, newest - derived.horizon_ms),
        )
        if cut > 0:
            del times[:cut], fps[:cut], scores[:cut]
        kept = at >= cut  # False only for a very late event older than everything kept

        rate = self._count_rate(ts, newest, config)
        short = len(times) - bisect_right(times, newest - derived.burst_short_ms)
        burst = max(config.burst_rate(rate), config.burst_short(short))

        exact, near = self._repetitions(ts, fp, kept, config)
        repetition = config.repeat_near(near)

        hits = self._probe_hits(ts, fp, score, newest, config)
        probing = config.probe_hits(hits)

        escalation, shape = _escalation(scores, config) if len(scores) >= 3 else (0.0, "")

        burstiness, cv = self._gap_stats(config)
        bot = config.bot_cv(cv) if cv is not None else 0.0

        return self._features(
            rate, burstiness, exact, near, hits, burst, repetition, probing, escalation, bot, shape
        )

    def _features(
        self,
        rate: int,
        burstiness: float,
        exact: int,
        near: int,
        hits: int,
        burst: float,
        repetition: float,
        probing: float,
        escalation: float,
        bot: float,
        shape: str,
    ) -> TemporalFeatures:
        calm = (1.0 - burst) * (1.0 - repetition) * (1.0 - probing)
        calm = calm * (1.0 - escalation) * (1.0 - bot)
        if (
            burst < FLAG_LEVEL
            and repetition < FLAG_LEVEL
            and probing < FLAG_LEVEL
            and escalation < FLAG_LEVEL
            and bot < FLAG_LEVEL
        ):
            flags: tuple[str, ...] = ()  # the usual case, without building a list
        else:
            components = (burst, repetition, probing, escalation, bot)
            flags = tuple(
                [name for name, value in zip(FLAGS, components, strict=True) if value >= FLAG_LEVEL]
            )
        # positional: the field order of `TemporalFeatures`
        return TemporalFeatures(
            float(rate),
            burstiness,
            exact,
            near,
            hits,
            escalation,
            bot,
            self.turns,
            1.0 - calm,
            flags,
            shape,
        )

    def _to_lists(self) -> None:
        """Move the state to the lists (for good: the list path takes any value)."""
        hist = self._hist
        if hist is not None:
            n = self._n
            self._ts = hist[0, :n].tolist()
            self._fp = [v & _MASK64 for v in hist[1, :n].tolist()]
            self._sc = hist[2, :n].tolist()
            self._hist = None
        self._counters_to_python()

    def _counters_to_python(self) -> None:
        """Move the rate counters and the blocks from the columns to `_hops` and `_blocked`."""
        rates = self._rates
        if rates is not None:
            k = self._n_rates
            self._hops = dict(zip(rates[0, :k].tolist(), rates[1, :k].tolist(), strict=True))
            self._blocked = self._block_rows()
            self._rates, self._n_rates = None, 0
            self._blocks, self._n_blocks = _NO_HISTORY, 0

    def _block_rows(self) -> list[list[int]]:
        """The block columns as `_blocked` holds them."""
        rows: list[list[int]] = self._blocks[:, : self._n_blocks].T.tolist()
        for row in rows:
            row[1] &= _MASK64
        return rows

    def _set_history(self, times: list[int], fps: list[int], scores: list[int]) -> None:
        """Take a history (sorted by time), as arrays when the compiled path can use them."""
        if times and not (
            -_SAFE_MS <= times[0]
            and times[-1] <= _SAFE_MS
            and -_SAFE_MS <= min(scores)
            and max(scores) <= _SAFE_MS
        ):
            self._hist = None
            self._ts, self._fp, self._sc = times, fps, scores
            return
        n = len(times)
        hist = np.empty((3, n + 1), dtype=np.int64)
        hist[0, :n] = times
        hist[1, :n] = np.array(fps, dtype=np.uint64).view(np.int64)
        hist[2, :n] = scores
        self._hist, self._n = hist, n

    def record_outcome(
        self, fingerprint: int, blocked: bool, ts: float, config: TemporalConfig | None = None
    ) -> None:
        """Report the verdict on a prompt: a block arms probing detection for its variants."""
        if not blocked:
            return
        if not math.isfinite(ts):
            raise DetectorError(f"temporal: non-finite outcome time {ts}")
        cfg = DEFAULT_CONFIG if config is None else config
        at = _to_ms(ts)
        fp = fingerprint & _MASK64
        if self._rates is not None:
            radius = cfg.probe_hamming_suspicious
            most = cfg.max_blocked
            if (
                -_SAFE_MS <= at <= _SAFE_MS
                and type(radius) is int
                and type(most) is int
                and most <= _SAFE_MS
            ):
                blocks = self._blocks
                m = self._n_blocks
                if m >= blocks.shape[1]:
                    self._blocks = blocks = _widened(blocks, m, max(m + 1, min(most, 64) + 1))
                self._n_blocks = _kernels()[2](
                    blocks, m, at, fp - _TWO64 if fp > _INT64_MAX else fp, radius, most
                )
                return
            self._counters_to_python()
        for entry in self._blocked:
            # a blocked variant of a prompt blocked before extends that block's probing window
            if (entry[1] ^ fp).bit_count() <= cfg.probe_hamming_suspicious:
                entry[0] = max(entry[0], at)
                return
        self._blocked.append([at, fp, 0])
        if len(self._blocked) > cfg.max_blocked:
            oldest = min(range(len(self._blocked)), key=lambda i: self._blocked[i][0])
            del self._blocked[oldest]

    # -- features -----------------------------------------------------------------------------

    def _count_rate(self, ts: int, newest: int, config: TemporalConfig) -> int:
        hop_ms = config._derived.hop_ms
        hops_per_window = config._derived.hops_per_window
        first_live = newest // hop_ms - hops_per_window + 1
        hop = ts // hop_ms
        counters = self._hops
        if hop >= first_live:
            counters[hop] = counters.get(hop, 0) + 1
        if len(counters) > hops_per_window:
            for stale in [k for k in counters if k < first_live]:
                del counters[stale]
        rate = 0
        for k, v in counters.items():
            if k >= first_live:
                rate += v
        return rate

    def _repetitions(self, ts: int, fp: int, kept: bool, config: TemporalConfig) -> tuple[int, int]:
        times = self._ts
        window = config._derived.repeat_ms
        lo = bisect_left(times, ts - window)
        hi = bisect_right(times, ts + window)
        distances = [(other ^ fp).bit_count() for other in self._fp[lo:hi]]
        exact = distances.count(0)
        threshold = config.near_hamming
        near = len([d for d in distances if d <= threshold])
        if kept:  # the event itself is in the history: it is not a repetition of itself
            exact -= 1
            near -= 1
        return exact, near

    def _probe_hits(self, ts: int, fp: int, score: int, newest: int, config: TemporalConfig) -> int:
        if not self._blocked:
            return 0
        window = config._derived.probe_ms
        suspicious = score >= config._derived.probe_suspicious_units
        threshold = config.probe_hamming_suspicious if suspicious else config.probe_hamming
        live: list[list[int]] = []
        hits = 0
        for entry in self._blocked:
            blocked_at = entry[0]
            if blocked_at <= ts <= blocked_at + window and (entry[1] ^ fp).bit_count() <= threshold:
                entry[2] += 1
            if blocked_at + window >= newest:
                live.append(entry)
                if entry[2] > hits:
                    hits = entry[2]
        self._blocked = live
        return hits

    def _gap_stats(self, config: TemporalConfig) -> tuple[float, float | None]:
        """(burstiness, coefficient of variation or None when there are too few gaps)."""
        times = self._ts
        count = min(config.bot_gaps, len(times) - 1)
        if count < 2:
            return 0.0, None
        recent = times[-count - 1 :]
        total = recent[-1] - recent[0]  # the gaps telescope
        squares = sum([(b - a) * (b - a) for a, b in zip(recent, recent[1:], strict=False)])
        # integer ms: the variance numerator is exact, so identical gaps give exactly 0
        mean = total / count
        sd = math.sqrt(count * squares - total * total) / count
        burstiness = (sd - mean) / (sd + mean) if sd + mean > 0.0 else 0.0
        if count < config.bot_min_gaps:
            return burstiness, None
        # all gaps zero: a machine firing simultaneous requests is as regular as it gets
        cv = sd / mean if mean > 0.0 else 0.0
        return burstiness, cv

    # -- serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-able form: times delta-coded in ms, fingerprints packed in base64."""
        hist = self._hist
        if hist is not None:
            n = self._n
            deltas = np.diff(hist[0, :n]).tolist()
            t0 = int(hist[0, 0]) if n else 0
            packed = hist[1, :n].astype("<i8", copy=False).tobytes()  # the same 8 bytes as "<Q"
            scores = hist[2, :n].tolist()
        else:
            times = self._ts
            deltas = [b - a for a, b in zip(times, times[1:], strict=False)]
            t0 = times[0] if times else 0
            packed = struct.pack(f"<{len(self._fp)}Q", *self._fp)
            scores = list(self._sc)
        rates = self._rates
        if rates is not None:
            hops = rates[:, : self._n_rates].T.tolist()
            hops.sort()  # by hop: the hops are distinct
            blocked = self._block_rows()
        else:
            hops = [[k, v] for k, v in sorted(self._hops.items())]
            blocked = [list(entry) for entry in self._blocked]
        return {
            "v": _STATE_VERSION,
            "t0": t0,
            "dt": deltas,
            "fp": base64.b64encode(packed).decode("ascii"),
            "sc": scores,
            "hops": hops,
            "blk": blocked,
            "turns": self.turns,
            "seen": self.last_seen,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SessionState:
        """Rebuild a state from `to_dict` output; `DetectorError` if it is not one."""
        try:
            if d["v"] != _STATE_VERSION:
                raise ValueError(f"state version {d['v']!r}, expected {_STATE_VERSION}")
            fps = list(
                struct.unpack_from(f"<{len(d['sc'])}Q", base64.b64decode(d["fp"], validate=True))
            )
            times = [int(d["t0"])]
            for delta in d["dt"]:
                if delta < 0:
                    raise ValueError("event times out of order")
                times.append(times[-1] + int(delta))
            if not fps:
                times = []
            scores = [int(s) for s in d["sc"]]
            if not (len(times) == len(fps) == len(scores)):
                raise ValueError("history columns differ in length")
            state = cls()
            state._set_history(times, fps, scores)
            state._rates = None  # the counters and blocks in `_hops` and `_blocked`
            state._hops = {int(k): int(v) for k, v in d["hops"]}
            state._blocked = [[int(a), int(f) & _MASK64, int(h)] for a, f, h in d["blk"]]
            state.turns = int(d["turns"])
            seen = d["seen"]
            state.last_seen = None if seen is None else float(seen)
        except (KeyError, TypeError, ValueError, struct.error, binascii.Error) as exc:
            raise DetectorError(f"temporal: corrupt session state: {exc}") from exc
        return state

    @staticmethod
    def latest(stored: Iterable[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
        """The most recent of several `to_dict` forms of one session (None or {}: no state).

        The one seen last, and of those the one with the most turns: a state read and updated
        again by a record with an earlier time keeps its last-seen time and counts one more
        turn. A form without those fields ranks below every other, so that `from_dict`
        reports it only when there is nothing else.
        """
        best: Mapping[str, Any] | None = None
        best_rank = (-math.inf, -2)
        for state in stored:
            if not state:
                continue
            try:
                seen = state["seen"]
                rank = (-math.inf if seen is None else float(seen), int(state["turns"]))
            except (KeyError, TypeError, ValueError):
                rank = (-math.inf, -2)
            if best is None or rank > best_rank:
                best, best_rank = state, rank
        return best

    @classmethod
    def resume(
        cls, stored: Iterable[Mapping[str, Any] | None], ts: float, config: TemporalConfig
    ) -> SessionState:
        """The state a prompt at `ts` continues: the `latest` of the stored forms, or a fresh
        state when there is none or the session has been idle longer than `idle_ttl_s`.

        `DetectorError` when the latest form cannot be read.
        """
        latest = cls.latest(stored)
        if latest:
            state = cls.from_dict(latest)
            if not state.expired(ts, config):
                return state
        return cls()


# ---------------------------------------------------------------------------------------------
# Analyzer (sessions without Faust)
# ---------------------------------------------------------------------------------------------


class TemporalAnalyzer:
    """Sessions in a dict with an injected clock, idle expiry and an LRU bound (CLI, tests)."""

    def __init__(
        self,
        *,
        config: TemporalConfig | None = None,
        clock: Callable[[], float] = time.time,
        max_sessions: int = 100_000,
    ) -> None:
        if max_sessions < 1:
            raise ConfigError(f"temporal analyzer: max_sessions must be >= 1, got {max_sessions}")
        self.config = DEFAULT_CONFIG if config is None else config
        self._clock = clock
        self._max_sessions = max_sessions
        # insertion order is recency order: a touched session is moved to the end
        self._sessions: dict[str, SessionState] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def session(self, session_id: str) -> SessionState | None:
        """The live state of a session, if any (for inspection; not a copy)."""
        return self._sessions.get(session_id)

    def _live(self, session_id: str, now: float) -> SessionState:
        state = self._sessions.pop(session_id, None)
        if state is None or state.expired(now, self.config):
            state = SessionState()
        self._sessions[session_id] = state
        if len(self._sessions) > self._max_sessions:
            del self._sessions[next(iter(self._sessions))]
        return state

    def observe(self, session_id: str, event: TemporalEvent) -> TemporalFeatures:
        """Features of `session_id` after `event` (an expired session starts afresh)."""
        now = self._clock()
        return self._live(session_id, now).observe(event, self.config, now=now)

    def record_outcome(self, session_id: str, fingerprint: int, blocked: bool, ts: float) -> None:
        """Report the verdict on a session's prompt (arms probing detection when blocked)."""
        now = self._clock()
        state = self._live(session_id, now)
        state.touch(now)
        state.record_outcome(fingerprint, blocked, ts, self.config)

    def expire(self) -> int:
        """Drop every session idle for longer than the configured TTL; return how many."""
        now = self._clock()
        stale = [sid for sid, state in self._sessions.items() if state.expired(now, self.config)]
        for sid in stale:
            del self._sessions[sid]
        return len(stale)
