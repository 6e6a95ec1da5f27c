"""Benchmark of the verification stage: latency per obligation, with and without unknowns/cache.

Run: `.venv/bin/python perf/bench_verify.py [--n 1000] [--data ../shared/data/dev]`

Workloads are built from the dev texts (mixed sources, benign and attack):
- facts extraction alone (µs per text);
- the three-valued evaluator alone over pre-extracted facts (the baseline of the ratio column);
- `Verifier.verify` end to end (extraction + decision) with every score/session fact known;
- the same with the session facts unknown, so Z3 decides, cold (no cache) and with a warm
  in-process proof cache;
- `Z3Prover.decide` alone on those obligations.

Prints a table (p50/p99/mean in µs, and the p50 ratio against the baseline measured in the same
process) and writes perf/results/verify_latency.png. Target: p99 <= 50 ms per obligation with Z3.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

from app.records import Action  # noqa: E402
from app.verification import (  # noqa: E402
    MemoryProofCache,
    RedisProofCache,
    Subject,
    Verifier,
    extract_facts,
    load_policies,
)
from app.verification.logic import eval3  # noqa: E402
from app.verification.z3prover import Z3Prover  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCORES = {"screen.score": 0.5, "pattern.similarity": 0.4, "rules.score": 0.3, "temporal.score": 0.2}
SESSION = {
    "prompts_1m": 4,
    "repeat_near": 0,
    "probing": 0,
    "escalation": 0.2,
    "bot_regularity": 0.3,
    "blocked_recent": 0,
}


def load_texts(data_dir: Path, n: int, seed: int) -> list[str]:
    """A reproducible mixed sample of dev texts (every source represented)."""
    rng = random.Random(seed)
    by_source: dict[str, list[str]] = {}
    for path in sorted(data_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            by_source[path.stem] = [json.loads(line)["text"] for line in fh]
    per_source = max(1, n // max(1, len(by_source)))
    texts: list[str] = []
    for rows in by_source.values():
        texts.extend(rng.sample(rows, min(per_source, len(rows))))
    rng.shuffle(texts)
    return texts[:n]


def timed(label: str, items: Sequence[Any], fn: Callable[[Any], Any]) -> list[float]:
    """Per-item latencies in µs."""
    out: list[float] = []
    for item in tqdm(items, desc=label, leave=False):
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1e6)
    return out


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def redis_rows(policies: Any, unknown: Sequence[Subject]) -> list[tuple[str, list[float]]]:
    """Warm-cache latency through a local redis-server on a free loopback port, if installed."""
    if shutil.which("redis-server") is None:
        print("redis-server not on PATH: Redis rows skipped")
        return []
    import redis

    from app.runtime.local import start_redis

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(data_dir=Path(tmp))
        try:
            client = redis.Redis.from_url(server.url, socket_timeout=1.0)
            with Verifier(policies=policies, cache=RedisProofCache(client)) as verifier:
                for s in unknown:
                    verifier.verify(s)
                warm = timed("verify redis", unknown, verifier.verify)
            return [("verify: unknowns, warm Redis proof cache", warm)]
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="texts per workload")
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/dev"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    policies = load_policies()
    texts = load_texts(args.data, args.n, args.seed)
    known = [Subject(t, (t,), SCORES, (), SESSION, "user") for t in texts]
    unknown = [Subject(t, (t,), SCORES, (), {}, None) for t in texts]

    rows: list[tuple[str, list[float]]] = []
    rows.append(("facts extraction (per text)", timed("extract", known, extract_facts)))

    facts_known = [extract_facts(s).values for s in known]
    facts_unknown = [extract_facts(s).values for s in unknown]

    def three_valued(facts: Any) -> None:
        for policy in policies:
            eval3(policy.when, facts)

    baseline = timed("eval3", facts_known, three_valued)
    rows.append(("three-valued evaluator alone (baseline)", baseline))

    with Verifier(policies=policies) as verifier:
        verifier.verify(known[0])  # warm-up: thread start, first Z3 call
        verifier.verify(unknown[0])
        rows.append(("verify: all facts known", timed("verify known", known, verifier.verify)))
        outcomes_unknown: list[Any] = []

        def verify_unknown(s: Subject) -> None:
            outcomes_unknown.append(verifier.verify(s))

        rows.append(
            ("verify: unknowns, Z3, no cache", timed("verify unknown", unknown, verify_unknown))
        )

    cache = MemoryProofCache()
    with Verifier(policies=policies, cache=cache) as cached:
        for s in unknown:
            cached.verify(s)  # fill the cache
        hits: list[Any] = []

        def verify_cached(s: Subject) -> None:
            hits.append(cached.verify(s))

        rows.append(
            ("verify: unknowns, warm proof cache", timed("verify cached", unknown, verify_cached))
        )

    rows.extend(redis_rows(policies, unknown))

    prover = Z3Prover(policies)
    obligations = []
    for facts in facts_unknown:
        statuses = [(p, eval3(p.when, facts)) for p in policies]
        fired = [p for p, s in statuses if s is True]
        undecided = [p for p, s in statuses if s is None]
        if undecided and not any(p.action is Action.BLOCK for p in fired):
            obligations.append((facts, undecided, fired))
    rows.append(
        (
            "Z3Prover.decide alone",
            timed("z3 decide", obligations, lambda o: prover.decide(*o, 2000)),
        )
    )

    base_p50 = statistics.median(baseline)
    print()
    print(f"verification latency per obligation, {len(texts)} dev texts, {len(policies)} policies")
    print(
        f"{'workload':42s} {'n':>6s} {'p50 µs':>9s} {'p99 µs':>9s} {'mean µs':>9s} {'p50/base':>9s}"
    )
    for label, values in rows:
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(
            f"{label:42s} {len(values):6d} {p50:9.1f} {p99:9.1f} {statistics.fmean(values):9.1f} "
            f"{p50 / base_p50:9.1f}x"
        )
    decided = [o.prover for o in outcomes_unknown]
    print()
    print(
        "provers used with unknown session facts:",
        {p: decided.count(p) for p in sorted(set(decided))},
    )
    print("cache hit rate (warm):", f"{sum(o.cached for o in hits) / max(1, len(hits)):.2%}")
    print("target: p99 <= 50 ms (50000 µs) per obligation with Z3")

    RESULTS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 5))
    labels = [label for label, _ in rows]
    data = [values for _, values in rows]
    try:  # matplotlib >= 3.10 names the orientation, older ones use vert=
        ax.boxplot(data, orientation="horizontal", showfliers=False, whis=(1, 99))
    except TypeError:
        ax.boxplot(data, vert=False, showfliers=False, whis=(1, 99))
    ax.set_yticks(range(1, len(labels) + 1), labels)
    ax.set_xscale("log")
    ax.set_xlabel("latency per item (µs, log scale; whiskers p1-p99)")
    ax.axvline(50_000, color="red", linestyle="--", label="p99 target 50 ms")
    ax.legend(loc="lower right")
    ax.set_title("AIMDS verification latency")
    fig.tight_layout()
    out = RESULTS / "verify_latency.png"
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
