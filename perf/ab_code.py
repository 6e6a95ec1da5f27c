"""Screening latency of two versions of the code, alternated round by round.

    git worktree add /tmp/before <commit>      # or any checkout of the older code
    python -m perf.ab_code /tmp/before [--rounds 14] [--n 3000]

Each round screens the same dev prompts once with the older checkout and once with this one
(which goes first alternates), each in a fresh process (both import their own `app/`; the
model is each checkout's own, so compare versions that ship the same model). This machine's
speed drifts by tens of percent over minutes, so the table gives the median of the per-round
ratios of adjacent runs, not a ratio of two far-apart runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from perf.bench_screen import BUCKETS

HERE = Path(__file__).resolve().parents[1]

ROUND = """
import json, sys
sys.path.insert(0, {tree!r})
from pathlib import Path
import numpy as np
from perf.bench_screen import sample_texts, run
from app.core import build_screener
from app.settings import Settings
texts = sample_texts(Path({data!r}), {n}, 0)
screener = build_screener(Settings.from_env())
run(screener, texts[:300])  # warm
full, stages = run(screener, texts)
lengths = np.array([len(t) for t in texts])
out = {{"median": float(np.median(full)), "p99": float(np.percentile(full, 99))}}
out["mean"] = float(np.mean(full))
for name, values in stages.items():
    out[name + " median"] = float(np.median(values))
    out[name + " p99"] = float(np.percentile(values, 99))
for lo, hi in {buckets!r}:
    picked = full[(lengths >= lo) & (lengths < hi)]
    if len(picked):
        out[f"{{lo}}+ chars median"] = float(np.median(picked))
print(json.dumps(out))
"""


def one_round(tree: Path, data: Path, n: int) -> dict[str, float]:
    code = ROUND.format(tree=str(tree), data=str(data), n=n, buckets=BUCKETS)
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tree
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path, help="checkout of the older code")
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--data", type=Path, default=HERE.parent / "shared" / "data" / "dev")
    args = parser.parse_args()
    from tqdm import tqdm

    before: list[dict[str, float]] = []
    after: list[dict[str, float]] = []
    for i in tqdm(range(args.rounds), desc="rounds", unit="round"):
        # which runs first alternates, so a bias of the first run of a pair cancels out
        for tree, results in ((args.before.resolve(), before), (HERE, after))[:: 1 - 2 * (i % 2)]:
            results.append(one_round(tree, args.data, args.n))
    print(f"\n{args.rounds} rounds, before = {args.before}, after = {HERE} (µs)\n")
    print("| measure | before (median of rounds) | after | after / before (median of pairs) |")
    print("| --- | --- | --- | --- |")
    for key in before[0]:
        if key not in after[0]:
            continue
        a = np.array([r[key] for r in before])
        b = np.array([r[key] for r in after])
        ratio = np.median(b / np.maximum(a, 1e-9))
        print(f"| {key} | {np.median(a):,.0f} | {np.median(b):,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
