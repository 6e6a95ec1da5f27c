"""The one way an agent dead-letters a Kafka event: its raw bytes, where it came from, why."""

from __future__ import annotations

from typing import Any

from app.decisions import dead_letter


async def send_dead_letter(out: Any, event: Any, *, stage: str, error: BaseException) -> None:
    """Send `event`'s raw record to the dead-letter topic with its topic/partition/offset."""
    message = event.message
    await out.send(
        "deadletter",
        message.key,
        dead_letter(
            event.value,
            key=message.key,
            stage=stage,
            error=error,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        ),
    )
