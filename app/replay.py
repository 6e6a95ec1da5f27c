"""Replaying historical prompt logs into `aimds.prompts` in timestamp order.

A log is JSONL of prompt records. Records are sent in `ts` order (a stable sort, so each
session keeps its order for equal timestamps), either as fast as possible or with the
original inter-arrival times divided by `speed`. Kafka record timestamps are set to the
prompts' `ts`, so the worker's event-time windows see the original timing. Lines that are not
valid prompts are sent as they are: the worker dead-letters them, nothing is lost.

Resuming: `start` skips the first `start` records of the timestamp order (for a log already in
time order that is its line number); a checkpoint file records how far a replay got.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from app.errors import ParseError
from app.kafka_io import producer
from app.records import parse_timestamp
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line of a prompt log, with the time it is replayed at."""

    line_no: int
    ts: float
    key: bytes | None
    value: bytes


def load_log(path: Path) -> list[LogRecord]:
    """Read a JSONL log and order it by timestamp (stable; bad lines keep their place)."""
    rows: list[LogRecord] = []
    last_ts = 0.0
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            value = line.rstrip(b"\r\n")
            if not value.strip():
                continue
            key = None
            ts = last_ts
            try:
                obj = orjson.loads(value)
                if isinstance(obj, dict):
                    if obj.get("session_id") is not None:
                        key = str(obj["session_id"]).encode()
                    if obj.get("ts") is not None:
                        ts = parse_timestamp(obj["ts"])
            except (orjson.JSONDecodeError, ParseError, TypeError, ValueError):
                pass
            last_ts = ts
            rows.append(LogRecord(line_no, ts, key, value))
    rows.sort(key=lambda r: r.ts)
    return rows


async def replay(
    settings: Settings,
    records: list[LogRecord],
    *,
    speed: float | None,
    start: int = 0,
    checkpoint: Path | None = None,
    on_sent: Callable[[int], None] | None = None,
    sleep: Callable[[float], object] = asyncio.sleep,
) -> int:
    """Send `records[start:]` to the prompts topic; `speed=None` means as fast as possible."""
    topic = settings.topic("prompts")
    todo = records[start:]
    if not todo:
        return 0
    prod = producer(settings)
    await prod.start()
    sent = 0
    try:
        first_ts = todo[0].ts
        began = time.monotonic()
        pending: list[asyncio.Future[object]] = []
        for rec in todo:
            if speed is not None:
                due = (rec.ts - first_ts) / speed
                delay = due - (time.monotonic() - began)
                if delay > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await sleep(delay)  # type: ignore[misc]
            ts_ms = int(rec.ts * 1000) if rec.ts > 0 else None
            pending.append(await prod.send(topic, rec.value, key=rec.key, timestamp_ms=ts_ms))
            sent += 1
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
                _checkpoint(checkpoint, start + sent)
            if on_sent is not None:
                on_sent(1)
        await asyncio.gather(*pending)
        await prod.flush()
        _checkpoint(checkpoint, start + sent)
    finally:
        await prod.stop()
    return sent


def _checkpoint(path: Path | None, position: int) -> None:
    if path is not None:
        path.write_text(f"{position}\n")


def read_checkpoint(path: Path) -> int:
    """The position a previous replay recorded (0 when there is none)."""
    try:
        return int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return 0
