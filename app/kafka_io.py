"""Producing prompts and reading decisions with aiokafka (the CLI's and tests' client side)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from app.errors import BrokerError, ParseError
from app.records import open_input, parse_timestamp
from app.settings import Settings

log = logging.getLogger(__name__)


def producer(settings: Settings) -> AIOKafkaProducer:
    """A producer sized for AIMDS records (large prompts allowed up to the broker limit)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        max_request_size=settings.max_message_bytes,
        acks="all",
        linger_ms=5,
        enable_idempotence=True,
    )


def prompt_records(
    lines: Iterable[str], *, session: str | None = None, clock: Any = time.time
) -> Iterator[dict[str, Any]]:
    """Turn input lines into prompt records.

    A line that is a JSON object is taken as a prompt record (missing `id`, `session_id`
    and `ts` are filled in); any other non-empty line is the text of a new prompt.
    """
    for line_no, line in enumerate(lines, start=1):
        stripped = line.rstrip("\n")
        if not stripped.strip():
            continue
        record: dict[str, Any]
        if stripped.lstrip().startswith("{"):
            try:
                parsed = orjson.loads(stripped)
            except orjson.JSONDecodeError as exc:
                # a JSONL line with a typo: still sent (nothing is lost), but not silently
                log.warning(
                    "line %d is not a JSON record (%s): sent as a prompt's text", line_no, exc
                )
                parsed = None
            record = parsed if isinstance(parsed, dict) else {"text": stripped}
        else:
            record = {"text": stripped}
        record.setdefault("id", uuid.uuid4().hex)
        record.setdefault("session_id", session or "cli")
        record.setdefault("ts", clock())
        if session is not None:
            record["session_id"] = session
        yield record


def record_key(record: dict[str, Any]) -> bytes | None:
    """The Kafka key of a prompt record: its session id."""
    sid = record.get("session_id")
    return str(sid).encode() if sid is not None else None


def record_timestamp_ms(record: dict[str, Any]) -> int | None:
    """The Kafka timestamp of a prompt record: its `ts` (event time), numeric or ISO-8601.

    None (the broker's time) for a `ts` no Kafka timestamp can hold: the worker dead-letters
    such a record, and the producer must not fail on it.
    """
    ts = record.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float | str):
        return None
    try:  # the worker's reading of `ts` (seconds or milliseconds, ISO-8601)
        ms = round(parse_timestamp(ts) * 1000.0)
    except (ParseError, OverflowError):
        return None
    return ms if 0 < ms < 1e16 else None


async def send_all(
    settings: Settings,
    items: Iterable[tuple[bytes | None, bytes, int | None]],
    *,
    topic: str | None = None,
    on_sent: Any = None,
) -> int:
    """Produce (key, value, timestamp_ms) items to `topic` (default: prompts), in order."""
    topic = topic or settings.topic("prompts")
    prod = producer(settings)
    await prod.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value, ts_ms in items:
            pending.append(await prod.send(topic, value, key=key, timestamp_ms=ts_ms))
            sent += 1
            if on_sent is not None:
                on_sent(sent)
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await prod.flush()
    finally:
        await prod.stop()
    return sent


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    expect: int | None = None,
    timeout_s: float | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield JSON records of `topic` (all partitions, no consumer group; a tombstone is `{}`).

    Without `follow`, stops once caught up with the end offsets seen at start. With
    `expect`, keeps reading until that many records arrived (or `timeout_s` passes).
    """
    messages = read_messages(
        settings,
        topic,
        from_beginning=from_beginning,
        follow=follow,
        expect=expect,
        timeout_s=timeout_s,
    )
    try:
        async for msg in messages:
            yield orjson.loads(msg.value) if msg.value is not None else {}
    finally:
        await messages.aclose()


async def read_messages(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    expect: int | None = None,
    timeout_s: float | None = None,
) -> AsyncGenerator[Any, None]:
    """Yield the raw messages (aiokafka `ConsumerRecord`s) of `topic`; see `read_topic`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=settings.max_message_bytes * 2,
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    try:
        partitions = await _partitions(settings, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end = await consumer.end_offsets(tps)
        seen = 0
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for _tp, messages in batch.items():
                for msg in messages:
                    seen += 1
                    yield msg
            if expect is not None:
                if seen >= expect:
                    return
                continue
            if not follow:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= end[tp] for tp in tps):
                    return
    finally:
        await consumer.stop()


async def _partitions(settings: Settings, topic: str, wait_s: float = 30.0) -> list[int]:
    """Partition ids of `topic`, waiting briefly for a topic that is being created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            described = await admin.describe_topics([topic])
            parts = [p["partition"] for d in described for p in d.get("partitions", [])]
            if parts and described[0].get("error_code", 0) == 0:
                return sorted(parts)
            if time.monotonic() > deadline:
                raise LookupError(f"topic {topic} does not exist")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def open_lines(path: str) -> IO[Any]:
    """Open a text file for reading, or stdin for `-`."""
    import sys

    if path == "-":
        return sys.stdin
    return open_input(path)
