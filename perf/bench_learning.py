"""Stage 6 learning curve: recall on an unseen attack family after n confirmed examples.

    python -m perf.bench_learning [--model build/dev-model] [--shots 0 5 10 25 50 100]

The model must not have seen the families: `build/dev-model` is the development model of
`make eval-dev` (trained without promptshield, spikee_seeds, promptinject and WildGuard's
benign prompts). For each family and repeat, its attacks are shuffled; the first `max(shots)`
are the feedback pool, the rest the test set. n attacks of the pool go through the real
stage 6 path (Learner with the benign guard, Ed25519 signature, PatternFollower into the
live store), then the test set and a fixed benign set run through the full pipeline
(`LocalScanner`, verification included). The learned patterns are retracted (signed)
before the next condition, and the store's version is checked to be back where it started.
n = 0 is the baseline, run in the same process. promptshield is not used.

Writes perf/results/learning_curve.txt (the printed tables) and learning_curve.png.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from app.core import build_pipeline
from app.errors import FeedbackRefused
from app.eval_sets import trigger_word_benign
from app.evaluation import LabelledPrompt, evaluate, read_labelled
from app.learning import (
    Learner,
    PatternFollower,
    PatternSigner,
    UpdateVerifier,
    generate_key_pair,
)
from app.pipeline import LocalScanner
from app.records import Feedback
from app.settings import Settings

RESULTS = Path(__file__).with_name("results")
FAMILIES = ("spikee_seeds", "promptinject")
BENIGN = ("injecguard_wildguard_benign", "spikee_seeds", "promptinject")


def learn(
    learner: Learner, follower: PatternFollower, rows: list[LabelledPrompt]
) -> tuple[list[str], int]:
    """Teach `rows` as analyst feedback; return the texts learned and the refusals."""
    learned: list[str] = []
    refused = 0
    for i, row in enumerate(rows):
        try:
            outcome = learner.learn(Feedback(f"fb-{i}", "attack", row.text, "bench", 1.7e9 + i))
        except FeedbackRefused:
            refused += 1
            continue
        key = outcome.pattern_id.encode()
        if follower.apply(key, orjson.dumps(outcome.record)) == "added":
            learned.append(row.text)
    return learned, refused


def retract(learner: Learner, follower: PatternFollower, texts: list[str]) -> None:
    """Retract learned texts the way an analyst does: a `benign` label, a signed retraction."""
    for i, text in enumerate(texts):
        outcome = learner.learn(Feedback(f"rt-{i}", "benign", text, "bench", 1.7e9 + i))
        assert outcome is not None
        follower.apply(outcome.pattern_id.encode(), orjson.dumps(outcome.record))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="build/dev-model")
    parser.add_argument("--data", default="../shared/data/dev")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 5, 10, 25, 50, 100])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    model, data = Path(args.model), Path(args.data)
    if not (model / "fusion.json").exists():
        print(
            f"no model in {model}: run `make eval-dev` (or `aimds train ... --holdout promptshield"
            " spikee_seeds promptinject injecguard_wildguard_benign --out build/dev-model`)",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env({}).replace(model_path=str(model), redis_url="")
    pipeline = build_pipeline(settings, use_redis=False)
    screener = pipeline.screener
    store = screener.pattern_store
    signer = PatternSigner.from_file(generate_key_pair(tempfile.mkdtemp())[0])
    learner = Learner(
        signer,
        benign_similarity=screener.benign_similarity,
        canonical=lambda text: screener.views(text)[0],  # as the worker's learner
        # the curve learns 1,140 patterns in minutes: the worker's hourly limit would refuse
        # the last of them (it did, in the first run with the limit)
        max_per_hour=None,
    )
    follower = PatternFollower(store, UpdateVerifier([signer.public_key]), rebuild_after=10**6)
    benign = [r for s in BENIGN for r in read_labelled(data / f"{s}.jsonl") if r.label == 0]
    benign += trigger_word_benign(300)
    pool_size = max(args.shots)
    start_version = store.version
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    out(f"model {screener.model_version} ({model}); benign set {len(benign)} prompts")
    out("\n| family | n learned | refused | recall (mean, min–max of repeats) | FPR | p50 µs |")
    out("| --- | --- | --- | --- | --- | --- |")
    curves: dict[str, dict[int, list[float]]] = {}
    for family in FAMILIES:
        attacks = [r for r in read_labelled(data / f"{family}.jsonl") if r.label == 1]
        per_n: dict[int, list[tuple[float, float, int, float]]] = {n: [] for n in args.shots}
        for repeat in range(args.repeats):
            order = attacks[:]
            random.Random(repeat).shuffle(order)
            pool, test = order[:pool_size], order[pool_size:]
            for n in args.shots:
                learned, refused = learn(learner, follower, pool[:n])
                report = evaluate(
                    f"{family} n={n}",
                    LocalScanner(pipeline),
                    test + benign,
                    progress=False,
                )
                per_n[n].append((report.recall, report.fpr, refused, report.latency_us()[0]))
                # retract what was learned: the next condition starts clean
                retract(learner, follower, learned)
                if store.version != start_version:
                    raise RuntimeError("the store did not return to its starting version")
        curves[family] = {n: [r[0] for r in rs] for n, rs in per_n.items()}
        for n, rs in per_n.items():
            recalls = [r[0] for r in rs]
            out(
                f"| {family} ({len(attacks) - pool_size} test attacks) | {n} |"
                f" {statistics.mean(r[2] for r in rs):.1f} |"
                f" {100 * statistics.mean(recalls):.1f}% ({100 * min(recalls):.1f}–"
                f"{100 * max(recalls):.1f}) | {100 * statistics.mean(r[1] for r in rs):.2f}% |"
                f" {statistics.mean(r[3] for r in rs):.0f} |"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learning_curve.txt").write_text(
        f"# python -m perf.bench_learning ({time.strftime('%Y-%m-%d')})\n" + "\n".join(lines) + "\n"
    )
    plot(curves, RESULTS / "learning_curve.png")
    return 0


def plot(curves: dict[str, dict[int, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for family, by_n in curves.items():
        ns = sorted(by_n)
        mean = [100 * float(np.mean(by_n[n])) for n in ns]
        low = [100 * min(by_n[n]) for n in ns]
        high = [100 * max(by_n[n]) for n in ns]
        ax.plot(ns, mean, marker="o", label=family)
        ax.fill_between(ns, low, high, alpha=0.2)
    ax.set_xlabel("confirmed attacks learned from the family")
    ax.set_ylabel("recall on the family's other attacks (%)")
    ax.set_title("Stage 6: learning from confirmed attacks (dev model)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
