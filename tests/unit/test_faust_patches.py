"""The offset work-arounds (`app.faust_patches`): on a topic agents consume, neither a jump in
the fetched offsets nor a missing first record lets a commit move past a record no agent has
acknowledged, and the partition is sought back to that record until one has."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.types import TP

from app import faust_patches
from app.faust_patches import _add_gap, _new_offset, refuse_gaps


class GapConsumer:
    """The parts of Faust's consumer the work-around reads and calls."""

    def __init__(self, tp) -> None:
        self.should_stop = False
        self.assigned = {tp}
        self._committed_offset: dict = defaultdict(lambda: None)
        self._acked_index: dict = defaultdict(set)
        self._acked: dict = defaultdict(list)
        self._gap: dict = defaultdict(list)
        self.gaps: list[tuple[int, int]] = []
        self.seeks: list[int] = []
        self.earliest = 0  # the partition's first offset still on the broker

    async def earliest_offsets(self, *tps):
        return {tp: self.earliest for tp in tps}

    def assignment(self):
        return self.assigned

    async def seek(self, tp, offset: int) -> None:
        self.seeks.append(offset)


@pytest.fixture
def fast_refetch(monkeypatch):
    monkeypatch.setattr(faust_patches, "REFETCH_EVERY_S", 0.01)
    monkeypatch.setattr(faust_patches, "REFETCH_HEAD_AFTER_S", 0.01)
    monkeypatch.setattr(faust_patches, "REFETCH_ATTEMPTS", 5)

    async def original(self, tp, offset_from, offset_to):  # Faust's: count them as acked
        self.gaps.append((offset_from, offset_to))

    def original_new_offset(self, tp):  # Faust's: past the first run of acknowledged ones
        acked = sorted(self._acked[tp])
        return acked[-1] + 1 if acked else None

    monkeypatch.setattr(faust_patches, "_ORIGINAL_ADD_GAP", original)
    monkeypatch.setattr(faust_patches, "_ORIGINAL_NEW_OFFSET", original_new_offset)
    refuse_gaps({"aimds.verification"})


async def test_a_gap_in_an_agents_topic_is_not_counted_and_is_fetched_again(fast_refetch) -> None:
    tp = TP("aimds.verification", 1)
    consumer = GapConsumer(tp)
    await _add_gap(consumer, tp, 351, 352)  # 352 is being delivered, 351 never was
    assert consumer.gaps == []  # not acknowledged: the commit stays below 351
    await asyncio.sleep(0.035)
    assert consumer.seeks and set(consumer.seeks) == {351}  # sought back, again and again
    consumer._acked_index[tp].add(351)  # an agent has processed it now
    await asyncio.sleep(0.03)
    sought = len(consumer.seeks)
    await asyncio.sleep(0.03)
    assert len(consumer.seeks) == sought  # and the seeking stopped


async def test_refetching_stops_when_the_partition_is_committed_past_or_moves(
    fast_refetch,
) -> None:
    tp = TP("aimds.verification", 2)
    committed, moved = GapConsumer(tp), GapConsumer(tp)
    committed._committed_offset[tp] = 400
    moved.assigned = set()
    await _add_gap(committed, tp, 351, 352)
    await _add_gap(moved, tp, 351, 352)
    await asyncio.sleep(0.06)
    assert committed.seeks == [] and moved.seeks == []


async def test_gaps_elsewhere_are_left_to_faust(fast_refetch) -> None:
    tp = TP("aimds-seen-prompt-ids-changelog", 0)
    consumer = GapConsumer(tp)
    await _add_gap(consumer, tp, 10, 20)  # a compacted changelog really has gaps
    assert consumer.gaps == [(10, 20)] and consumer.seeks == []


@pytest.mark.parametrize("earliest", [0, 7])
async def test_a_record_still_on_the_broker_is_never_given_up(
    fast_refetch, caplog, earliest
) -> None:
    tp = TP("aimds.verification", 3)
    consumer = GapConsumer(tp)
    consumer.earliest = earliest
    await _add_gap(consumer, tp, 7, 8)
    await asyncio.sleep(0.12)
    assert len(consumer.seeks) == 5
    assert "aimds.verification[3]@7 not processed after 5 attempts" in caplog.text
    assert consumer.gaps == []  # the commit stays below it
    consumer._committed_offset[tp] = 7
    consumer._acked[tp] = [8, 9]
    assert _new_offset(consumer, tp) is None  # and the seeks start again
    await asyncio.sleep(0.035)
    assert len(consumer.seeks) > 5


async def test_a_record_deleted_by_retention_is_reported_and_given_up(fast_refetch, caplog) -> None:
    tp = TP("aimds.verification", 3)
    consumer = GapConsumer(tp)
    consumer.earliest = 8  # retention deleted 7
    await _add_gap(consumer, tp, 7, 8)
    await asyncio.sleep(0.12)
    assert len(consumer.seeks) == 5
    assert "aimds.verification[3]@7 not processed after 5 attempts" in caplog.text
    assert consumer.gaps == [(7, 7)]  # left to Faust's rule, which counts it acknowledged
    # given up: a record retention deleted must not hold the partition's commit for ever
    consumer._committed_offset[tp] = 7
    consumer._acked[tp] = [8, 9]
    assert _new_offset(consumer, tp) == 10


async def test_no_commit_past_a_first_record_never_acknowledged(fast_refetch) -> None:
    tp = TP("aimds.verification", 3)
    consumer = GapConsumer(tp)
    consumer._committed_offset[tp] = 109
    consumer._acked[tp] = [110, 111, 112]  # 109 was never handed to the agent
    assert _new_offset(consumer, tp) is None  # Faust's own answer is 113
    await asyncio.sleep(0.035)
    assert consumer.seeks and set(consumer.seeks) == {109}
    consumer._acked[tp] = [109, 110, 111, 112]
    consumer._acked_index[tp].add(109)
    assert _new_offset(consumer, tp) == 113


@pytest.mark.parametrize(("rebalance_during_seek", "commits"), [(False, True), (True, False)])
async def test_no_commit_between_a_rebalance_and_the_seek_to_the_committed_offsets(
    fast_refetch, monkeypatch, rebalance_during_seek, commits
) -> None:
    tp = TP("aimds.verification", 0)
    consumer = GapConsumer(tp)

    async def revoked(self, tps):  # Faust's: forgets the committed offsets
        for t in tps:
            self._committed_offset.pop(t, None)

    async def sought(self):  # Faust's: reads the committed offsets from the broker
        if rebalance_during_seek:
            await faust_patches._on_partitions_revoked(self, {tp})
        self._committed_offset[tp] = 642

    monkeypatch.setattr(faust_patches, "_ORIGINAL_ON_REVOKED", revoked)
    monkeypatch.setattr(faust_patches, "_ORIGINAL_PERFORM_SEEK", sought)
    consumer._committed_offset[tp] = 642
    await faust_patches._on_partitions_revoked(consumer, {tp})
    consumer._acked[tp] = [644, 645]  # late acknowledgements; 643 never processed
    assert _new_offset(consumer, tp) is None  # Faust's own rule would commit 646
    await faust_patches._perform_seek(consumer)
    consumer._acked[tp] = [642, 643, 644]
    assert (_new_offset(consumer, tp) == 645) is commits


async def test_no_seek_back_while_a_rebalance_is_under_way(fast_refetch, monkeypatch) -> None:
    tp = TP("aimds.verification", 4)
    consumer = GapConsumer(tp)

    async def revoked(self, tps):
        pass

    monkeypatch.setattr(faust_patches, "_ORIGINAL_ON_REVOKED", revoked)
    await _add_gap(consumer, tp, 20, 21)
    await faust_patches._on_partitions_revoked(consumer, {tp})  # before the first seek
    await asyncio.sleep(0.06)
    assert consumer.seeks == []  # the rebalance seeks to the committed offset itself
    faust_patches._unsought.discard((id(consumer), tp))


def test_other_topics_commit_as_faust_does() -> None:
    tp = TP("aimds-session-state-changelog", 0)
    consumer = GapConsumer(tp)
    consumer._committed_offset[tp] = 109
    consumer._acked[tp] = [110]
    refuse_gaps({"aimds.verification"})
    assert _new_offset(consumer, tp) == 111  # Faust's own rule: a changelog may skip offsets


def test_the_faust_consumer_has_what_the_patches_lean_on() -> None:
    """The patches use private parts of faust-streaming's consumer: a Faust release that
    renames them must fail here, not lose records quietly."""
    import faust

    from app.faust_patches import (
        _ORIGINAL_ADD_GAP,
        _ORIGINAL_NEW_OFFSET,
        _ORIGINAL_ON_ASSIGNED,
        _ORIGINAL_ON_REVOKED,
        _ORIGINAL_PERFORM_SEEK,
    )

    app = faust.App("aimds-patch-check", broker="kafka://127.0.0.1:9", autodiscover=False)
    consumer = app.consumer  # built, not started: no broker is contacted
    for name in ("_acked", "_acked_index", "_committed_offset", "_read_offset"):
        assert isinstance(getattr(consumer, name), dict), name
    assert callable(_ORIGINAL_ADD_GAP) and callable(_ORIGINAL_NEW_OFFSET)
    assert _ORIGINAL_ADD_GAP.__name__ == "_add_gap"
    assert _ORIGINAL_NEW_OFFSET.__name__ == "_new_offset"
    # the rebalance hooks wrapped to hold commits until the partitions are sought again
    assert _ORIGINAL_ON_REVOKED.__name__ == "on_partitions_revoked"
    assert _ORIGINAL_ON_ASSIGNED.__name__ == "on_partitions_assigned"
    assert _ORIGINAL_PERFORM_SEEK.__name__ == "perform_seek"
    assert callable(consumer.earliest_offsets)
    tp = TP("aimds.verification", 0)
    consumer._acked[tp].extend([3, 4])  # Faust's own rule on its own state
    assert _ORIGINAL_NEW_OFFSET(consumer, tp) == 5


class ConsumerThread:
    """Faust's consumer thread, reduced to its own event loop in its own OS thread."""

    def __init__(self, *, serving: bool = True) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.serving = serving
        self.seeks: list[tuple[object, int, int]] = []  # (partition, offset, thread id)
        self._os_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._os_thread.start()

    def seek(self, partition, offset: int) -> None:
        import threading

        self.seeks.append((partition, offset, threading.get_ident()))

    async def call_thread(self, fun, *args):
        async def run():
            return fun(*args)

        if not self.serving:  # a thread stuck elsewhere never takes the call
            await asyncio.sleep(3600)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._os_thread.join(5)
        self.loop.close()


async def test_seeks_run_on_the_consumer_thread_not_the_callers(fast_refetch) -> None:
    """aiokafka's seek deletes the fetched batch the consumer thread may be iterating; called
    from the agents' thread it made the fetcher raise KeyError and stop the worker."""
    import threading

    from faust.transport.consumer import ThreadDelegateConsumer
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer

    from app.faust_patches import _seek_in_consumer_thread

    assert AIOKafkaDriverConsumer._seek is _seek_in_consumer_thread
    consumer = SimpleNamespace(_thread=ConsumerThread())  # all `_seek` reads
    try:
        tp = TP("aimds.prompts", 2)
        await ThreadDelegateConsumer._seek(consumer, tp, 41)
        [(partition, offset, thread_id)] = consumer._thread.seeks
        assert (partition, offset) == (tp, 41)
        assert thread_id == consumer._thread._os_thread.ident != threading.get_ident()
    finally:
        consumer._thread.close()


async def test_a_seek_the_consumer_thread_never_takes_times_out(fast_refetch, monkeypatch) -> None:
    from faust.transport.consumer import ThreadDelegateConsumer

    monkeypatch.setattr(faust_patches, "SEEK_TIMEOUT_S", 0.05)
    consumer = SimpleNamespace(_thread=ConsumerThread(serving=False))
    try:
        with pytest.raises(asyncio.TimeoutError):
            await ThreadDelegateConsumer._seek(consumer, TP("aimds.prompts", 0), 7)
        assert consumer._thread.seeks == []
    finally:
        consumer._thread.close()


class SeekingConsumer:
    """The consumer call Faust's recovery makes to seek changelog partitions."""

    def __init__(self) -> None:
        self.sought: dict = {}

    async def seek_wait(self, offsets) -> None:
        self.sought.update(offsets)


async def test_a_changelog_partition_assigned_during_recovery_is_read_from_its_start() -> None:
    """A partition a rebalance adds while Faust's recovery runs keeps `None` as its start
    offset; Faust sought to it and aiokafka's ValueError stopped the worker (a soak)."""
    from collections import Counter

    from faust.tables.recovery import Recovery

    from app.faust_patches import _ORIGINAL_SEEK_OFFSETS, fix_recovery_offsets

    late, known, unknown = (TP("aimds-session-state-changelog", p) for p in (0, 1, 2))
    offsets: Counter = Counter({known: 41, unknown: -1})
    offsets[late] = None  # what `Recovery._add` leaves for a partition it has no offset for
    faust_alone = SeekingConsumer()
    await _ORIGINAL_SEEK_OFFSETS(None, faust_alone, {late, known, unknown}, offsets, "standby")
    assert faust_alone.sought == {late: None, known: 41, unknown: 0}  # None: aiokafka raises

    fix_recovery_offsets()
    patched = SeekingConsumer()
    await Recovery._seek_offsets(None, patched, {late, known, unknown}, offsets, "standby")
    assert patched.sought == {late: 0, known: 41, unknown: 0}
    assert offsets[late] == -1  # Faust's own "no offset known", as for `unknown`
