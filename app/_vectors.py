"""Small vector and text helpers shared by the embedders and the pattern store.

Owns L2 normalisation, symmetric int8 quantisation of unit vectors, and the splitting of
long texts into overlapping windows (so a short injection inside a long document can still
match a short known pattern, and a long benign text does not match by sheer length).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from app._jit import LazyKernels, njit

FloatMatrix = npt.NDArray[np.float32]
Int8Matrix = npt.NDArray[np.int8]

#: scale of the int8 code: unit-vector components are in [-1, 1], so 127 keeps the sign bit free
INT8_SCALE = 127.0

_SENTENCE_END = re.compile(r"(?<=[.!?。！？;])\s+|\n+")


def l2_normalize(matrix: npt.NDArray[np.floating], *, eps: float = 1e-12) -> FloatMatrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    scale = np.where(norms > eps, 1.0 / np.maximum(norms, eps), 0.0).astype(np.float32)
    return out * scale[:, None]


def quantize_int8(unit_rows: FloatMatrix) -> Int8Matrix:
    """Symmetric per-component int8 code of unit vectors (scale fixed at `INT8_SCALE`)."""
    scaled = np.rint(np.clip(unit_rows, -1.0, 1.0) * INT8_SCALE)
    return scaled.astype(np.int8)


def dequantize_int8(codes: Int8Matrix) -> FloatMatrix:
    """Float32 unit vectors back from their int8 code (re-normalised: rounding moves the norm)."""
    return l2_normalize(codes.astype(np.float32))


def text_windows(text: str, *, max_chars: int, overlap_sentences: int = 0) -> list[str]:
    """Split `text` into windows of about `max_chars` characters on sentence boundaries.

    Texts no longer than `max_chars` come back as one window. A sentence longer than
    `max_chars` is cut into pieces at spaces. Windows never split a sentence, so by default
    they do not overlap; `overlap_sentences` makes consecutive windows share sentences.
    """
    stripped = text.strip()
    if len(stripped) <= max_chars:
        return [stripped] if stripped else []
    sentences = list(_sentences(stripped, max_chars))
    windows: list[str] = []
    start = 0
    while start < len(sentences):
        end = start
        size = 0
        while end < len(sentences) and (end == start or size + len(sentences[end]) <= max_chars):
            size += len(sentences[end]) + 1
            end += 1
        windows.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        start = max(start + 1, end - overlap_sentences)
    return windows


def _sentences(text: str, max_chars: int) -> Iterator[str]:
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", max_chars // 2, max_chars)
            cut = cut if cut > 0 else max_chars
            yield sentence[:cut]
            sentence = sentence[cut:].strip()
        if sentence:
            yield sentence


# ---------------------------------------------------------------------------------------------
# Feature-hashing kernel of the hashing embedder. Plain Python here; `hashing_kernel()` compiles
# it with numba on first use (cached on disk), so importing this module stays cheap.
# ---------------------------------------------------------------------------------------------

_U64 = np.uint64
_ROLL = _U64(0x100000001B3)  # FNV-1a 64-bit prime: odd multiplier for polynomial hashes
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_WORD_MUL = _U64(0xD6E8FEB86659FD93)  # re-keys words so they never collide with char grams
_WORD_ADD = _U64(0x2545F4914F6CDD1D)
_BIGRAM_MUL = _U64(0xA0761D6478BD642F)
_ONE = _U64(1)
_S30, _S27, _S31, _S32 = _U64(30), _U64(27), _U64(31), _U64(32)
#: codepoints below 128 that separate words: whitespace and ASCII punctuation
WORD_SEPARATORS = np.zeros(128, dtype=np.bool_)
for _c in " \t\n\r\f\v!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
    WORD_SEPARATORS[ord(_c)] = True


def _add_feature(out, key, seed, mask, weight):
    x = key ^ seed
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    x = x ^ (x >> _S31)
    bucket = (x >> _S32) & mask
    if x & _ONE:
        out[bucket] -= weight
    else:
        out[bucket] += weight


def _hash_text(codes, lo, hi, unigrams, bigrams, word_weight, seed, mask, separators, out, finish):
    # accumulate signed hashed features of `codes` (padded, lowered text) into `out`, then,
    # if `finish`, apply sublinear tf and L2-normalise `out` in place
    n = codes.shape[0]
    for i in range(n):
        h = _U64(0)
        for m in range(hi):
            if i + m >= n:
                break
            h = h * _ROLL + codes[i + m]
            if m + 1 >= lo:
                _add_feature(out, h, seed, mask, 1.0)
    h = _U64(0)
    prev = _U64(0)
    have_prev = False
    in_word = False
    for i in range(n + 1):
        c = codes[i] if i < n else _U64(32)
        separator = c < _U64(128) and separators[c]
        if not separator:
            h = h * _ROLL + c
            in_word = True
        elif in_word:
            if unigrams:
                _add_feature(out, h * _WORD_MUL + _WORD_ADD, seed, mask, word_weight)
            if bigrams and have_prev:
                _add_feature(out, prev * _BIGRAM_MUL + h, seed, mask, word_weight)
            prev = h
            have_prev = True
            in_word = False
            h = _U64(0)
    if finish:
        _finish(out)


#: log1p of the integers below this, computed once by the compiled kernel's own log1p
LOG1P_TABLE_SIZE = 4096
_LOG1P_TABLE = np.zeros(0, dtype=np.float64)  # filled by `_compile_hashing`


def _log1p_table(size):
    out = np.empty(size, dtype=np.float64)
    for i in range(size):
        out[i] = np.log1p(np.float64(i))
    return out


def _finish(out):
    # sublinear term frequency, then unit L2 norm, in place; an empty bucket (+0 or -0) is
    # left as it is: log1p would give it back and it adds 0 to the norm. Bucket counts are
    # sums of n-gram weights, whole numbers with the default weights, so log1p is looked up
    # in a table filled by this same compiled log1p (numpy's own log1p differs in the last
    # bit): the same bits at a tenth of the cost
    table = _LOG1P_TABLE
    size = table.shape[0]
    total = 0.0
    for b in range(out.shape[0]):
        v = out[b]
        if v == 0.0:
            continue
        a = -v if v < 0.0 else v
        if a < size and np.floor(a) == a:
            lg = table[np.int64(a)]
        else:
            lg = np.log1p(a)
        v = lg if v >= 0.0 else -lg
        out[b] = v
        total += v * v
    if total > 0.0:
        scale = 1.0 / np.sqrt(total)
        for b in range(out.shape[0]):
            out[b] *= scale


def _hash_folded(
    codes,
    lo,
    hi,
    unigrams,
    bigrams,
    word_weight,
    seed,
    mask,
    separators,
    acc,
    small,
    row,
    small_row,
):
    # one text at two sizes: raw counts into `acc` (zeros), folded into `small` (zeros) -- a
    # feature's bucket at the smaller size is its bucket modulo that size, and the counts are
    # small integers, exact in float64 in any order -- then both finished and stored as float32
    _hash_text(codes, lo, hi, unigrams, bigrams, word_weight, seed, mask, separators, acc, False)
    dim = small.shape[0]
    for start in range(0, acc.shape[0], dim):
        for b in range(dim):
            small[b] += acc[start + b]
    _finish(acc)
    _finish(small)
    for b in range(acc.shape[0]):
        row[b] = acc[b]
    for b in range(dim):
        small_row[b] = small[b]


def _compile_hashing() -> tuple[Any, ...]:
    global _add_feature, _finish, _hash_text, _LOG1P_TABLE
    _LOG1P_TABLE = njit(_log1p_table)(LOG1P_TABLE_SIZE)  # before `_finish` compiles: a constant
    _add_feature = njit(_add_feature, inline=True)
    _finish = njit(_finish)
    _hash_text = njit(_hash_text)
    return _hash_text, _finish, njit(_hash_folded)


_HASHING = LazyKernels(_compile_hashing)


def hashing_kernel() -> Callable[..., None]:
    """The numba-compiled `_hash_text` (compiled once per process, cached on disk)."""
    return cast(Callable[..., None], _HASHING()[0])


def finish_kernel() -> Callable[[npt.NDArray[np.float64]], None]:
    """The numba-compiled sublinear-tf + L2 step that `hashing_kernel()` ends with."""
    return cast(Callable[[npt.NDArray[np.float64]], None], _HASHING()[1])


def folded_kernel() -> Callable[..., None]:
    """The numba-compiled `_hash_folded`: `_hash_text` at two sizes, finished, in one call."""
    return cast(Callable[..., None], _HASHING()[2])


# ---------------------------------------------------------------------------------------------
# Candidate merging of the pattern store's queries (compiled like the hashing kernel).
# ---------------------------------------------------------------------------------------------


def _merge_top_k(rows, sims, alive, owners, k, out_owner, out_sim):
    # per query row: the k best candidates by similarity (ties: the earlier column), skipping
    # empty slots (-1) and dead rows, one per owning pattern; returns how many were found
    n, m = rows.shape
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        taken = np.zeros(m, dtype=np.bool_)
        c = 0
        while c < k:
            best = -1
            best_sim = -np.inf
            for j in range(m):
                if taken[j]:
                    continue
                r = rows[i, j]
                if r < 0 or not alive[r]:
                    taken[j] = True
                    continue
                if sims[i, j] > best_sim:
                    best = j
                    best_sim = sims[i, j]
            if best < 0:
                break
            taken[best] = True
            owner = owners[rows[i, best]]
            duplicate = False
            for t in range(c):
                if out_owner[i, t] == owner:
                    duplicate = True
                    break
            if duplicate:
                continue
            out_owner[i, c] = owner
            out_sim[i, c] = min(1.0, best_sim)
            c += 1
        counts[i] = c
    return counts


def _index_top_k(idx, dist, index_rows, alive, owners, k, out_owner, out_sim):
    # `_merge_top_k` over the candidates of one index search, taken as the index returns
    # them: position -1 is an empty slot, a similarity is 1 - distance in float32 (the
    # distance rounded to float32 first), as the store's numpy path computes them
    n, m = idx.shape
    rows = np.empty((n, m), dtype=np.int64)
    sims = np.empty((n, m), dtype=np.float32)
    one = np.float32(1.0)
    for i in range(n):
        for j in range(m):
            position = idx[i, j]
            if position >= 0:
                rows[i, j] = index_rows[position]
                sims[i, j] = one - np.float32(dist[i, j])
            else:
                rows[i, j] = -1
                sims[i, j] = -np.inf
    return _merge_top_k(rows, sims, alive, owners, k, out_owner, out_sim)


def _compile_merge() -> tuple[Any, ...]:
    global _merge_top_k
    _merge_top_k = njit(_merge_top_k)
    return _merge_top_k, njit(_index_top_k)


_MERGE = LazyKernels(_compile_merge)


def merge_kernel() -> Callable[..., npt.NDArray[np.int64]]:
    """The numba-compiled `_merge_top_k` (compiled once per process, cached on disk)."""
    return cast(Callable[..., npt.NDArray[np.int64]], _MERGE()[0])


def index_merge_kernel() -> Callable[..., npt.NDArray[np.int64]]:
    """The numba-compiled `_index_top_k`: an index search's raw output merged in one call."""
    return cast(Callable[..., npt.NDArray[np.int64]], _MERGE()[1])
