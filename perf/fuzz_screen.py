"""Fuzz the screener with odd text and print what it cost (`python -m perf.fuzz_screen`).

Screens random odd prompts (`tests.badinput.odd_text`: attack words, markup, invisible and
look-alike characters, any code point including surrogates, encoded layers nested 3 deep)
and long ones (an odd unit repeated to 20k and 200k characters, the worker's limit), and
counts the results that failed closed with a detector error: each is a bug, since odd input
should get a decision like any other. The baseline is the same screener on dev prompts of
the same lengths, in the same process. Writes perf/results/fuzz_screen.txt and
perf/results/fuzz_latency.png; exits 1 if any prompt failed closed.

    python -m perf.fuzz_screen [--n 5000] [--long 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from app.core import build_screener  # noqa: E402
from app.records import Prompt  # noqa: E402
from app.settings import Settings  # noqa: E402
from perf.bench_screen import BUCKETS, sample_texts  # noqa: E402
from tests.badinput import MAX_TEXT_CHARS, odd_text  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
RESULTS = Path(__file__).resolve().parent / "results"
LONG_SIZES = (20_000, MAX_TEXT_CHARS)


def long_text(rng: random.Random, size: int) -> str:
    """An odd unit repeated (with odd pieces between) up to `size` characters."""
    unit = odd_text(rng, rng.randrange(3, 30))
    parts: list[str] = []
    length = 0
    while length < size:
        parts.append(unit if rng.random() < 0.7 else odd_text(rng, 5))
        length += len(parts[-1])
    return "".join(parts)[:size]


def screen_all(screener, texts: list[str], desc: str) -> tuple[np.ndarray, list[str]]:
    """Latency (µs) of each text, and the reasons of the results that failed closed."""
    errors: list[str] = []
    latencies = []
    session = screener.new_session()
    for i, text in enumerate(tqdm(texts, desc=desc, unit="prompt")):
        prompt = Prompt(f"{desc}-{i}", "fuzz", text, 1_767_225_600.0 + i * 7.0)
        started = time.perf_counter_ns()
        result = screener.screen(prompt, session, {"prompts_1m": 1, "blocked_10m": 0})
        latencies.append((time.perf_counter_ns() - started) / 1000)
        if result.stage == "error":  # "detector failed, failing closed: <exception>"
            errors.append(result.reasons[0])
        if i % 50 == 0:
            session = screener.new_session()
    return np.array(latencies), errors


def table(fuzz: list[str], fuzz_us: np.ndarray, dev: list[str], dev_us: np.ndarray) -> list[str]:
    lines = [
        "| length (chars) | fuzzed n | median length | median µs | p99 µs | max µs "
        "| dev n | dev median length | dev median µs | fuzzed / dev median |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    f_len = np.array([len(t) for t in fuzz])
    d_len = np.array([len(t) for t in dev])
    for lo, hi in (*BUCKETS[:-1], (BUCKETS[-1][0], 50_000), (50_000, 10**9)):
        f, d = (f_len >= lo) & (f_len < hi), (d_len >= lo) & (d_len < hi)
        if not f.any():
            continue
        us = fuzz_us[f]
        dev_median = f"{np.median(dev_us[d]):.0f}" if d.any() else "-"
        dev_length = f"{np.median(d_len[d]):.0f}" if d.any() else "-"
        ratio = f"{np.median(us) / np.median(dev_us[d]):.2f}x" if d.any() else "-"
        label = f"{lo}-{hi if hi < 10**9 else '...'}"
        lines.append(
            f"| {label} | {f.sum()} | {np.median(f_len[f]):.0f} | {np.median(us):.0f} "
            f"| {np.percentile(us, 99):.0f} | {us.max():.0f} | {d.sum()} | {dev_length} "
            f"| {dev_median} | {ratio} |"
        )
    return lines


def plot(fuzz: list[str], fuzz_us: np.ndarray, dev: list[str], dev_us: np.ndarray) -> Path:
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.scatter([max(1, len(t)) for t in dev], dev_us, s=4, alpha=0.3, label="dev prompts")
    ax.scatter([max(1, len(t)) for t in fuzz], fuzz_us, s=4, alpha=0.3, label="fuzzed prompts")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("prompt length (characters)")
    ax.set_ylabel("screening latency (µs)")
    ax.set_title("Screening odd text against dev prompts (one thread)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", markerscale=4)
    fig.tight_layout()
    path = RESULTS / "fuzz_latency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="short odd prompts")
    parser.add_argument("--long", type=int, default=10, help="long odd prompts of each size")
    parser.add_argument("--dev", type=int, default=2000, help="dev prompts (the baseline)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    fuzz = [odd_text(rng) for _ in range(args.n)]
    fuzz += [long_text(rng, size) for size in LONG_SIZES for _ in range(args.long)]
    dev = sample_texts(args.data_dir, args.dev, args.seed)
    screener = build_screener(Settings())
    screen_all(screener, dev[:200], "warm-up")
    dev_us, dev_errors = screen_all(screener, dev, "dev")
    fuzz_us, fuzz_errors = screen_all(screener, fuzz, "fuzzed")

    lines = [
        f"Screening {len(fuzz)} odd prompts (seed {args.seed}) against {len(dev)} dev prompts, "
        "one thread",
        "",
        *table(fuzz, fuzz_us, dev, dev_us),
        "",
        f"failed closed with a detector error: fuzzed {len(fuzz_errors)} of {len(fuzz)}, "
        f"dev {len(dev_errors)} of {len(dev)}",
        *(f"  {e}" for e in sorted(set(fuzz_errors + dev_errors))[:10]),
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz_screen.txt").write_text(report + "\n", encoding="utf-8")
    print(f"\nplot: {plot(fuzz, fuzz_us, dev, dev_us)}")
    return 1 if fuzz_errors or dev_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
