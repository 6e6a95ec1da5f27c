"""The one way an agent dead-letters a Kafka event: its raw bytes, where it came from, why;
and the per-event loop of agents whose records stand alone (acknowledged by `Acks`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agents._acks import Acks, DoneMarks, Sent
from app.decisions import dead_letter, dead_letter_raw_budget
from app.errors import ParseError

log = logging.getLogger(__name__)


async def send_dead_letter(
    out: Any, event: Any, *, stage: str, error: BaseException, max_message_bytes: int
) -> Sent:
    """Send `event`'s raw record to the dead-letter topic with its topic/partition/offset.

    A record too large to carry whole keeps its head (`raw_truncated`). If the dead letter
    still cannot be sent, one without the raw bytes is tried, and a failure of that is
    logged: the agent goes on either way. Returns the dead letter's delivery, or None when
    none could be sent (the event is then left unacknowledged).
    """
    message = event.message
    where = {
        "key": message.key,
        "stage": stage,
        "error": error,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
    }
    # the record's head within the topic's limit; failing that, no raw bytes at all
    for keep in (dead_letter_raw_budget(max_message_bytes), 0):
        try:
            delivery = await out.send(
                "deadletter", message.key, dead_letter(event.value, **where, max_raw_bytes=keep)
            )
            return [delivery]
        except Exception:  # noqa: BLE001 - the next, smaller dead letter is the fallback
            log.exception(
                "dead-lettering %s[%s]@%s (keeping %d raw bytes) failed",
                message.topic,
                message.partition,
                message.offset,
                keep,
            )
    log.critical(
        "could not dead-letter %s[%s]@%s at all", message.topic, message.partition, message.offset
    )
    return None


async def handle_each(
    stream: Any,
    handle: Callable[[Any], Awaitable[Sent]],
    *,
    out: Any,
    stage: str,
    log: logging.Logger,
    max_message_bytes: int,
    marks: DoneMarks | None = None,
) -> None:
    """`handle` every event of `stream`; a failure is dead-lettered and the loop goes on.

    `handle` returns the deliveries of what it sent; the event is acknowledged once they
    (or its dead letter) are on the broker, and then marked done in `marks`, if given: a
    record marked done is acknowledged without being handled again when it comes back after
    a restart or a rebalance. Bad input (`ParseError`) is expected and not logged as an
    error; anything else is.
    """
    acks = Acks(stream)
    async for event in stream.noack().events():
        if not await acks.first_time(event):
            continue  # handed over again by Faust: processed (or in progress) already
        then = None
        if marks is not None:
            stream._set_current_event(event)  # the marks' windows go by the event's time
            if marks.done(event):
                await acks.done_before(event)
                continue
            then = marks.marker(event)
        try:
            sent = await handle(event)
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the agent
            if not isinstance(exc, ParseError):
                message = event.message
                log.exception(
                    "%s: %s[%s]@%s failed", stage, message.topic, message.partition, message.offset
                )
            sent = await send_dead_letter(
                out, event, stage=stage, error=exc, max_message_bytes=max_message_bytes
            )
        await acks.after(event, sent, then)
