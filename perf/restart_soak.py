"""Restart soak: does every prompt get exactly one outcome when workers are restarted under load?

Starts a local Kafka broker and Redis (`app.runtime.services`, as `aimds broker start`), runs
`aimds worker` as a child process (`--workers N`: N of them in one consumer group), and
repeats a cycle: send `--prompts` prompts, wait a random 0.5-3.0 s while the worker is busy
with them, signal it (`--signal TERM` for a graceful stop, `KILL` for a crash; with several
workers, one in turn, so the others go through a rebalance), start a new worker. At the end
it waits for the backlog, reads `decisions` and `deadletter`, and prints per cycle how many
prompts got no outcome (lost), how many only a dead letter (all prompts sent are valid, so
their decision was lost) and how many more than one outcome.

Two prompts in three are dev texts the shipped model routes to verification (screened here
first), so the verification hop, where the losses were found, is busy at every signal; the
others are gsm8k questions and promptinject attacks. The held-out source is never read.

    .venv/bin/python -m perf.restart_soak [--cycles 20] [--prompts 3000] [--signal TERM]
                                          [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from app.kafka_io import read_topic, send_all
from app.runtime.local import WorkerProcess
from app.runtime.services import start_services
from app.settings import Settings
from topics.faust_topics import ensure_topics

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
RESULTS = Path(__file__).resolve().parent / "results"
BAND_SOURCES = ("awesome_chatgpt_prompts", "spikee_seeds", "verazuo_jailbreak_llms")
OTHER_SOURCES = ("gsm8k_questions", "promptinject")


def texts(source: str) -> list[str]:
    with (DEV / f"{source}.jsonl").open() as fh:
        return [json.loads(line)["text"][:2000] for line in fh]


def verification_bound(candidates: list[str], settings: Settings) -> list[str]:
    """The candidates the shipped model routes to verification (each alone in a session)."""
    from app.core import build_screener
    from app.pipeline import Pipeline
    from app.records import Prompt

    pipeline = Pipeline(screener=build_screener(settings))
    facts = {"prompts_1m": 1, "blocked_10m": 0}
    out = []
    for i, text in enumerate(tqdm(candidates, desc="screening candidates", unit="text")):
        session = pipeline.screener.new_session()
        routed = pipeline.screen(
            Prompt(f"pick-{i}", f"pick-{i}", text, time.time()), session, facts
        )
        if routed.topic == "verification":
            out.append(text)
    return out


def prompt_items(cycle: int, n: int, band: list[str], other: list[str], rng: random.Random):
    now = time.time() - 100
    for i in range(n):
        text = rng.choice(band) if i % 3 else rng.choice(other)
        record = {
            "id": f"c{cycle}-{i}",
            "session_id": f"c{cycle}s{i % 120}",
            "text": text,
            "ts": now + i * 0.01,
        }
        yield record["session_id"].encode(), orjson.dumps(record), None


async def read_all(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [r async for r in read_topic(settings, settings.topic(topic))]


def outcomes(
    settings: Settings, settle_s: float, max_wait_s: float = 600.0
) -> tuple[Counter[str], dict[str, list[tuple[str, str]]], Counter[str]]:
    """Per prompt id: outcomes, and its decisions as (stage, action); per decision stage or
    dead-letter reason: outcomes. Read once `decisions` and `deadletter` stopped growing for
    `settle_s`."""
    deadline, last = time.monotonic() + max_wait_s, -1
    while True:
        count: Counter[str] = Counter()
        decided: dict[str, list[tuple[str, str]]] = {}
        kinds: Counter[str] = Counter()
        for topic in ("decisions", "deadletter"):
            for record in asyncio.run(read_all(settings, topic)):
                pid = str(record.get("prompt_id"))
                count[pid] += 1
                if topic == "decisions":
                    stage = str(record.get("stage"))
                    decided.setdefault(pid, []).append((stage, str(record.get("action"))))
                    kinds[f"decision/{stage}"] += 1
                else:
                    kinds[f"deadletter/{record.get('reason')}"] += 1
        total = sum(count.values())
        if total == last or time.monotonic() > deadline:
            return count, decided, kinds
        last = total
        time.sleep(settle_s)


def repeated_decisions(decided: dict[str, list[tuple[str, str]]]) -> Counter[str]:
    """Prompts with more than one decision, by the stage that decided them and by whether
    the repeats agree on the action (`verify, same action`, `screen, actions differ`...)."""
    kinds: Counter[str] = Counter()
    for found in decided.values():
        if len(found) > 1:
            stages = "/".join(sorted({stage for stage, _ in found}))
            agree = "same action" if len({action for _, action in found}) == 1 else "actions differ"
            kinds[f"{stages}, {agree}"] += 1
    return kinds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=3000, help="prompts sent per cycle")
    ap.add_argument("--signal", choices=("TERM", "KILL"), default="TERM")
    ap.add_argument("--workers", type=int, default=1, help="workers in the group")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settle-s", type=float, default=20.0, help="ends when idle this long")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    base = Settings.from_env({k: v for k, v in os.environ.items() if k == "AIMDS_HOME"})
    candidates = [t for s in BAND_SOURCES for t in texts(s)]
    band = verification_bound(rng.sample(candidates, min(3000, len(candidates))), base)
    other = [t for s in OTHER_SOURCES for t in texts(s)]
    print(f"{len(band)} verification-bound texts, {len(other)} others")

    # the last run's worker logs, replaced by each run (not left in /tmp)
    work = RESULTS / f"restart_soak_logs_{args.signal.lower()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    svc = start_services(home=Path(base.home), kafka_version=base.kafka_version)
    try:
        settings = Settings.from_env(svc.env()).replace(topic_prefix="soak", app_id="soak")
        asyncio.run(ensure_topics(settings))
        env = dict(os.environ) | svc.env() | {"AIMDS_TOPIC_PREFIX": "soak", "AIMDS_APP_ID": "soak"}
        workers = [WorkerProcess(env, work / f"worker-0-{i}.log") for i in range(args.workers)]
        for worker in workers:
            worker.wait_ready()
        sig = getattr(signal, f"SIG{args.signal}")
        for cycle in tqdm(range(1, args.cycles + 1), desc=f"SIG{args.signal} cycles"):
            items = list(prompt_items(cycle, args.prompts, band, other, rng))
            asyncio.run(send_all(settings, items))
            time.sleep(rng.uniform(0.5, 3.0))
            slot = (cycle - 1) % args.workers  # one worker at a time; the others rebalance
            workers[slot].signal(sig)
            workers[slot] = WorkerProcess(env, work / f"worker-{cycle}-{slot}.log")
            workers[slot].wait_ready()
        count, decided, kinds = outcomes(settings, args.settle_s)
        for worker in workers:
            worker.stop()
    finally:
        svc.stop()
    report(count, decided, args, work)
    print("outcomes by kind:", dict(kinds.most_common()))
    print("prompts decided more than once:", dict(repeated_decisions(decided).most_common()))
    return 0


def report(
    count: Counter[str],
    decided: dict[str, list[tuple[str, str]]],
    args: argparse.Namespace,
    work: Path,
) -> None:
    """Per cycle: prompts with no outcome at all (lost), with no decision (only dead letters:
    every prompt sent here is valid, so a dead letter alone means its decision was lost), and
    with more than one outcome."""
    rows = []
    for cycle in range(1, args.cycles + 1):
        ids = [f"c{cycle}-{i}" for i in range(args.prompts)]
        lost = [i for i in ids if count[i] == 0]
        undecided = sum(1 for i in ids if count[i] and i not in decided)
        rows.append((cycle, len(lost), undecided, sum(count[i] > 1 for i in ids), lost[:4]))
    print(
        f"\nSIG{args.signal}, {args.workers} worker(s), {args.prompts} prompts per cycle "
        f"(worker logs in {work})"
    )
    print(f"{'cycle':>5} {'lost':>5} {'no decision':>11} {'duplicated':>10}  first lost ids")
    for cycle, lost, undecided, dup, ids in rows:
        print(f"{cycle:>5} {lost:>5} {undecided:>11} {dup:>10}  {' '.join(ids)}")
    total = args.cycles * args.prompts
    lost_total, dup_total = sum(r[1] for r in rows), sum(r[3] for r in rows)
    print(
        f"total: {total} prompts, {lost_total} lost in {sum(r[1] > 0 for r in rows)} of "
        f"{args.cycles} cycles, {sum(r[2] for r in rows)} with only a dead letter, "
        f"{dup_total} with more than one outcome ({100.0 * dup_total / total:.2f}%)"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"restart_soak_{args.signal.lower()}.json"
    out.write_text(json.dumps({"args": vars(args), "cycles": rows}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
