"""Acknowledge a Kafka event only once its outcome is on the broker.

Faust acknowledges an event when the agent asks for the next one, and also when the stream's
iterator is closed, which happens at shutdown to an agent cancelled halfway through an event.
The consumer's last commit can then move past an event that never got its outcome (a review
saw 2 of 16 graceful restarts lose prompts that were being verified). So the agents here
read `stream.noack()` and acknowledge each event themselves through `Acks`, after every record
sent for it has been delivered. An event that is cancelled halfway, or whose outcome the
broker refused, stays unacknowledged: the committed offset stops before it, and the event is
processed again, after a restart or when `app.faust_patches` seeks its partition back to it
(at-least-once; its outcome may then appear twice).

Faust can also hand the same record to an agent twice (after `app.faust_patches` seeks a
partition back to a record it skipped, the records after it come again): `Acks.first_time`
tells the agent to skip a record it has already taken, and acknowledges the second delivery
together with the first.

A record can also come again from the broker, after a restart or a rebalance, when its
outcome was delivered but the commit had not yet moved past it. The agents mark such
records done in a table (`then`, run once the outcome is delivered; the table's changelog
outlives the worker), so the next worker acknowledges them without a second outcome. The mark
is written only after the delivery, so a record is never skipped without its outcome; a
worker that dies between the delivery and the mark's write leaves a duplicate, not a loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: the records sent for one event (their deliveries), or None when no outcome could be sent
Sent = Sequence[Awaitable[Any]] | None

#: what to record once an event's outcome is delivered (the event is then Faust's current one)
Then = Callable[[], None] | None

#: offsets remembered per partition to recognise a second delivery (older ones are dropped)
REMEMBERED_OFFSETS = 50_000


class Acks:
    """Acknowledges events on one stream once what was sent for them is delivered."""

    def __init__(self, stream: Any):
        self._stream = stream
        #: acknowledgements waiting for deliveries (kept referenced until done)
        self._waiting: set[asyncio.Task[None]] = set()
        #: events left unacknowledged because an outcome could not be delivered
        self.withheld = 0
        #: offsets taken per (topic, partition), and second deliveries of those in flight
        self._taken: dict[tuple[str, int], set[int]] = {}
        self._again: dict[tuple[str, int, int], list[Any]] = {}
        #: second deliveries skipped
        self.redelivered = 0
        #: records acknowledged without an outcome, since an earlier worker delivered it
        self.skipped_done = 0

    async def first_time(self, event: Any) -> bool:
        """True the first time this stream is handed the record; False (and the record is
        to be skipped) when it was taken before. A second delivery is acknowledged once the
        first is, since then both are done."""
        message = event.message
        where = (message.topic, message.partition)
        taken = self._taken.setdefault(where, set())
        offset = message.offset
        if offset not in taken:
            taken.add(offset)
            if len(taken) > REMEMBERED_OFFSETS:
                cutoff = max(taken) - REMEMBERED_OFFSETS // 2
                taken.difference_update([o for o in taken if o < cutoff])
            self._again[(*where, offset)] = []
            return True
        self.redelivered += 1
        waiting = self._again.get((*where, offset))
        if waiting is None:  # the first delivery is done
            await self._stream.ack(event)
        else:
            waiting.append(event)
        return False

    async def done_before(self, event: Any) -> None:
        """Acknowledge an event that a table marks done: an earlier worker delivered its
        outcome, and the commit had not moved past it when that worker stopped."""
        self.skipped_done += 1
        if self.skipped_done == 1 or self.skipped_done % 100 == 0:
            message = event.message
            log.info(
                "%s: %d records done before a restart acknowledged without a second outcome "
                "(latest %s@%s)",
                message.topic,
                self.skipped_done,
                message.partition,
                message.offset,
            )
        await self._ack(event)

    async def after(self, event: Any, sent: Sent, then: Then = None) -> None:
        """Acknowledge `event` once every delivery in `sent` has succeeded, after `then()`.

        Delivered already (or nothing to send): acknowledged now. Otherwise a task waits for
        the broker, so the agent goes on with the next event meanwhile; Faust commits only
        the offsets below the first unacknowledged one, in whatever order acks arrive.
        `then` (a table write marking the event done) runs with `event` as Faust's current
        event, so the write lands in the event's window and changelog partition.
        """
        if sent is None:
            self._withhold(event, "no outcome could be sent")
            return
        if all(_delivered(d) for d in sent):
            await self._ack(event, then)
            return
        task = asyncio.ensure_future(self._ack_when_delivered(event, sent, then))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _ack_when_delivered(
        self, event: Any, sent: Sequence[Awaitable[Any]], then: Then
    ) -> None:
        try:
            await asyncio.gather(*sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - withheld and logged, the agent goes on
            self._withhold(event, f"delivery failed: {exc!r}")
            return
        await self._ack(event, then)

    async def _ack(self, event: Any, then: Then = None) -> None:
        message = event.message
        if then is not None:
            # the table reads the current event from a context variable, local to this task
            # when the ack waited for a delivery; the stream's own `current_event` is what
            # Faust's iteration hands the agent next, so it is put back (no await between)
            handed = self._stream.current_event
            self._stream._set_current_event(event)
            try:
                then()
            except Exception:  # noqa: BLE001 - the outcome is out: acknowledge it anyway
                log.exception(
                    "marking %s[%s]@%s done failed: a restart may repeat its outcome",
                    message.topic,
                    message.partition,
                    message.offset,
                )
            finally:
                self._stream.current_event = handed
        again = self._again.pop((message.topic, message.partition, message.offset), [])
        for delivery in (event, *again):
            await self._stream.ack(delivery)

    def _withhold(self, event: Any, why: str) -> None:
        self.withheld += 1
        message = event.message
        # forgotten, so that the record is processed when Faust hands it over again
        self._again.pop((message.topic, message.partition, message.offset), None)
        self._taken.get((message.topic, message.partition), set()).discard(message.offset)
        log.error(
            "%s[%s]@%s not acknowledged (%s): the commit stays below it, and it is processed again",
            message.topic,
            message.partition,
            message.offset,
            why,
        )


class DoneMarks:
    """Records whose outcome was delivered, by partition and offset, in a windowed table.

    The table is windowed by the record's own Kafka time, so a record read again finds its
    mark in the same window, and marks expire with the table's windows.
    """

    def __init__(self, table: Any):
        self._table = table

    @staticmethod
    def _key(event: Any) -> str:
        return f"{event.message.partition}:{event.message.offset}"

    def done(self, event: Any) -> bool:
        """True if an earlier worker delivered this record's outcome (`event` must be
        Faust's current event)."""
        return bool(self._table[self._key(event)].current())

    def marker(self, event: Any) -> Then:
        """The table write that marks `event` done, for `Acks.after`."""
        key = self._key(event)

        def mark() -> None:
            self._table[key] = 1

        return mark


def _delivered(delivery: Awaitable[Any]) -> bool:
    """True for a delivery already known to have succeeded."""
    return (
        isinstance(delivery, asyncio.Future)
        and delivery.done()
        and not delivery.cancelled()
        and delivery.exception() is None
    )
