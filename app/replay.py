"""Replaying historical prompt logs into `aimds.prompts` in timestamp order.

A log is JSONL of prompt records. Records are sent in `ts` order (a stable sort, so each
session keeps its order for equal timestamps), either as fast as possible or with the
original inter-arrival times divided by `speed`. Kafka record timestamps are set to the
prompts' `ts`, so the worker's event-time windows see the original timing. Lines that are not
valid prompts are sent as they are: the worker dead-letters them, nothing is lost. A line
without a usable `ts` (none, unparsable, or past what a Kafka timestamp holds) keeps the
previous line's place in the order and is sent with the broker's time; a line stamped past
the worker's clock skew is sent without waiting for its time (the worker refuses it anyway).

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

from app.errors import ConfigError
from app.kafka_io import producer, record_timestamp_ms
from app.records import open_input
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line of a prompt log, with the time it is replayed at."""

    line_no: int
    ts: float  # seconds: the replay order and pacing
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None  # the Kafka record time (None: the broker's)


def load_log(path: Path) -> list[LogRecord]:
    """Read a JSONL log and order it by timestamp (stable; bad lines keep their place)."""
    rows: list[LogRecord] = []
    last_ts = 0.0
    with open_input(path, binary=True) as fh:
        for line_no, line in enumerate(fh, start=1):
            value = line.rstrip(b"\r\n")
            if not value.strip():
                continue
            key = None
            ts, ts_ms = last_ts, None
            try:
                obj = orjson.loads(value)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                if obj.get("session_id") is not None:
                    key = str(obj["session_id"]).encode("utf-8", "surrogatepass")
                ts_ms = record_timestamp_ms(obj)
                if ts_ms is not None:
                    ts = ts_ms / 1000.0
            last_ts = ts
            rows.append(LogRecord(line_no, ts, key, value, ts_ms))
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
    horizon = time.time() + settings.max_clock_skew_s  # later lines are dead-lettered anyway
    try:
        first_ts = todo[0].ts
        began = time.monotonic()
        pending: list[asyncio.Future[object]] = []
        for rec in todo:
            if speed is not None and rec.ts <= horizon:
                due = (rec.ts - first_ts) / speed
                delay = due - (time.monotonic() - began)
                if delay > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await sleep(delay)  # type: ignore[misc]
            pending.append(
                await prod.send(topic, rec.value, key=rec.key, timestamp_ms=rec.timestamp_ms)
            )
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
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    if not text:
        return 0
    if not text.isdigit():
        raise ConfigError(
            f"checkpoint {path} holds {text[:40]!r}, not a position: fix it or pass --start"
        )
    return int(text)
