"""Every AIMDS benchmark in one command: `python -m perf.run_all [--full]` (or `make bench`).

Each benchmark prints its own tables (with a baseline run in the same process) and writes its
plots to perf/results/. The default sizes finish in about 20 minutes on 2 cores; `--full`
adds the 100k-pattern index runs with both embedders, the semantic embedders' speed, the
learning curve of stage 6 (after `make eval-dev`), the restart soak (20 graceful worker
restarts under load on a local broker, `make soak`) and the seek race (aiokafka's fetcher
KeyError with seeks from the wrong thread, and with the patch's seeks).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

QUICK = [
    ["perf.bench_screen", "--n", "2000"],
    ["perf.bench_normalize", "--per-file", "500", "--repeat", "2"],
    ["perf.bench_recovery", "--attacks", "600", "--benign-limit", "5000"],
    ["perf.bench_temporal", "--events", "20000"],
    ["perf.bench_embedders", "--speed", "--embedders", "hashing", "--per-bucket", "100"],
    ["perf.bench_index", "--quick", "--embedder", "hashing"],
    ["perf.bench_verify", "--n", "500"],
    ["perf.bench_rebuild"],
    ["perf.fuzz_screen"],
]
FULL = [
    ["perf.bench_index", "--embedder", "hashing"],
    ["perf.bench_index", "--embedder", "use"],
    ["perf.bench_index", "--embedder", "static"],
    ["perf.bench_embedders", "--speed"],
    # needs build/dev-model (`make eval-dev`): the stage 6 learning curve
    ["perf.bench_learning"],
    ["perf.restart_soak", "--cycles", "20"],
    ["perf.seek_race"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also the 100k index and semantic runs")
    args = parser.parse_args()
    failures = []
    for argv in QUICK + (FULL if args.full else []):
        started = time.monotonic()
        print(f"\n{'=' * 100}\n$ python -m {' '.join(argv)}\n{'=' * 100}", flush=True)
        code = subprocess.call([sys.executable, "-m", *argv])
        print(
            f"-- {argv[0]} finished in {time.monotonic() - started:.0f}s (exit {code})", flush=True
        )
        if code:
            failures.append(argv[0])
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
