"""Pattern-index benchmark: pynndescent build time, memory, latency, throughput, recall.

Vectors: the default (hashing) embedder's embeddings of every dev-corpus text cut into
200-character windows (~60k real rows), and, to reach 100k / 1M patterns, random mixtures
of two real rows plus a little Gaussian noise, re-normalised (same dimension, same
sparsity-free dense structure, clusters like families of attack variants). Queries are
other real windows with noise added, so some sit close to patterns and most do not, as in
production where most prompts are benign.

For each size and form (float32, int8) it reports build time, memory per pattern,
single-query latency (median / p99, through `PatternStore.query`, one thread), batch
throughput, and recall@10 against exact brute-force search; then worker start-up in a
fresh process: import, load from disk, numba warm-up, first query.

    .venv/bin/python perf/bench_index.py --quick     # 10k patterns
    .venv/bin/python perf/bench_index.py             # 100k patterns (default)
    .venv/bin/python perf/bench_index.py --full      # 100k and 1M patterns
    .venv/bin/python perf/bench_index.py --sizes 1M --forms float32 --tag 1m_static \
        --embedder static --screen-per-bucket 0     # one size, one form, no screening part

Search-side sweeps on one built index: `--search-k 10,30` also varies the store's
`min_search_k` (the search heap width; the store keeps the best k of it), `--repeats 3`
times every query three times and adds the p99 of each query's best time (the cost of the
query itself, without other processes' interference). `--forms int8-rerank` keeps float32
rows and searches pynndescent's int8 codes, re-ranking the search heap with the floats;
`--dedup` indexes each distinct vector once (`PatternStore(dedup_index=True)`).
The first row of each index (first search k, first epsilon) is its baseline: the `×`
columns are latency ratios against it, measured in the same process.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app._vectors import l2_normalize, text_windows  # noqa: E402
from app.embedders import load_embedder  # noqa: E402
from app.patterns import Pattern, PatternStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "dev"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    size: int
    form: str
    n_neighbors: int
    search_k: int
    epsilon: float
    build_s: float
    bytes_per_pattern: float
    index_bytes_per_pattern: float
    median_us: float
    p99_us: float
    batch_qps: float
    recall10: float
    recall10_near: float
    recall10_far: float
    top1_near: float
    recall10_ties: float
    p99_best_us: float
    p99_near_us: float
    p99_far_us: float
    median_ratio: float
    p99_ratio: float
    p99_each_us: tuple[float, ...] = ()


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def real_windows(embedder: Any) -> np.ndarray:
    cache = (
        Path(tempfile.gettempdir()) / f"aimds_bench_windows_{embedder.name}_{embedder.version}.npy"
    )
    if cache.exists():
        return np.load(cache)
    texts: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                texts.extend(text_windows(json.loads(line)["text"], max_chars=200))
    parts = [
        embedder.embed(texts[i : i + 512])
        for i in tqdm(range(0, len(texts), 512), desc="embed dev windows")
    ]
    vecs = np.concatenate(parts)
    vecs = vecs[np.einsum("ij,ij->i", vecs, vecs) > 0.5]
    np.save(cache, vecs)
    return vecs


def synth_patterns(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if n <= len(base):
        return base[rng.permutation(len(base))[:n]].copy()
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    out[: len(base)] = base
    for start in tqdm(range(len(base), n, 50_000), desc=f"synthesise {n:,} patterns"):
        m = min(50_000, n - start)
        a = base[rng.integers(0, len(base), m)]
        b = base[rng.integers(0, len(base), m)]
        w = rng.uniform(0.55, 0.95, (m, 1)).astype(np.float32)
        noise = rng.standard_normal((m, base.shape[1])).astype(np.float32)
        out[start : start + m] = l2_normalize(w * a + (1 - w) * b + 0.02 * noise)
    return out


def make_queries(held_out: np.ndarray, data: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Half near-variants of stored patterns (attacks), half unseen real windows (mostly benign)."""
    rng = np.random.default_rng(seed)
    near = data[rng.integers(0, len(data), n // 2)]
    noise = rng.standard_normal(near.shape).astype(np.float32)
    near = l2_normalize(near + 0.8 * noise / np.sqrt(data.shape[1]))
    far = held_out[rng.integers(0, len(held_out), n - n // 2)]
    return np.concatenate([near, far])


def screening_texts(per_bucket: int) -> dict[str, list[str]]:
    """Real dev prompts (attacks and benign) by length bucket."""
    rng = np.random.default_rng(3)
    texts: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            texts.extend(json.loads(line)["text"] for line in handle)
    out: dict[str, list[str]] = {}
    for lo, hi in ((0, 256), (256, 1024), (1024, 4096), (4096, 20000)):
        pool = [t for t in texts if lo <= len(t) < hi]
        picks = rng.permutation(len(pool))[:per_bucket]
        out[f"{lo}-{hi} chars"] = [pool[i] for i in picks]
    return out


def exact_top10(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), 10), dtype=np.int64)
    # bound the similarity block to ~200 MB whatever the pattern count (1M x 50 queries)
    step = max(1, min(100, 50_000_000 // len(data)))
    for i in tqdm(range(0, len(queries), step), desc=f"exact top-10 over {len(data):,}"):
        sims = queries[i : i + step] @ data.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[i : i + step] = np.take_along_axis(top, order, axis=1)
    return out


def parse_size(text: str) -> int:
    """'100k', '1M' or '250000' -> number of patterns."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def index_nbytes(index: Any) -> int:
    total = 0
    groups = getattr(index, "group_members", None)
    if groups is not None:  # dedup_index: the distinct-vector index plus its copy groups
        total += groups.nbytes + index.group_indptr.nbytes
        index = index.inner
    codes = getattr(index, "codes", None)
    if codes is not None:  # search_kernel="int8": codes, scales and search workspaces
        total += codes.nbytes + index.scales.nbytes + index.visited.nbytes
        total += index.heap_d.nbytes + index.heap_v.nbytes + index.pending.nbytes
        index = index.inner
    for name in ("_raw_data", "_quantized_data", "_quantized_inv_norms", "_vertex_order"):
        arr = getattr(index, name, None)
        if isinstance(arr, np.ndarray) and arr.strides and arr.strides[0] != 0:
            total += arr.nbytes
    graph = getattr(index, "_search_graph", None)
    if graph is not None:
        total += graph.indptr.nbytes + graph.indices.nbytes + graph.data.nbytes
    for tree in getattr(index, "_search_forest", ()):
        total += tree.hyperplanes.nbytes + tree.offsets.nbytes + tree.children.nbytes
        total += tree.indices.nbytes
    return total


def measure(
    store: PatternStore,
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    label: str,
    n_neighbors: int,
    epsilons: Sequence[float],
    search_ks: Sequence[int],
    repeats: int,
    build_s: float,
    rss_total: int,
    idx_bytes: int,
    baseline: Sequence[Row] = (),
) -> list[Row]:
    """Single-query latency, batch throughput and recall of `store` over the (k, ε) grid.

    The × columns compare with `baseline` (the same grid point of another search over the
    same index, measured in this process) or, without one, with this grid's first row.
    """
    rows: list[Row] = []
    half = len(queries) // 2
    grid = [(sk, eps) for sk in search_ks for eps in epsilons]
    for point, (search_k, epsilon) in enumerate(grid):
        first = baseline[point] if baseline else (rows[0] if rows else None)
        store.min_search_k = search_k
        store.epsilon = epsilon
        store.query(queries[:5], k=10)
        per_query = np.empty((max(1, repeats), len(queries)))
        gc.collect()
        with threadpool_limits(1):
            for rep in range(len(per_query)):
                for i, q in enumerate(queries):
                    t0 = time.perf_counter()
                    store.query(q[None, :], k=10)
                    per_query[rep, i] = time.perf_counter() - t0
        times = per_query[0]  # the first pass, as a single run would see it
        best = per_query.min(axis=0)
        t0 = time.perf_counter()
        batch = store.query(queries, k=10)
        qps = len(queries) / (time.perf_counter() - t0)
        found = np.array(
            [[int(m.pattern_id[1:]) for m in ms] + [-1] * (10 - len(ms)) for ms in batch]
        )
        recall = np.array([len(set(found[i]) & set(truth[i])) / 10 for i in range(len(truth))])
        # detection needs the best match's similarity, not the exact neighbour list
        best_found = np.array([ms[0].similarity if ms else -1.0 for ms in batch])
        best_true = np.einsum("ij,ij->i", queries, data[truth[:, 0]])
        top1_near = float(np.mean(np.abs(best_found[:half] - best_true[:half]) < 1e-2))
        # the synthetic set repeats rows (duplicate dev windows), so the exact top-10 is often
        # one arbitrary pick among tied rows: also count a hit by its exact similarity reaching
        # the true 10th similarity (ann-benchmarks' rule, here with a 1e-5 tolerance)
        exact_found = np.einsum("ij,ikj->ik", queries, data[np.maximum(found, 0)])
        exact_found[found < 0] = -np.inf
        tenth = np.einsum("ij,ij->i", queries, data[truth[:, 9]])
        recall_ties = float(np.mean(np.sum(exact_found >= tenth[:, None] - 1e-5, axis=1) / 10))
        median_us = statistics.median(times) * 1e6
        p99_us = float(np.percentile(times, 99)) * 1e6
        rows.append(
            Row(
                size=len(data),
                form=label,
                n_neighbors=n_neighbors,
                search_k=search_k,
                epsilon=epsilon,
                build_s=build_s,
                bytes_per_pattern=rss_total / len(data),
                index_bytes_per_pattern=idx_bytes / len(data),
                median_us=median_us,
                p99_us=p99_us,
                batch_qps=qps,
                recall10=float(recall.mean()),
                recall10_near=float(recall[:half].mean()),
                recall10_far=float(recall[half:].mean()),
                top1_near=top1_near,
                recall10_ties=recall_ties,
                p99_best_us=float(np.percentile(best, 99)) * 1e6,
                p99_near_us=float(np.percentile(best[:half], 99)) * 1e6,
                p99_far_us=float(np.percentile(best[half:], 99)) * 1e6,
                median_ratio=median_us / first.median_us if first else 1.0,
                p99_ratio=p99_us / first.p99_us if first else 1.0,
                p99_each_us=tuple(float(np.percentile(t, 99)) * 1e6 for t in per_query),
            )
        )
    return rows


def run_one(
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    form: str,
    n_neighbors: int,
    epsilons: Sequence[float],
    search_ks: Sequence[int] = (10,),
    repeats: int = 1,
    dedup: bool = False,
    embedder: Any,
    save_to: Path | None,
    screen_texts: dict[str, list[str]] | None = None,
    screening: dict[str, tuple[float, float]] | None = None,
    index_options: dict[str, Any] | None = None,
    extra_kernels: Sequence[str] = (),
    save_kernels_to: Path | None = None,
) -> list[Row]:
    """Build one store, measure it; then the same graph under each of `extra_kernels`."""
    quantize = form == "int8"
    options = dict(index_options or {})
    if form == "int8-rerank":
        options["quantization"] = "int8"  # float rows kept: int8 search, float re-ranking
    store = PatternStore(
        embedder=embedder,
        n_neighbors=n_neighbors,
        quantize=quantize,
        n_jobs=None,
        window_chars=None,  # patterns arrive as vectors; the screening part sets windows
        index_options=options,
        dedup_index=dedup,
        search_kernel="int8" if form == "int8-kernel" else "pynndescent",
    )
    label = f"{form} dedup" if dedup else form
    patterns = [
        Pattern(f"p{i}", "-", "instruction_override", 0.8, "bench") for i in range(len(data))
    ]
    rss0 = rss_bytes()
    store.add(patterns, vectors=data)
    started = time.perf_counter()
    store.build(progress=False)
    build_s = time.perf_counter() - started
    rss_total = rss_bytes() - rss0
    index = store._generation.index
    idx_bytes = index_nbytes(index)
    rows = measure(
        store,
        data,
        queries,
        truth,
        label=label,
        n_neighbors=n_neighbors,
        epsilons=epsilons,
        search_ks=search_ks,
        repeats=repeats,
        build_s=build_s,
        rss_total=rss_total,
        idx_bytes=idx_bytes,
    )
    store.min_search_k = search_ks[0]
    if screen_texts is not None and screening is not None:
        store.epsilon = epsilons[0]
        for window in (None, 200):
            store.window_chars = window
            for bucket, texts in screen_texts.items():
                times = []
                with threadpool_limits(1):
                    for text in texts:
                        t0 = time.perf_counter()
                        store.match_texts([text], k=10)
                        times.append(time.perf_counter() - t0)
                key = f"{len(data):,} {label} | {window or 'whole'} | {bucket}"
                screening[key] = (
                    statistics.median(times) * 1e6,
                    float(np.percentile(times, 99)) * 1e6,
                )
        store.window_chars = None
    if save_to is not None:
        store.epsilon = epsilons[0]
        store.save(save_to)
    baseline = list(rows)
    for kernel in extra_kernels:
        # the same pynndescent graph and tree, walked by another search kernel
        rss0 = rss_bytes()
        started = time.perf_counter()
        swapped = with_search_kernel(store._generation.index, kernel)
        wrap_s = time.perf_counter() - started
        store._generation = dataclasses.replace(store._generation, index=swapped)
        store.search_kernel = kernel
        rows += measure(
            store,
            data,
            queries,
            truth,
            label=f"{label} {kernel}-kernel",
            n_neighbors=n_neighbors,
            epsilons=epsilons,
            search_ks=search_ks,
            repeats=repeats,
            build_s=build_s + wrap_s,
            rss_total=rss_total + rss_bytes() - rss0,
            idx_bytes=index_nbytes(swapped),
            baseline=baseline,
        )
        if save_kernels_to is not None:
            store.epsilon = epsilons[0]
            store.min_search_k = search_ks[0]
            store.save(save_kernels_to)
    del store, index
    return rows


def with_search_kernel(index: Any, kernel: str) -> Any:
    """`index` (a built pynndescent index, maybe in a dedup wrapper) searched by `kernel`."""
    from app.patterns import _CodeIndex, _DistinctIndex

    if kernel != "int8":
        raise ValueError(f"unknown search kernel {kernel!r}")
    if isinstance(index, _DistinctIndex):
        return _DistinctIndex(_CodeIndex(index.inner), index.group_indptr, index.group_members)
    return _CodeIndex(index)


STARTUP_SCRIPT = r"""
import sys, time, json, os
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
from app.patterns import PatternStore
import pynndescent  # the store imports it lazily; a worker pays for it at start-up
t_import = time.perf_counter() - t0
rss0 = rss()

class Fixed:
    def __init__(self, name, version, dim): self.name, self.version, self.dim = name, version, dim
    def embed(self, texts): return np.zeros((len(texts), self.dim), np.float32)

manifest = json.load(open({path!r} + "/manifest.json"))
e = manifest["embedder"]
t1 = time.perf_counter()
store = PatternStore.load({path!r}, embedder=Fixed(e["name"], e["version"], e["dim"]))
t_load = time.perf_counter() - t1
t2 = time.perf_counter()
store.warm_up()
t_warm = time.perf_counter() - t2
q = np.random.default_rng(0).standard_normal((1, e["dim"])).astype(np.float32)
t3 = time.perf_counter()
store.query(q, k=10)
t_first = time.perf_counter() - t3
print(json.dumps(dict(import_s=t_import, load_s=t_load, warm_up_s=t_warm,
                      first_query_us=t_first * 1e6, rss_per_pattern=(rss() - rss0) / len(store))))
"""


def startup(path: Path) -> dict[str, float]:
    code = STARTUP_SCRIPT.format(root=str(ROOT), path=str(path))
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        print(f"start-up probe failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        nan = float("nan")
        return dict(
            import_s=nan, load_s=nan, warm_up_s=nan, first_query_us=nan, rss_per_pattern=nan
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10k patterns")
    size.add_argument("--full", action="store_true", help="100k and 1M patterns")
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--neighbors", default="30", help="comma list of n_neighbors")
    parser.add_argument("--epsilons", default="0.0,0.1,0.2")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--forms",
        default="float32,int8",
        help="float32, int8 (codes only), int8-rerank, int8-kernel (search_kernel='int8';"
        " next to float32 it searches the float32 build's graph)",
    )
    parser.add_argument(
        "--search-k",
        default="10",
        help="comma list of the store's min_search_k (search heap width; best 10 are kept)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes over the queries (p99 of best)"
    )
    parser.add_argument(
        "--dedup", action="store_true", help="PatternStore(dedup_index=True): one vertex per vector"
    )
    parser.add_argument(
        "--index-options",
        default="{}",
        help='extra NNDescent args as JSON, e.g. {"diversify_prob": 0}',
    )
    parser.add_argument(
        "--screen-per-bucket", type=int, default=200, help="prompts per bucket (0: skip)"
    )
    parser.add_argument(
        "--sizes", default=None, help="comma list of pattern counts, e.g. 100k,1M (overrides)"
    )
    parser.add_argument("--tag", default=None, help="plot file suffix (default from the size)")
    parser.add_argument(
        "--hashing-dim",
        type=int,
        default=256,
        help="dimension of the hashing embedder (the screener's pattern stage uses 256)",
    )
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else [100_000, 1_000_000] if args.full else [100_000]
    if args.sizes:
        sizes = [parse_size(x) for x in args.sizes.split(",")]
    neighbors = [int(x) for x in args.neighbors.split(",")]
    epsilons = [float(x) for x in args.epsilons.split(",")]
    search_ks = [int(x) for x in args.search_k.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)

    real = load_embedder(
        args.embedder, **({"dim": args.hashing_dim} if args.embedder == "hashing" else {})
    )
    embedder = real  # only match_texts embeds; patterns are added as vectors
    screen_texts = (
        screening_texts(per_bucket=args.screen_per_bucket) if args.screen_per_bucket > 0 else None
    )
    screening: dict[str, tuple[float, float]] = {}
    base = real_windows(real)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(base))
    query_base, pattern_base = base[perm[:5000]], base[perm[5000:]]
    print(
        f"real dev windows: {len(base):,} x {base.shape[1]} ({args.embedder});"
        f" queries: {args.queries} (half near-variants of patterns, half unseen windows);"
        f" index options: {args.index_options}"
    )

    rows: list[Row] = []
    startups: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data = synth_patterns(pattern_base, n, seed=n)
            queries = make_queries(query_base, data, args.queries, seed=1)
            truth = exact_top10(data, queries)
            forms = args.forms.split(",")
            # with float32 also asked for, int8-kernel searches the float32 build's own graph
            paired = "int8-kernel" in forms and "float32" in forms
            for form in forms:
                if paired and form == "int8-kernel":
                    continue
                extra = ("int8",) if paired and form == "float32" else ()
                for n_neighbors in neighbors:
                    print(f"building {n:,} {form} n_neighbors={n_neighbors} ...", flush=True)
                    save_to = Path(tmp) / f"{n}-{form}-{n_neighbors}"
                    rows += run_one(
                        data,
                        queries,
                        truth,
                        form=form,
                        n_neighbors=n_neighbors,
                        epsilons=epsilons,
                        search_ks=search_ks,
                        repeats=args.repeats,
                        dedup=args.dedup,
                        embedder=embedder,
                        save_to=save_to,
                        screen_texts=screen_texts if n_neighbors == neighbors[0] else None,
                        screening=screening,
                        index_options=json.loads(args.index_options),
                        extra_kernels=extra,
                        save_kernels_to=save_to.with_name(save_to.name + "-kernel"),
                    )
                    label = f"{form} dedup" if args.dedup else form
                    startups[f"{n:,} {label} nn={n_neighbors}"] = startup(save_to)
                    if extra:
                        startups[f"{n:,} {label} int8-kernel nn={n_neighbors}"] = startup(
                            save_to.with_name(save_to.name + "-kernel")
                        )
                    for r in rows[-len(epsilons) * len(search_ks) * (1 + len(extra)) :]:
                        print(f"  partial: {r}", file=sys.stderr, flush=True)
            del data

    print("\n## pynndescent pattern index (k=10, one query thread; build uses all cores)\n")
    print(
        "| patterns | form | n_neighbors | search k | epsilon | build s | build RSS bytes/pattern |"
        " index bytes/pattern | single median µs | single p99 µs | × baseline median / p99 |"
        " p99 best-of-repeats µs | p99 near / far µs | batch q/s | recall@10 |"
        " near | far | top-1 sim near | recall@10 ties-aware | p99 of each repeat µs |"
    )
    print("| --- " * 20 + "|")
    for r in rows:
        print(
            f"| {r.size:,} | {r.form} | {r.n_neighbors} | {r.search_k} | {r.epsilon:g} |"
            f" {r.build_s:.1f} | {r.bytes_per_pattern:,.0f} | {r.index_bytes_per_pattern:,.0f} |"
            f" {r.median_us:,.0f} | {r.p99_us:,.0f} | {r.median_ratio:.2f} / {r.p99_ratio:.2f} |"
            f" {r.p99_best_us:,.0f} | {r.p99_near_us:,.0f} / {r.p99_far_us:,.0f} |"
            f" {r.batch_qps:,.0f} | {r.recall10:.3f} | {r.recall10_near:.3f} |"
            f" {r.recall10_far:.3f} | {r.top1_near:.3f} | {r.recall10_ties:.3f} |"
            f" {' / '.join(f'{x:,.0f}' for x in r.p99_each_us)} |"
        )
    print(
        "\n(× baseline: against the first row of the same index, or for a -kernel row against"
        " the same search k and epsilon of the index it searches; near / far: p99 of the"
        " best-of-repeats time for the near-variant and the unseen-window queries)"
    )
    print("\n## screening one prompt: embed (+ windows) + query + merge, one thread (µs)\n")
    print("| store | windows | prompt length | median µs | p99 µs |")
    print("| --- | --- | --- | --- | --- |")
    for key, (med, p99) in screening.items():
        print(f"| {key} | {med:,.0f} | {p99:,.0f} |")
    print("\n## worker start-up (fresh process)\n")
    print(
        "| store | import s | load s | warm-up s | first query µs after warm-up |"
        " worker RSS bytes/pattern |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, s in startups.items():
        print(
            f"| {name} | {s['import_s']:.2f} | {s['load_s']:.2f} | {s['warm_up_s']:.2f} |"
            f" {s['first_query_us']:,.0f} | {s['rss_per_pattern']:,.0f} |"
        )

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (size_, form, nn, search_k), group in _groups(rows).items():
        (line,) = ax.plot(
            [r.recall10_ties for r in group],
            [r.p99_us for r in group],
            marker="o",
            label=f"{size_:,} {form} nn={nn} search k={search_k}",
        )
        ax.plot(
            [r.recall10 for r in group],
            [r.p99_us for r in group],
            marker=".",
            ls=":",
            color=line.get_color(),
            alpha=0.5,
        )
        for r in group:
            ax.annotate(f"ε={r.epsilon:g}", (r.recall10_ties, r.p99_us), fontsize=7)
    ax.axhline(1000, color="grey", ls=":", lw=0.8)
    ax.axvline(0.95, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("recall@10 vs exact, ties-aware (dotted: by id)")
    ax.set_ylabel("single-query p99 µs")
    ax.set_title("pynndescent: latency vs recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tag = "quick" if args.quick else "full" if args.full else "100k"
    tag += f"_{args.embedder}"
    if args.tag:
        tag = args.tag
    fig.savefig(RESULTS / f"index_recall_latency_{tag}.png", dpi=110)
    print(f"\nplot: {RESULTS / f'index_recall_latency_{tag}.png'}")


def _groups(rows: Sequence[Row]) -> dict[tuple[int, str, int, int], list[Row]]:
    out: dict[tuple[int, str, int, int], list[Row]] = {}
    for r in rows:
        out.setdefault((r.size, r.form, r.n_neighbors, r.search_k), []).append(r)
    return out


if __name__ == "__main__":
    main()
