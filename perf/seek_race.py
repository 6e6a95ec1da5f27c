"""Seeks from the wrong thread: aiokafka's fetcher KeyError that stopped workers, and the fix.

    python -m perf.seek_race [--runs 3] [--seconds 30]

Faust runs its aiokafka consumer in a thread with its own event loop. faust-streaming 0.15's
`ThreadDelegateConsumer._seek` calls aiokafka's `seek` from the caller's thread, and that
deletes the partition's fetched batch from a dict the consumer thread may be iterating:
`fetched_records` raises `KeyError(TopicPartition)` (robinhood/aiokafka#19). `app.faust_patches`
runs seeks on the consumer's thread instead. This starts the local broker (as the tests do),
fills 8 partitions, drains them on a consumer loop in its own thread, and seeks one partition
back every 0.5 ms from the main thread, either directly (Faust's way) or by handing the seek
to the consumer's loop (the patch's way). It prints the KeyErrors per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.runtime.services import start_services
from app.settings import Settings

PARTITIONS = 8
RECORDS = 40_000


async def fill(url: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=5)
    await producer.start()
    try:
        for i in range(RECORDS):
            await producer.send(topic, b"x" * 200, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


def one_run(url: str, on_consumer_loop: bool, seconds: float) -> tuple[int, int, int]:
    """(seeks, records drained, KeyErrors) of one run on a fresh topic."""
    topic = f"seek-race-{uuid.uuid4().hex[:8]}"
    asyncio.run(fill(url, topic))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
    stop = threading.Event()
    errors: list[KeyError] = []
    drained = [0]

    async def start() -> AIOKafkaConsumer:
        # small fetches: many batches in flight, as under a backlog
        consumer = AIOKafkaConsumer(
            bootstrap_servers=url,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4096,
            fetch_max_bytes=32768,
        )
        await consumer.start()
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        return consumer

    consumer = asyncio.run_coroutine_threadsafe(start(), loop).result(30)

    async def drain() -> None:  # what Faust's fetcher does, via aiokafka's fetcher
        while not stop.is_set():
            try:
                got = await consumer._fetcher.fetched_records(tps, timeout=0.05, max_records=50)
                drained[0] += sum(len(v) for v in got.values())
            except KeyError as exc:
                errors.append(exc)

    async def seek_on_loop(tp: TopicPartition) -> None:
        consumer.seek(tp, 0)

    draining = asyncio.run_coroutine_threadsafe(drain(), loop)
    seeks = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:  # bounded by time
            tp = tps[seeks % PARTITIONS]
            if on_consumer_loop:
                asyncio.run_coroutine_threadsafe(seek_on_loop(tp), loop).result(5)
            else:
                consumer.seek(tp, 0)
            seeks += 1
            time.sleep(0.0005)
    finally:
        stop.set()
        draining.result(10)
        asyncio.run_coroutine_threadsafe(consumer.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return seeks, drained[0], len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    settings = Settings.from_env(
        {k: v for k, v in os.environ.items() if k in ("AIMDS_HOME", "AIMDS_KAFKA_VERSION")}
    )
    services = start_services(home=Path(settings.home), kafka_version=settings.kafka_version)
    rows = []
    try:
        url = services.kafka_url.removeprefix("kafka://")
        for run in range(1, args.runs + 1):
            for on_loop in (False, True):
                seeks, drained, errors = one_run(url, on_loop, args.seconds)
                rows.append((run, on_loop, seeks, drained, errors))
    finally:
        services.stop()
    print(f"\nseeks while the consumer thread drains 8 partitions, {args.seconds:g} s per run\n")
    print("| run | seek called | seeks | records drained | fetcher KeyErrors |")
    print("| --- | --- | --- | --- | --- |")
    for run, on_loop, seeks, drained, errors in rows:
        how = "on the consumer's loop (patch)" if on_loop else "from another thread (Faust)"
        print(f"| {run} | {how} | {seeks:,} | {drained:,} | {errors} |")
    for on_loop in (False, True):
        picked = [r for r in rows if r[1] == on_loop]
        print(
            f"total {'patch' if on_loop else 'faust'}: {sum(r[4] for r in picked)} KeyErrors "
            f"in {sum(r[2] for r in picked):,} seeks"
        )


if __name__ == "__main__":
    main()
