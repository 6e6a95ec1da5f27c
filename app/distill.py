"""Distilling MiniLM into the static embedder's per-token vectors (`aimds distill`).

The model2vec recipe, run with this project's numpy MiniLM (no torch): every WordPiece token
of all-MiniLM-L6-v2's vocabulary goes through the transformer alone (`[CLS] token [SEP]`),
its mean-pooled output becomes the token's vector, PCA keeps the leading `dim` components,
and each token is weighted by log(rank + 2) - BERT's vocabulary is close to frequency order,
so rarer tokens weigh more (Zipf weighting, a stand-in for SIF). The vectors are stored as
int8 with one scale per token, next to the tokenizer, in app/data/static/.

Deterministic: the same weights give the same file, so the shipped table can be rebuilt and
compared byte for byte. Needs the semantic extra (the MiniLM weights) only when distilling.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from app.embedders import MiniLMEmbedder

log = logging.getLogger(__name__)


def token_vectors(model: MiniLMEmbedder, *, batch: int = 1024, progress: bool) -> np.ndarray:
    """The mean-pooled MiniLM output of `[CLS] t [SEP]` for every vocabulary token t."""
    from tqdm import tqdm

    size = len(model.vocabulary)
    cls, sep = model.special_ids
    out = np.zeros((size, model.dim), dtype=np.float32)
    for start in tqdm(range(0, size, batch), desc="distill", unit="batch", disable=not progress):
        ids = np.arange(start, min(size, start + batch), dtype=np.int64)
        rows = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        out[start : start + len(ids)] = model.forward_ids(rows)
    return out


def principal_components(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` centred and projected on their leading `dim` principal axes (signs fixed)."""
    if not 1 <= dim <= vectors.shape[1]:
        raise ValueError(f"dim must be within 1..{vectors.shape[1]}, got {dim}")
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:dim]
    # an SVD axis is defined up to sign: make each one's largest coordinate positive
    signs = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    return centred @ (axes * signs[:, None]).T


def quantise_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: table ≈ vectors * scales[:, None]."""
    peak = np.abs(table).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    vectors = np.clip(np.rint(table / scales[:, None]), -127, 127).astype(np.int8)
    return vectors, scales


def distill(out_dir: Path, *, dim: int = 256, progress: bool = True) -> Path:
    """Write vectors.npz and tokenizer.json for the static embedder into `out_dir`."""
    model = MiniLMEmbedder()
    pooled = token_vectors(model, progress=progress)
    reduced = principal_components(pooled, dim)
    zipf = np.log(np.arange(len(reduced), dtype=np.float64) + 2.0)
    vectors, scales = quantise_rows(reduced * zipf[:, None])
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    # savez (not savez_compressed): zip timestamps are fixed, so the bytes are reproducible
    np.savez(buffer, vectors=vectors, scales=scales, teacher=np.array(model.version))
    target = out_dir / "vectors.npz"
    target.write_bytes(buffer.getvalue())
    (out_dir / "tokenizer.json").write_text(model.tokenizer_json, encoding="utf-8")
    log.info("static embedder distilled from %s into %s", model.version, out_dir)
    return target
