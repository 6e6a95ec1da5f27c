"""`aimds demo`: the main job end to end on a real broker, for `make run`.

Starts (or reuses) a local Kafka broker and Redis, creates topics under a fresh prefix, starts
an `aimds worker` process, replays the bundled sample of prompts, prints every decision and
dead letter, and stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from app.cli import format_row
from app.kafka_io import read_topic
from app.replay import load_log, replay
from app.runtime.local import stop_pid
from app.runtime.services import load_state, start_services
from app.settings import Settings
from topics.faust_topics import ensure_topics

SAMPLE = "sample_prompts.jsonl"


def sample_path() -> Path:
    """The bundled sample log."""
    return Path(str(resources.files("app").joinpath("data", SAMPLE)))


def run_demo(settings: Settings, *, log: Path | None = None, timeout_s: float = 240.0) -> int:
    """Run the demo; return 0 when every sample line ended in a decision or a dead letter."""
    home = Path(settings.home)
    running = load_state(home)
    svc = running or start_services(
        home=home,
        kafka_version=settings.kafka_version,
        environ={},
        use_docker=False,
        max_message_bytes=settings.max_message_bytes,
    )
    print(
        f"broker: Kafka {svc.kafka_version} ({svc.mode}) at {svc.kafka_url}; "
        f"Redis at {svc.redis_url}",
        flush=True,
    )
    prefix = f"demo-{int(time.time())}"
    demo = settings.replace(
        broker_url=svc.kafka_url, redis_url=svc.redis_url, topic_prefix=prefix, app_id=prefix
    )
    asyncio.run(ensure_topics(demo))
    log = log or home / "run" / f"{prefix}-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ) | {
        "AIMDS_BROKER_URL": demo.broker_url,
        "AIMDS_REDIS_URL": demo.redis_url,
        "AIMDS_TOPIC_PREFIX": prefix,
        "AIMDS_APP_ID": prefix,
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "app.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        print(f"worker: pid {worker.pid}, log {log}", flush=True)
        records = load_log(sample_path())
        sent = asyncio.run(replay(demo, records, speed=None))
        print(f"replayed {sent} sample prompts into {demo.topic('prompts')}\n", flush=True)
        return asyncio.run(_print_results(demo, sent, worker, timeout_s))
    finally:
        stop_pid(worker.pid, timeout=30)
        if running is None:
            svc.stop()
            print("stopped the broker and Redis")


async def _print_results(
    settings: Settings, expected: int, worker: subprocess.Popen[bytes], timeout_s: float
) -> int:
    decisions: list[dict] = []
    dead: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(decisions) + len(dead) < expected and time.monotonic() < deadline:
        if worker.poll() is not None:
            print(f"the worker exited with {worker.returncode}", file=sys.stderr)
            return 1
        decisions = [r async for r in read_topic(settings, settings.topic("decisions"))]
        dead = [r async for r in read_topic(settings, settings.topic("deadletter"))]
        await asyncio.sleep(1.0)
    print(f"{'ACTION':8} {'SCORE':>5} {'STAGE':12} {'SESSION':14} {'PROMPT':18} REASON")
    for rec in sorted(decisions, key=lambda r: r["ts"]):
        print(format_row(rec))
    for rec in dead:
        print(
            f"{'DEAD':8} {'':5} {rec['stage']:12} {'':14} {'offset ' + str(rec['offset']):18} "
            f"{rec['reason']}: {rec['message'][:60]}"
        )
    counts: dict[str, int] = {}
    for rec in decisions:
        counts[rec["action"]] = counts.get(rec["action"], 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(
        f"\n{len(decisions)} decisions ({summary}), {len(dead)} dead letters, "
        f"{expected} prompts sent"
    )
    return 0 if len(decisions) + len(dead) == expected else 1
