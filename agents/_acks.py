"""Acknowledge a Kafka event only once its outcome is on the broker.

Faust acknowledges an event when the agent asks for the next one, and also when the stream's
iterator is closed, which happens at shutdown to an agent cancelled halfway through an event.
The consumer's last commit can then move past an event that never got its outcome (a review
saw 1 of 16 graceful restarts lose 4 prompts that were being verified). So the agents here
read `stream.noack()` and acknowledge each event themselves through `Acks`, after every record
sent for it has been delivered. An event that is cancelled halfway, or whose outcome the
broker refused, stays unacknowledged: the committed offset stops before it and the event is
processed again after a restart (at-least-once; its outcome may then appear twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: the records sent for one event (their deliveries), or None when no outcome could be sent
Sent = Sequence[Awaitable[Any]] | None


class Acks:
    """Acknowledges events on one stream once what was sent for them is delivered."""

    def __init__(self, stream: Any):
        self._stream = stream
        #: acknowledgements waiting for deliveries (kept referenced until done)
        self._waiting: set[asyncio.Task[None]] = set()
        #: events left unacknowledged because an outcome could not be delivered
        self.withheld = 0

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
            await self._stream.ack(event)
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
        await self._stream.ack(event)

    def _withhold(self, event: Any, why: str) -> None:
        self.withheld += 1
        message = event.message
        log.error(
            "%s[%s]@%s not acknowledged (%s): it is processed again after a restart",
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
