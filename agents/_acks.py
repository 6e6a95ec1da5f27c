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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: the records sent for one event (their deliveries), or None when no outcome could be sent
Sent = Sequence[Awaitable[Any]] | None

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

    async def after(self, event: Any, sent: Sent) -> None:
        """Acknowledge `event` once every delivery in `sent` has succeeded.

        Delivered already (or nothing to send): acknowledged now. Otherwise a task waits for
        the broker, so the agent goes on with the next event meanwhile; Faust commits only
        the offsets below the first unacknowledged one, in whatever order acks arrive.
        """
        if sent is None:
            self._withhold(event, "no outcome could be sent")
            return
        if all(_delivered(d) for d in sent):
            await self._ack(event)
            return
        task = asyncio.ensure_future(self._ack_when_delivered(event, sent))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _ack_when_delivered(self, event: Any, sent: Sequence[Awaitable[Any]]) -> None:
        try:
            await asyncio.gather(*sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - withheld and logged, the agent goes on
            self._withhold(event, f"delivery failed: {exc!r}")
            return
        await self._ack(event)

    async def _ack(self, event: Any) -> None:
        message = event.message
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


def _delivered(delivery: Awaitable[Any]) -> bool:
    """True for a delivery already known to have succeeded."""
    return (
        isinstance(delivery, asyncio.Future)
        and delivery.done()
        and not delivery.cancelled()
        and delivery.exception() is None
    )
