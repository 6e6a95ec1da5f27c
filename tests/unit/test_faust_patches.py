"""The offset work-arounds (`app.faust_patches`): on a topic agents consume, neither a jump in
the fetched offsets nor a missing first record lets a commit move past a record no agent has
acknowledged, and the partition is sought back to that record until one has."""

from __future__ import annotations

import asyncio
from collections import defaultdict

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


async def test_a_record_never_processed_is_reported_and_given_up(fast_refetch, caplog) -> None:
    tp = TP("aimds.verification", 3)
    consumer = GapConsumer(tp)
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

    from app.faust_patches import _ORIGINAL_ADD_GAP, _ORIGINAL_NEW_OFFSET

    app = faust.App("aimds-patch-check", broker="kafka://127.0.0.1:9", autodiscover=False)
    consumer = app.consumer  # built, not started: no broker is contacted
    for name in ("_acked", "_acked_index", "_committed_offset", "_read_offset"):
        assert isinstance(getattr(consumer, name), dict), name
    assert callable(_ORIGINAL_ADD_GAP) and callable(_ORIGINAL_NEW_OFFSET)
    assert _ORIGINAL_ADD_GAP.__name__ == "_add_gap"
    assert _ORIGINAL_NEW_OFFSET.__name__ == "_new_offset"
    tp = TP("aimds.verification", 0)
    consumer._acked[tp].extend([3, 4])  # Faust's own rule on its own state
    assert _ORIGINAL_NEW_OFFSET(consumer, tp) == 5
