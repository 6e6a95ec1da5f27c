"""Events are acknowledged once their outcome is delivered: never on the way out of a cancelled
agent, never when the broker refused the outcome (review finding: graceful restarts lost
prompts that were being verified, because Faust acknowledged them as the agent stopped)."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace

import pytest

from agents._acks import Acks
from app.faust_app import DRAIN_MARGIN_S
from tests.agents.conftest import delivered, make_app
from tests.agents.test_verify_agent import request, verifying_app


class RecordingStream:
    """The two methods `Acks` uses of a Faust stream."""

    def __init__(self) -> None:
        self.acked: list[object] = []
        self.current_event: object = None

    async def ack(self, event: object) -> bool:
        self.acked.append(event)
        return True

    def _set_current_event(self, event: object) -> None:
        self.current_event = event


def an_event(offset: int = 7) -> SimpleNamespace:
    return SimpleNamespace(
        message=SimpleNamespace(topic="aimds.prompts", partition=1, offset=offset)
    )


async def test_an_event_whose_records_are_delivered_is_acknowledged_at_once() -> None:
    stream, event = RecordingStream(), an_event()
    await Acks(stream).after(event, [delivered(), delivered()])
    assert stream.acked == [event]


async def test_an_event_that_sent_nothing_is_acknowledged() -> None:
    stream, event = RecordingStream(), an_event()
    await Acks(stream).after(event, [])
    assert stream.acked == [event]


async def test_an_event_waits_for_its_delivery_and_the_agent_does_not() -> None:
    stream, event = RecordingStream(), an_event()
    pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await Acks(stream).after(event, [delivered(), pending])
    assert stream.acked == []  # `after` returned: the agent goes on with the next event
    pending.set_result(None)
    for _ in range(10):  # a few turns of the loop for the waiting task
        await asyncio.sleep(0)
    assert stream.acked == [event]


async def test_a_refused_delivery_leaves_the_event_unacknowledged(caplog) -> None:
    stream, event = RecordingStream(), an_event(offset=42)
    acks = Acks(stream)
    pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.ERROR):
        await acks.after(event, [pending])
        pending.set_exception(ConnectionError("broker gone (simulated)"))
        for _ in range(10):
            await asyncio.sleep(0)
    assert stream.acked == [] and acks.withheld == 1
    assert "aimds.prompts[1]@42 not acknowledged" in caplog.text and "broker gone" in caplog.text


async def test_an_event_is_marked_done_once_delivered_as_the_current_event() -> None:
    stream, event = RecordingStream(), an_event()
    marks: list[tuple[object, list[object]]] = []

    def mark() -> None:  # what the table write would see: the current event, the acks so far
        marks.append((stream.current_event, list(stream.acked)))

    pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await Acks(stream).after(event, [pending], then=mark)
    assert marks == []  # not before the delivery
    pending.set_result(None)
    for _ in range(10):
        await asyncio.sleep(0)
    assert marks == [(event, [])] and stream.acked == [event]  # marked, then acknowledged


async def test_an_event_whose_delivery_failed_is_not_marked_done(caplog) -> None:
    stream, event = RecordingStream(), an_event()
    marks: list[object] = []
    refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    refused.set_exception(ConnectionError("refused"))
    with caplog.at_level(logging.ERROR, logger="agents._acks"):
        await Acks(stream).after(event, [refused], then=lambda: marks.append(event))
        for _ in range(10):
            await asyncio.sleep(0)
    assert marks == [] and stream.acked == []


async def test_a_failed_mark_still_acknowledges_the_delivered_event(caplog) -> None:
    stream, event = RecordingStream(), an_event()

    def broken_mark() -> None:
        raise RuntimeError("table unavailable")

    with caplog.at_level(logging.ERROR, logger="agents._acks"):
        await Acks(stream).after(event, [delivered()], then=broken_mark)
    assert stream.acked == [event]
    assert "a restart may repeat its outcome" in caplog.text


async def test_an_event_with_no_outcome_at_all_is_not_acknowledged() -> None:
    stream, event = RecordingStream(), an_event()
    acks = Acks(stream)
    await acks.after(event, None)  # not even a dead letter could be sent
    assert stream.acked == [] and acks.withheld == 1


class BlockingVerifier:
    """A verification that is still running when the worker stops."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def verify(self, subject):
        self.started.set()
        self.release.wait(5.0)
        raise AssertionError("released only after the test")


async def wait_until(flag: threading.Event, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not flag.is_set():
        assert asyncio.get_running_loop().time() < deadline, "verification never started"
        await asyncio.sleep(0.01)


async def test_a_verification_cut_short_by_a_stop_leaves_its_event_unacknowledged() -> None:
    verifier = BlockingVerifier()
    aimds, out = verifying_app(timeout_s=4.0, verifier=verifier)
    try:
        async with aimds.agents["verify_prompts"].test_context() as agent:
            event = await agent.put(request("hello", score=0.5, pid="inflight"), wait=False)
            await wait_until(verifier.started)
        # the agent was stopped (its task cancelled, its stream closed) mid-verification
        assert out.records("decisions") == []
        assert event.message.acked is False  # so its offset is not committed past
    finally:
        verifier.release.set()
        await asyncio.sleep(0.05)


async def test_a_finished_verification_acknowledges_its_event() -> None:
    aimds, out = verifying_app()
    async with aimds.agents["verify_prompts"].test_context() as agent:
        event = await agent.put(request("hello", score=0.5, pid="done"))
        await out.wait_for(1)
        for _ in range(50):
            if event.message.acked:
                break
            await asyncio.sleep(0.01)
    assert [d["prompt_id"] for d in out.records("decisions")] == ["done"]
    assert event.message.acked is True


@pytest.mark.parametrize("batch", [1, 4])
async def test_screened_events_are_acknowledged_one_by_one_once_sent(batch: int) -> None:
    aimds, out = make_app(screen_batch=batch, screen_batch_wait_s=0.01)
    async with aimds.agents["screen_prompts"].test_context() as agent:
        events = [
            await agent.put(
                b'{"id": "p%d", "session_id": "s", "text": "hello %d", "ts": 1700000000}' % (i, i),
                key=b"s",
                wait=False,
            )
            for i in range(3)
        ]
        events.append(await agent.put(b"{not json", key=b"s", wait=False))
        await out.wait_for(4)
        for _ in range(50):
            if all(e.message.acked for e in events):
                break
            await asyncio.sleep(0.01)
    assert [e.message.acked for e in events] == [True] * 4
    assert len(out.records("decisions")) == 3 and len(out.records("deadletter")) == 1


class TakenMessage:
    """A message in Faust's `unacked` set: its name, and whether it was acknowledged."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.acked = False


class DrainingConsumer:
    """What the drain reads of Faust's consumer: the unacknowledged events, and commit."""

    def __init__(self, unacked: set[str]) -> None:
        self.taken = {name: TakenMessage(name) for name in unacked}
        self.unacked = set(self.taken.values())
        self.commits: list[set[str]] = []  # what was still unacknowledged at each commit

    def ack(self, name: str, *, leave_in_set: bool = False) -> None:
        """Faust's ack: the message leaves `unacked`, unless its offset was acked before."""
        message = self.taken[name]
        message.acked = True
        if not leave_in_set:
            self.unacked.discard(message)

    async def commit(self) -> bool:
        self.commits.append({m.name for m in self.unacked if not m.acked})
        return True


def stopping_app(consumer: DrainingConsumer, verify_timeout_s: float = 2.0):
    """A worker's app whose consumer is `consumer`; it drains for one verification's budget
    plus DRAIN_MARGIN_S."""
    aimds, _ = verifying_app(timeout_s=verify_timeout_s)
    aimds.faust._consumer = consumer  # the app's consumer, as Faust caches it
    return aimds.faust


async def test_a_graceful_stop_commits_once_the_events_in_flight_are_done() -> None:
    consumer = DrainingConsumer({"event-1", "event-2"})
    app = stopping_app(consumer)

    async def finish_in_flight() -> None:
        await asyncio.sleep(0.1)
        consumer.ack("event-1")
        await asyncio.sleep(0.1)
        consumer.ack("event-2")

    finishing = asyncio.ensure_future(finish_in_flight())
    await app.on_before_shutdown.send()
    await finishing
    assert consumer.commits and consumer.commits[-1] == set()


async def test_a_second_delivery_acknowledged_but_left_in_fausts_set_does_not_hold_the_stop(
    caplog,
) -> None:
    """Faust keeps a second delivery of an offset in `unacked` after its ack; the stop used to
    wait its whole budget for it."""
    consumer = DrainingConsumer({"first", "again"})
    consumer.ack("first")
    consumer.ack("again", leave_in_set=True)
    app = stopping_app(consumer, verify_timeout_s=2.0)
    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING):
        await app.on_before_shutdown.send()
    assert asyncio.get_running_loop().time() - started < 1.0  # not the 2 s + margin budget
    assert consumer.commits == [set()]
    assert "in flight" not in caplog.text


async def test_a_graceful_stop_waits_for_events_in_flight_only_so_long(caplog) -> None:
    consumer = DrainingConsumer({"withheld"})  # never acknowledged (its outcome was refused)
    app = stopping_app(consumer, verify_timeout_s=0.1)
    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING):
        await app.on_before_shutdown.send()
    grace_s = 0.1 + DRAIN_MARGIN_S
    assert grace_s <= asyncio.get_running_loop().time() - started < grace_s + 1.0
    assert consumer.commits == [{"withheld"}]  # what is done is committed all the same
    assert "stopping with 1 events in flight" in caplog.text


async def test_a_record_handed_over_twice_is_processed_once_and_acknowledged_with_the_first() -> (
    None
):
    stream = RecordingStream()
    acks = Acks(stream)
    first, again, later = an_event(offset=5), an_event(offset=5), an_event(offset=5)
    assert await acks.first_time(first) is True
    assert await acks.first_time(again) is False  # skipped by the agent
    assert stream.acked == []  # the first is still in flight: nothing is done yet
    await acks.after(first, [delivered()])
    assert stream.acked == [first, again]
    assert await acks.first_time(later) is False  # and once done, at once
    assert stream.acked == [first, again, later] and acks.redelivered == 2


async def test_a_withheld_record_is_processed_when_handed_over_again() -> None:
    stream = RecordingStream()
    acks = Acks(stream)
    first, again = an_event(offset=9), an_event(offset=9)
    assert await acks.first_time(first)
    await acks.after(first, None)  # its outcome could not be sent
    assert await acks.first_time(again) is True
    await acks.after(again, [delivered()])
    assert stream.acked == [again]


async def test_offsets_of_other_partitions_are_not_confused() -> None:
    acks = Acks(RecordingStream())
    a = SimpleNamespace(message=SimpleNamespace(topic="aimds.prompts", partition=0, offset=3))
    b = SimpleNamespace(message=SimpleNamespace(topic="aimds.prompts", partition=1, offset=3))
    c = SimpleNamespace(message=SimpleNamespace(topic="aimds.verification", partition=0, offset=3))
    assert [await acks.first_time(e) for e in (a, b, c)] == [True, True, True]
