"""Faust declarations of the AIMDS topics and tables, and the topic-creation admin step."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.errors import BrokerError
from app.settings import Settings
from app.windows import BLOCKED_STEP_S, BLOCKED_WINDOW_S, RATE_WINDOW_S, SESSION_WINDOW_S
from topics import TABLES, changelog_specs, table_expiry_s, topic_specs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """The six AIMDS topics as Faust topics (raw bytes in, raw bytes out)."""

    prompts: Any
    decisions: Any
    verification: Any
    feedback: Any
    patterns: Any
    deadletter: Any


@dataclass(frozen=True)
class Tables:
    """Per-session state of the screen agent, keyed by session id, and the verify agent's
    done marks; all co-partitioned with `aimds.prompts` (`aimds.verification` has as many
    partitions and the same keys)."""

    #: bounded temporal state of each session (a plain dict, see app.temporal)
    session_state: Any
    #: prompts per session in 1-minute tumbling windows (event time)
    prompts_per_session_1m: Any
    #: blocked prompts per session in 10-minute windows hopping every minute (event time)
    blocked_per_session_10m: Any
    #: prompt ids seen per session, in tumbling windows of the dedup TTL (event time): where
    #: the record that first carried the id was read, negated once its outcome is delivered
    seen_prompt_ids: Any
    #: verification records (partition:offset) whose decision was delivered, in tumbling
    #: windows of the dedup TTL (the record's time)
    verified_records: Any


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare every AIMDS topic on `app` with the raw serializer."""
    made = {
        spec.suffix: app.topic(
            spec.name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec.partitions,
            retention=timedelta(milliseconds=int(spec.config["retention.ms"]))
            if int(spec.config.get("retention.ms", "-1")) > 0
            else None,
            compacting=spec.config.get("cleanup.policy") == "compact",
            config={"max.message.bytes": spec.config["max.message.bytes"]},
            # deliver tombstones (null values) to agents so they are dead-lettered, not dropped
            allow_empty=True,
        )
        for spec in topic_specs(settings)
    }
    return Topics(**made)


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    """Declare the agents' tables (all co-partitioned with `aimds.prompts`)."""
    n = settings.partitions
    ttl = settings.dedup_ttl_s
    expires = table_expiry_s(settings)
    session_state, prompts_1m, blocked_10m, seen_ids, verified = TABLES
    return Tables(
        # `dict`: a window with no state reads as {} (Faust stores nothing for it)
        session_state=app.Table(session_state, default=dict, partitions=n)
        .tumbling(SESSION_WINDOW_S, expires=timedelta(seconds=expires[session_state] or 0))
        .relative_to_stream(),
        prompts_per_session_1m=app.Table(prompts_1m, default=int, partitions=n)
        .tumbling(RATE_WINDOW_S, expires=timedelta(seconds=expires[prompts_1m] or 0))
        .relative_to_stream(),
        blocked_per_session_10m=app.Table(blocked_10m, default=int, partitions=n)
        .hopping(
            BLOCKED_WINDOW_S, BLOCKED_STEP_S, expires=timedelta(seconds=expires[blocked_10m] or 0)
        )
        .relative_to_stream(),
        seen_prompt_ids=app.Table(seen_ids, default=int, partitions=n)
        .tumbling(ttl, expires=timedelta(seconds=expires[seen_ids] or 0))
        .relative_to_stream(),
        verified_records=app.Table(verified, default=int, partitions=n)
        .tumbling(ttl, expires=timedelta(seconds=expires[verified] or 0))
        .relative_to_stream(),
    )


async def ensure_topics(settings: Settings, *, timeout_s: float = 60.0) -> list[str]:
    """Create the AIMDS topics that do not exist yet; return the names created.

    Faust does not create the source topics of agents, and the local broker has topic
    auto-creation off, so the worker and the CLI call this before producing or consuming.
    """
    specs = topic_specs(settings) + changelog_specs(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except Exception as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            s.name,
                            s.partitions,
                            settings.replication_factor,
                            topic_configs=s.config,
                        )
                        for s in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another worker created them first
        await _wait_for_metadata(admin, {s.name for s in specs}, timeout_s)
        await _wait_for_serving(settings, specs, timeout_s)
        if missing:
            log.info("created topics: %s", ", ".join(s.name for s in missing))
        return [s.name for s in missing]
    finally:
        await admin.close()


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: set[str], timeout_s: float) -> None:
    """Wait until every topic is in the metadata with a leader for each partition."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        described = await admin.describe_topics(sorted(names))
        ready = {
            d["topic"]
            for d in described
            if d.get("error_code", 0) == 0
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
        }
        if names <= ready:
            return
        await asyncio.sleep(0.2)
    raise BrokerError(f"topics did not get partition leaders in time: {sorted(names)}")


async def _wait_for_serving(settings: Settings, specs: list[Any], timeout_s: float) -> None:
    """Wait until the broker answers offset requests for every partition of `specs`.

    A KRaft broker can list a new partition's leader in its metadata before it has created
    the partition's log; a record produced in that gap is retried and lands, but a consumer
    that starts then may not fetch from the partition. Asking each leader for its offsets
    closes the gap: it only answers once the partition is there.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(s.name, p) for s in specs for p in range(s.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    await consumer.start()
    try:
        while True:
            try:
                await asyncio.wait_for(consumer.end_offsets(tps), 10.0)
                return
            except Exception as exc:  # noqa: BLE001 - not leader yet, unknown partition, timeout
                if loop.time() > deadline:
                    raise BrokerError(f"topic partitions not served in time: {exc}") from exc
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
