"""Work-arounds in faust-streaming: never commit past a record no agent processed (1-3), never
stop a worker over a seek (4-5), and expire windowed tables by event time (6-7).

Restart loops on a real broker (`perf/restart_soak.py`) traced every prompt lost on a
graceful restart to one of two places where Faust (0.15.x) commits past a record that was
never handed to an agent ([faust-streaming#606](https://github.com/faust-streaming/faust/issues/606)):

1. **Gaps.** When the fetch loop sees a partition's offsets jump (352 read right after 350),
   it records the offsets in between as a gap and counts them as acknowledged. That is meant
   for compacted or transactional topics, where offsets really are missing. It happens at
   start-up: Faust resumes the stream partitions before it seeks them to the committed
   offsets, and resets its read position under records it has already delivered.
2. **A missing first record.** The next offset to commit is taken from the acknowledged
   offsets, and a record missing right at the committed offset is not noticed: committed
   109 and acknowledged 110, 111, 112 gives 113, although 109 was never processed.

The AIMDS topics that agents consume (prompts, verification, feedback) are neither compacted
nor transactional, so on them a missing offset is always a record skipped. For those topics
a gap is not counted as acknowledged, no commit moves past an unacknowledged record, and the
partition is sought back to the record missing until an agent has acknowledged it
(`agents._acks.Acks` drops the records that this delivers a second time). Other topics
(Faust's own changelogs, which are compacted) are left to Faust.

3. **A commit during a rebalance.** Faust forgets a partition's committed offset when the
   partition is revoked, and reads it again only when it seeks the partition to it, at the end
   of the rebalance (after table recovery, seconds later). Acknowledgements that arrive in
   between (outcomes of events taken before the rebalance, delivered late) are committed by
   the periodic commit with no committed offset to compare with, so neither rule above can
   see a record missing below them: the commit jumps past it. So no offset of these topics
   is committed from a partition's revocation or assignment until it has been sought again.

4. **A seek from the wrong thread.** Faust's aiokafka consumer runs in its own thread with its
   own event loop, but `Consumer.seek` calls aiokafka's `seek` from the caller's thread, and
   that deletes the partition's fetched batch from the dict the consumer thread may be
   iterating: aiokafka's `fetched_records` then raises `KeyError(TopicPartition)` and the
   worker stops ([robinhood/aiokafka#19](https://github.com/robinhood/aiokafka/issues/19)).
   Two-worker soaks hit it in 4 of 16 runs, each time right after a seek-back below. Seeks
   now run on the consumer's thread, between its fetches.

5. **A table partition assigned while a recovery is running.** Faust's recovery builds the
   start offsets of the changelog partitions it was given, and a partition added by a
   rebalance in the meantime keeps the placeholder `None`; the recovery then seeks it to
   `None`, aiokafka raises `ValueError("Offset must be a positive integer")`, the recovery
   service crashes and the worker stops (1 of 140 worker starts in two-worker soaks). Such a
   partition now starts as Faust starts one with no offset known: from the beginning of its
   changelog (`fix_recovery_offsets`).

6. **Windows expired by the wall clock.** A windowed table drops a window once it is older
   than its `expires` by `time.time()` (faust-streaming changed it from the partition's latest
   event time in PR #251). A replayed log carries old event times, so every window it fills
   was dropped at the next cleanup, 30 s later: rate counts, dedup marks and blocked counts
   of a replay vanished mid-session, and `aimds scan` (event time throughout) decided
   otherwise. Windows now expire by the latest window end seen on their partition, the
   event time Faust used before (`expire_windows_by_event_time`).
7. **Recovered windows never expire.** Keys read back from a changelog at start-up are not
   entered in the expiry heap ([faust-streaming#385](https://github.com/faust-streaming/faust/issues/385)),
   so a restarted worker kept them in memory for good. They are now entered as they are read.

A record that still is not acknowledged after `REFETCH_ATTEMPTS` seeks is given up with an
error naming it, and the commit may move past it as Faust's rule has it, only if it is gone
(retention deleted it before it was read). Otherwise the commit stays below it and the seeks
start again: a seek-back often misses while the fetch loop is still draining a batch fetched
before it (the record comes back below Faust's read position and is dropped), so giving up on
a record that exists would commit past a record no agent processed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from heapq import heappop
from typing import Any

from faust.tables.base import Collection as FaustCollection
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ThreadDelegateConsumer

log = logging.getLogger(__name__)

#: seconds before seeking back to a record a gap skipped, and between attempts
REFETCH_EVERY_S = 0.5
#: seconds before seeking back to a first record not acknowledged: it may just be slow (a
#: verification takes up to AIMDS_VERIFY_TIMEOUT_S), and seeking back then only delivers
#: records twice, which the agents skip
REFETCH_HEAD_AFTER_S = 3.0
#: attempts before giving up on a record (logged; the commit may then move past it)
REFETCH_ATTEMPTS = 30

_ORIGINAL_ADD_GAP = Consumer._add_gap
_ORIGINAL_NEW_OFFSET = Consumer._new_offset
_ORIGINAL_ON_REVOKED = Consumer.on_partitions_revoked
_ORIGINAL_ON_ASSIGNED = Consumer.on_partitions_assigned
_ORIGINAL_PERFORM_SEEK = Consumer.perform_seek
_ORIGINAL_SEEK_OFFSETS = Recovery._seek_offsets
_ORIGINAL_APPLY_CHANGELOG_BATCH = FaustCollection.apply_changelog_batch
#: seconds a seek may wait for the consumer thread (it runs between fetches)
SEEK_TIMEOUT_S = 10.0
_topics_without_gaps: set[str] = set()
#: (consumer, partition) → the offset given up there
_given_up: dict[tuple[int, Any], int] = {}
#: (consumer, partition) revoked or assigned, and not sought to its committed offset since
_unsought: set[tuple[int, Any]] = set()
#: consumer → rebalances begun (a seek that overlaps a newer rebalance settles nothing)
_rebalances: dict[int, int] = {}


def refuse_gaps(topics: Collection[str]) -> None:
    """Never commit these topics' offsets past a record no agent acknowledged (module doc)."""
    _topics_without_gaps.update(topics)
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    Consumer.on_partitions_revoked = _on_partitions_revoked  # type: ignore[method-assign]
    Consumer.on_partitions_assigned = _on_partitions_assigned  # type: ignore[method-assign]
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
    ThreadDelegateConsumer._seek = _seek_in_consumer_thread  # type: ignore[method-assign]


async def _seek_in_consumer_thread(self: Any, partition: Any, offset: int) -> None:
    """aiokafka's seek, run by the consumer's own thread (point 4 of the module doc)."""
    thread = self._thread
    await asyncio.wait_for(thread.call_thread(thread.seek, partition, offset), SEEK_TIMEOUT_S)


def fix_recovery_offsets() -> None:
    """Changelog partitions with no start offset are recovered from their start (point 5)."""
    Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]


async def _seek_offsets(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
    for tp in tps:
        if tp in offsets and offsets[tp] is None:
            offsets[tp] = -1  # Faust's own mark for "no offset known": read from the start
    await _ORIGINAL_SEEK_OFFSETS(self, consumer, tps, offsets, title)


def expire_windows_by_event_time() -> None:
    """Windowed tables expire windows by event time, recovered ones too (points 6 and 7)."""
    FaustCollection._del_old_keys = _del_old_keys  # type: ignore[method-assign]
    FaustCollection.apply_changelog_batch = _apply_changelog_batch  # type: ignore[method-assign]


async def _del_old_keys(self: Any) -> None:
    # Faust's own loop with the partition's latest window end for `time.time()`; AIMDS sets no
    # `on_window_close`, so the windows' values are just dropped (the changelog's retention
    # deletes them on the broker)
    window = self.window
    for partition, ends in self._partition_timestamps.items():
        latest = self._partition_latest_timestamp[partition]
        while ends and window.stale(ends[0], latest):
            end = heappop(ends)
            for key in self._partition_timestamp_keys.pop((partition, end), ()):
                self.data.pop(key, None)


def _apply_changelog_batch(self: Any, batch: Iterable[Any]) -> None:
    events = list(batch)
    _ORIGINAL_APPLY_CHANGELOG_BATCH(self, events)
    if self._should_expire_keys():
        for event in events:
            if event.message.value is not None:  # a tombstone (raw None) deletes its key
                self._maybe_set_key_ttl(self._to_key(event.key), event.message.partition)


def _unsettle(consumer: Any, tps: Collection[Any]) -> None:
    _rebalances[id(consumer)] = _rebalances.get(id(consumer), 0) + 1
    _unsought.update((id(consumer), tp) for tp in tps if tp.topic in _topics_without_gaps)


async def _on_partitions_revoked(self: Any, revoked: Any) -> None:
    _unsettle(self, revoked)  # Faust drops the committed offsets now
    await _ORIGINAL_ON_REVOKED(self, revoked)


async def _on_partitions_assigned(self: Any, assigned: Any, generation_id: int = 0) -> None:
    _unsettle(self, assigned)
    await _ORIGINAL_ON_ASSIGNED(self, assigned, generation_id)


async def _perform_seek(self: Any) -> None:
    began = _rebalances.get(id(self), 0)
    await _ORIGINAL_PERFORM_SEEK(self)
    if _rebalances.get(id(self), 0) == began:  # the committed offsets read are current
        _unsought.difference_update((id(self), tp) for tp in self.assignment())


def _new_offset(self: Any, tp: Any) -> int | None:
    if tp.topic in _topics_without_gaps:
        if (id(self), tp) in _unsought:
            return None  # the committed offset is not known: a record missing cannot be seen
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if (
            acked
            and committed is not None
            and min(acked) > committed
            and _given_up.get((id(self), tp)) != committed
        ):
            # the record at `committed` is not acknowledged: slow, or skipped by the fetch
            _refetch_once(self, tp, committed, committed, first_after_s=REFETCH_HEAD_AFTER_S)
            return None
    offset: int | None = _ORIGINAL_NEW_OFFSET(self, tp)
    return offset


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    if tp.topic not in _topics_without_gaps:
        await _ORIGINAL_ADD_GAP(self, tp, offset_from, offset_to)
        return
    # offset_to is the record being delivered now: the missing ones are below it
    log.warning(
        "%s[%s]: the fetch skipped offsets %d..%d; not committing past them, fetching them again",
        tp.topic,
        tp.partition,
        offset_from,
        offset_to - 1,
    )
    _refetch_once(self, tp, offset_from, offset_to - 1, first_after_s=REFETCH_EVERY_S)


#: (consumer, partition) → the task seeking it back
_refetching: dict[tuple[int, Any], asyncio.Task[None]] = {}


def _refetch_once(consumer: Any, tp: Any, first: int, last: int, *, first_after_s: float) -> None:
    """Start `_refetch` for the partition, unless it is running already."""
    key = (id(consumer), tp)
    if key in _refetching:
        return
    task = asyncio.ensure_future(_refetch(consumer, tp, first, last, first_after_s))
    _refetching[key] = task
    task.add_done_callback(lambda _: _refetching.pop(key, None))


def _acknowledged(consumer: Any, tp: Any, offset: int) -> bool:
    committed = consumer._committed_offset.get(tp)
    return (committed is not None and committed > offset) or offset in consumer._acked_index[tp]


async def _refetch(consumer: Any, tp: Any, first: int, last: int, first_after_s: float) -> None:
    """Seek `tp` back to `first` until an agent has acknowledged the record there.

    Faust's fetch loop can still be delivering records of a batch fetched before the seek,
    and moves its read position past the sought offset again; so this checks and retries.
    Given up, the offsets `first`..`last` are left to Faust's rule (a gap it counts as
    acknowledged), so that the partition's commit can move on.
    """
    for attempt in range(REFETCH_ATTEMPTS):
        await asyncio.sleep(first_after_s if attempt == 0 else REFETCH_EVERY_S)
        if consumer.should_stop or tp not in consumer.assignment():
            return  # whoever gets the partition starts from the committed offset
        if (id(consumer), tp) in _unsought:
            # a rebalance is under way: it seeks the partition to its committed offset (below
            # this record) itself; the next commit checks again
            return
        if _acknowledged(consumer, tp, first):
            return
        try:
            await consumer.seek(tp, first)
        except Exception:  # noqa: BLE001 - retried; the commit stays below the record
            log.exception("seeking %s[%s] back to %d failed", tp.topic, tp.partition, first)
    if not await _deleted(consumer, tp, first):
        log.error(
            "%s[%s]@%d not processed after %d attempts to fetch it again: the commit stays "
            "below it, and the next commit starts the seeks again",
            tp.topic,
            tp.partition,
            first,
            REFETCH_ATTEMPTS,
        )
        return
    _given_up[(id(consumer), tp)] = first
    await _ORIGINAL_ADD_GAP(consumer, tp, first, last)
    log.error(
        "%s[%s]@%d not processed after %d attempts to fetch it again (deleted by retention): "
        "giving it up, the commit may move past it",
        tp.topic,
        tp.partition,
        first,
        REFETCH_ATTEMPTS,
    )


async def _deleted(consumer: Any, tp: Any, offset: int) -> bool:
    """True if the partition no longer holds `offset` (retention deleted it)."""
    try:
        earliest = (await consumer.earliest_offsets(tp)).get(tp)
    except Exception:  # noqa: BLE001 - unknown: kept, the commit stays below it
        log.exception("reading the earliest offset of %s[%s] failed", tp.topic, tp.partition)
        return False
    return earliest is not None and earliest > offset
