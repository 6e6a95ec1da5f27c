"""Screening latency per prompt on one core, and worker start-up time.

    python -m perf.bench_screen [--n 3000] [--data ../shared/data/dev] [--compare-model DIR]

Runs the full screener (normalize, rules, embed + kNN, fusion, temporal) over a stratified
mix of the dev corpora, one prompt at a time in one thread, and prints median/p99 per stage
and by text length, with the rules-only screener as a baseline run in the same process;
then screens each prompt twice in a row (the second time with every cache warm: the floor of
the Python path) and counts the calls one screening makes.
Start-up is measured in a fresh process, with the pattern-store cache cold and warm
(numba compilation included). Writes perf/results/screen_latency.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app.core import build_screener
from app.records import Prompt
from app.rules import RuleDetector
from app.screening import RuleScreener
from app.settings import Settings

RESULTS = Path(__file__).with_name("results")
BUCKETS = [(0, 128), (128, 512), (512, 2048), (2048, 8192), (8192, 10**9)]


def sample_texts(data: Path, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    files = sorted(data.glob("*.jsonl"))
    per = max(1, n // len(files))
    texts: list[str] = []
    for f in files:
        lines = [x for x in f.read_text().split("\n") if x.strip()]
        texts += [json.loads(x)["text"] for x in rng.sample(lines, min(per, len(lines)))]
    rng.shuffle(texts)
    return texts


def run(screener, texts: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    totals, stages = [], {}
    session = screener.new_session()
    for i, text in enumerate(texts):
        prompt = Prompt(f"p{i}", "bench", text, 1_767_225_600.0 + i * 7.0)
        t0 = time.perf_counter_ns()
        result = screener.screen(prompt, session, {"prompts_1m": 1, "blocked_10m": 0})
        totals.append((time.perf_counter_ns() - t0) / 1000)
        for k, v in result.timings_us.items():
            stages.setdefault(k, []).append(v)
        if i % 50 == 0:
            session = screener.new_session()  # sessions of ~50 turns
    return np.array(totals), {k: np.array(v) for k, v in stages.items()}


def run_batched(screener, texts: list[str], batch: int) -> float:
    """Seconds to screen `texts` the way the agent does with AIMDS_SCREEN_BATCH=batch."""
    session = screener.new_session()
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        prepared = screener.prepare(chunk)
        for i, (text, ready) in enumerate(zip(chunk, prepared, strict=True)):
            prompt = Prompt(f"p{start + i}", "bench", text, 1_767_225_600.0 + (start + i) * 7.0)
            screener.screen(prompt, session, {"prompts_1m": 1, "blocked_10m": 0}, prepared=ready)
    return time.perf_counter() - started


def rules_warm_up_table(screener, data: Path, n: int, seed: int) -> None:
    """Rules stage, cold vs warmed at load, on dev prompts outside the warm-up set."""
    from app.core import rules_warm_up_texts

    warm_texts = rules_warm_up_texts(screener._store, screener._benign)
    seen = set(warm_texts)
    unseen = [t for t in sample_texts(data, 4 * n, seed + 1) if t not in seen][:n]
    views = [screener.views(t) for t in unseen]
    cold, warmed = RuleDetector(), RuleDetector()
    started = time.perf_counter()
    warmed.warm_up(warm_texts)
    warm_s = time.perf_counter() - started

    def timed(detector: RuleDetector) -> np.ndarray:
        out = []
        for v in views:
            t0 = time.perf_counter_ns()
            detector.scan(v)
            out.append((time.perf_counter_ns() - t0) / 1000)
        return np.array(out)

    a, b = timed(cold), timed(warmed)
    long = np.array([len(t) for t in unseen]) > 2000
    print(
        f"\n| rules stage, {len(unseen)} prompts not in the warm-up set | median µs | p99 µs |"
        f" median > 2k chars ({int(long.sum())}) |"
    )
    print("| --- | --- | --- | --- |")
    for name, x in (("cold detector (baseline)", a), (f"warmed at load ({warm_s:.1f} s)", b)):
        print(
            f"| {name} | {np.median(x):.1f} | {np.percentile(x, 99):.1f} |"
            f" {np.median(x[long]) if long.any() else float('nan'):.1f} |"
        )
    print(
        f"| ratio cold / warmed | {np.median(a) / np.median(b):.2f}x |"
        f" {np.percentile(a, 99) / np.percentile(b, 99):.2f}x | |"
    )


class _Re2SetRules(RuleDetector):
    """The previous rules engine: one RE2 `Set` over every view (the baseline)."""

    def _candidates(self, text: str, encoded: bytes) -> list[int]:
        return sorted(self._set.Match(encoded) or ())


def rules_engine_table(screener, data: Path, n: int, seed: int, rounds: int = 3) -> None:
    """Full screener with the Hyperscan prefilter vs one RE2 `Set`, on prompts new to both.

    RE2 builds DFA states as new input reaches them, so each round screens prompts neither
    detector has seen (both warmed at load alike); the order alternates against drift.
    """
    from app.core import rules_warm_up_texts

    warm = rules_warm_up_texts(screener._store, screener._benign)
    engines = {"hyperscan prefilter": screener._rules, "RE2 set (baseline)": _Re2SetRules()}
    engines["RE2 set (baseline)"].warm_up(warm)
    pool = list(dict.fromkeys(sample_texts(data, 4 * n * rounds, seed + 2)))
    times: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    rules_us: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    lengths = []
    shipped = screener._rules
    try:
        for r in range(rounds):
            texts = pool[r * n : (r + 1) * n]
            lengths.append(np.array([len(t) for t in texts]))
            names = list(engines) if r % 2 == 0 else list(engines)[::-1]
            for name in names:
                screener._rules = engines[name]
                total, stages = run(screener, texts)
                times[name].append(total)
                rules_us[name].append(stages["rules"].astype(float))
    finally:
        screener._rules = shipped
    long = np.concatenate(lengths) > 4096
    print(
        f"\n| rules engine, {rounds} rounds of {n} new prompts | rules median µs | rules p99 µs |"
        f" screening median µs | screening median > 4k chars ({int(long.sum())}) |"
    )
    print("| --- | --- | --- | --- | --- |")
    summary = {}
    for name in engines:
        total, stage = np.concatenate(times[name]), np.concatenate(rules_us[name])
        summary[name] = (np.median(stage), np.percentile(stage, 99), np.median(total))
        print(
            f"| {name} | {summary[name][0]:.0f} | {summary[name][1]:.0f} |"
            f" {summary[name][2]:.0f} | {np.median(total[long]):.0f} |"
        )
    new, old = summary["hyperscan prefilter"], summary["RE2 set (baseline)"]
    print(
        f"| ratio baseline / prefilter | {old[0] / new[0]:.2f}x | {old[1] / new[1]:.2f}x |"
        f" {old[2] / new[2]:.2f}x | |"
    )


def knn_exactness_table(screener, texts: list[str]) -> None:
    """The shipped approximate kNN stores against exact search over the same patterns.

    Hashed n-gram vectors are nearly orthogonal, which gives NN-descent's graph little to
    follow: this measures what that costs in features and decisions, and what exact search
    would cost in time (sessionless, so only the content path differs).
    """
    from threadpoolctl import threadpool_limits

    from app.patterns import PatternStore

    def exact_copy(store):
        copy = PatternStore(embedder=store.embedder, exact_below=10**12)
        copy.add(store.patterns())
        copy.build()
        copy.warm_up()
        return copy

    shipped = (screener._store, screener._benign)
    exact = (exact_copy(shipped[0]), exact_copy(shipped[1]))
    results, pattern_us = {}, {"approximate": [], "exact": []}
    try:
        with threadpool_limits(1):  # one core, as everywhere in this benchmark
            for _ in range(2):  # alternated, so machine drift hits both alike
                for name, (store, benign) in (("approximate", shipped), ("exact", exact)):
                    screener._store, screener._benign = store, benign
                    out = []
                    for i, text in enumerate(texts):
                        prompt = Prompt(f"x{i}", "bench", text, 1_767_225_600.0 + i)
                        out.append(screener.screen(prompt, None, {}))
                    pattern_us[name] += [r.timings_us["pattern"] for r in out]
                    results[name] = out
    finally:
        screener._store, screener._benign = shipped
    approx, truth = results["approximate"], results["exact"]
    flips = sum(a.action != t.action for a, t in zip(approx, truth, strict=True))
    print(
        f"\n| kNN feature, shipped (approximate) vs exact search, {len(texts)} prompts |"
        " mean error | share off by > 0.001 | share off by > 0.05 | p99 error |"
    )
    print("| --- | --- | --- | --- | --- |")
    for key, label in (
        ("pattern.similarity", "attack max-similarity"),
        ("benign.similarity", "benign max-similarity"),
    ):
        err = np.array([t.scores[key] - a.scores[key] for a, t in zip(approx, truth, strict=True)])
        print(
            f"| {label} | {err.mean():.4f} | {np.mean(err > 1e-3):.1%} |"
            f" {np.mean(err > 0.05):.1%} | {np.percentile(err, 99):.3f} |"
        )
    a_us, e_us = np.array(pattern_us["approximate"]), np.array(pattern_us["exact"])
    print(
        f"\ndecisions that differ: {flips} of {len(texts)} ({flips / len(texts):.2%});"
        f" pattern stage median {np.median(a_us):.0f} µs approximate (baseline),"
        f" {np.median(e_us):.0f} µs exact ({np.median(e_us) / np.median(a_us):.2f}x)"
    )


def model_ab_table(screener, texts: list[str], other: str, rounds: int = 3) -> None:
    """The shipped model against the model in directory `other`, alternated in one process."""
    other_screener = build_screener(Settings.from_env({**os.environ, "AIMDS_MODEL_PATH": other}))
    pair = (("shipped", screener), (other, other_screener))
    for _, s in pair:
        run(s, texts[:200])  # warm caches
    rounds_header = " | ".join(f"round {r + 1}" for r in range(rounds))
    print(f"\n| model, {len(texts)} prompts | {rounds_header} |")
    print("| --- |" + " --- |" * rounds)
    cells: dict[str, list[str]] = {name: [] for name, _ in pair}
    for _ in range(rounds):  # alternated, so machine drift hits both alike
        for name, s in pair:
            totals, stages = run(s, texts)
            cells[name].append(f"{np.median(totals):.0f} ({np.median(stages['pattern']):.0f})")
    for name, s in pair:
        print(f"| {s.model_version} ({name}) | " + " | ".join(cells[name]) + " |")
    print("median µs per prompt, pattern stage in brackets")


def warm_floor_table(screener, texts: list[str], calls_n: int = 300) -> None:
    """Each prompt screened twice in a row: how much of its time is cold caches.

    The second screening of the same text (in its own session, so session state matches the
    first) finds the interpreter, the kernels and the pattern graph's neighbourhood warm: it
    is a floor for the Python path as it stands. Also counts the calls one screening makes
    (Python functions, and C functions: builtins, numpy, regex engines, numba dispatch).
    """
    first, again = [], []
    sessions = [screener.new_session(), screener.new_session()]
    for i, text in enumerate(texts):
        for out, session in zip((first, again), sessions, strict=True):
            prompt = Prompt(f"p{i}", "bench", text, 1_767_225_600.0 + i * 7.0)
            t0 = time.perf_counter_ns()
            screener.screen(prompt, session, {"prompts_1m": 1, "blocked_10m": 0})
            out.append((time.perf_counter_ns() - t0) / 1000)
        if i % 50 == 0:
            sessions = [screener.new_session(), screener.new_session()]
    cold, warm = np.array(first), np.array(again)
    print("\n| each prompt screened twice in a row | median µs | p99 µs |")
    print("| --- | --- | --- |")
    for name, times in (
        ("first screening (as in the tables above)", cold),
        ("the same prompt again, at once (warm caches)", warm),
    ):
        print(f"| {name} | {np.median(times):.1f} | {np.percentile(times, 99):.1f} |")
    median_ratio = np.median(cold) / np.median(warm)
    p99_ratio = np.percentile(cold, 99) / np.percentile(warm, 99)
    print(f"| ratio first / again | {median_ratio:.2f}x | {p99_ratio:.2f}x |")

    counts = {"call": 0, "c_call": 0}

    def count(frame, event, arg):  # noqa: ARG001 - the profiler hook's signature
        if event in counts:
            counts[event] += 1

    sample = texts[:calls_n]
    session = screener.new_session()
    sys.setprofile(count)
    try:
        for i, text in enumerate(sample):
            prompt = Prompt(f"c{i}", "bench", text, 1_767_225_600.0 + i * 7.0)
            screener.screen(prompt, session, {"prompts_1m": 1, "blocked_10m": 0})
    finally:
        sys.setprofile(None)
    print(f"\n| calls per screening ({len(sample)} prompts) | Python functions | C functions |")
    print("| --- | --- | --- |")
    print(f"| mean | {counts['call'] / len(sample):.0f} | {counts['c_call'] / len(sample):.0f} |")


def startup_seconds(home: str) -> float:
    code = (
        "import time; t=time.perf_counter();"
        "from app.core import build_screener; from app.settings import Settings;"
        "s=build_screener(Settings.from_env());"
        "print(time.perf_counter()-t)"
    )
    env = dict(os.environ, AIMDS_HOME=home)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/dev")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument(
        "--batches",
        default="8,32",
        help="batch sizes for the throughput table (the agent's AIMDS_SCREEN_BATCH)",
    )
    parser.add_argument(
        "--compare-model",
        metavar="DIR",
        help="also time the model artifacts in DIR against the shipped ones (alternated)",
    )
    args = parser.parse_args()

    texts = sample_texts(Path(args.data), args.n, args.seed)
    screener = build_screener(Settings.from_env())
    baseline = RuleScreener()
    run(screener, texts[:200])  # warm caches
    full, stages = run(screener, texts)
    base, _ = run(baseline, texts)

    def row(name: str, a: np.ndarray, b: np.ndarray | None = None) -> str:
        p50, p99 = np.percentile(a, 50), np.percentile(a, 99)
        ratio = f"{p50 / np.percentile(b, 50):6.1f}x" if b is not None else "      "
        return f"| {name:28} | {len(a):6} | {p50:9.1f} | {p99:9.1f} | {ratio} |"

    label = f"full screener ({Settings.from_env().embedder})"
    print(f"\nScreening latency, one thread, {len(texts)} dev prompts (µs)\n")
    print("| path | n | median | p99 | vs rules-only median |")
    print("| --- | --- | --- | --- | --- |")
    print(row(label, full, base))
    print(row("rules-only baseline", base))
    for k in ("normalize", "rules", "pattern", "temporal", "fusion"):
        if k in stages:
            print(row(f"  stage: {k}", stages[k].astype(float)))
    lengths = np.array([len(t) for t in texts])
    print("\n| length (chars) | n | median | p99 | vs rules-only median |")
    print("| --- | --- | --- | --- | --- |")
    for lo, hi in BUCKETS:
        mask = (lengths >= lo) & (lengths < hi)
        if mask.any():
            print(row(f"{lo}-{hi if hi < 10**9 else '...'}", full[mask], base[mask]))

    rules_warm_up_table(screener, Path(args.data), 1500, args.seed)
    rules_engine_table(screener, Path(args.data), 1000, args.seed)
    knn_exactness_table(screener, texts)
    warm_floor_table(screener, texts)
    if args.compare_model:
        model_ab_table(screener, texts[:2000], args.compare_model)

    one_by_one = run_batched(screener, texts, 1)
    print("\n| screening as the agent batches | prompts/s | µs per prompt | vs one by one |")
    print("| --- | --- | --- | --- |")
    per_prompt = 1e6 * one_by_one / len(texts)
    print(f"| one by one | {len(texts) / one_by_one:,.0f} | {per_prompt:,.0f} | |")
    for size in (int(b) for b in args.batches.split(",") if b):
        seconds = run_batched(screener, texts, size)
        print(
            f"| batches of {size} | {len(texts) / seconds:,.0f} |"
            f" {1e6 * seconds / len(texts):,.0f} | {one_by_one / seconds:.2f}x |"
        )

    if not args.skip_startup:
        with tempfile.TemporaryDirectory() as cold:
            cold_s = startup_seconds(cold)
            warm_s = startup_seconds(cold)
        print("\n| worker start-up (fresh process) | seconds |\n| --- | --- |")
        print(f"| pattern-store cache cold (embed + pynndescent build + numba) | {cold_s:.1f} |")
        print(f"| pattern-store cache warm (load + numba warm-up) | {warm_s:.1f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(lengths, full, s=4, alpha=0.4, label="full screener")
    ax.scatter(lengths, base, s=4, alpha=0.4, label="rules-only baseline")
    ax.axhline(200, ls="--", c="grey", lw=1)
    ax.axhline(1000, ls=":", c="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("prompt length (characters)")
    ax.set_ylabel("µs per prompt")
    ax.set_title("AIMDS screening latency per prompt (one thread)")
    ax.legend()
    fig.tight_layout()
    embedder = Settings.from_env().embedder
    plot = RESULTS / (
        "screen_latency.png" if embedder == "hashing" else f"screen_latency_{embedder}.png"
    )
    fig.savefig(plot, dpi=120)
    print(f"\nplot: {plot}")


if __name__ == "__main__":
    main()
