"""Agent tests: the real agents on a Faust app with in-memory tables, outputs recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from app.faust_app import AimdsApp, create_app
from app.pipeline import Pipeline
from app.screening import RuleScreener
from app.settings import Settings


def delivered() -> asyncio.Future[None]:
    """A delivery the broker has already acknowledged."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class RecordingOutputs:
    """A real, small stand-in for the Kafka topics: keeps what agents send, per topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, dict[str, Any] | None]]] = {}

    async def send(
        self, topic: str, key: bytes | None, record: dict[str, Any] | None
    ) -> asyncio.Future[None]:
        self.sent.setdefault(topic, []).append((key, record))
        return delivered()  # kept, so delivered

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [r for _, r in self.sent.get(topic, []) if r is not None]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait until `count` records were sent in all: `put` returns once the agent has
        taken the event, not once it has finished with it (the verify agent awaits a thread)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while sum(len(v) for v in self.sent.values()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"only {self.sent} after {timeout_s}s")
            await asyncio.sleep(0.01)


class RefusingOutputs(RecordingOutputs):
    """Outputs whose broker refuses the next `refuse` records sent to `topic` (not kept)."""

    def __init__(self, topic: str, refuse: int) -> None:
        super().__init__()
        self.topic, self.refuse = topic, refuse

    async def send(
        self, topic: str, key: bytes | None, record: dict[str, Any] | None
    ) -> asyncio.Future[None]:
        if topic != self.topic or self.refuse <= 0:
            return await super().send(topic, key, record)
        self.refuse -= 1
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        refused.set_exception(ConnectionError("broker refused the record"))
        return refused


def make_app(
    pipeline: Pipeline | None = None,
    *,
    learning: tuple[Any, Any] = (None, None),
    outputs: RecordingOutputs | None = None,
    **settings: Any,
) -> tuple[AimdsApp, RecordingOutputs]:
    outputs = outputs or RecordingOutputs()
    s = Settings.from_env({}).replace(store="memory://", app_id="aimds-agent-test", **settings)
    pipeline = pipeline or Pipeline(screener=RuleScreener())
    aimds = create_app(s, pipeline=pipeline, outputs=outputs, learning=learning)
    aimds.faust.finalize()
    aimds.faust.flow_control.resume()
    return aimds, outputs


@pytest.fixture
def agent_app() -> Iterator[tuple[AimdsApp, RecordingOutputs]]:
    yield make_app()
