"""The Faust app factory: one `AimdsApp` = a Faust app, its topics, tables, outputs and agents.

With `app.faust_patches`, the only module in `app/` that imports Faust. The core
(`Pipeline`) is built before the worker starts, so model and index loading (and numba
warm-up) stay off the first request's path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust

from app.decisions import to_bytes
from app.pipeline import Pipeline
from app.settings import Settings
from topics.faust_topics import Tables, Topics, declare_tables, declare_topics

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where agents send records; Kafka topics in the worker, a recorder in agent tests."""

    async def send(
        self, topic: str, key: bytes | None, record: dict[str, Any] | None
    ) -> Awaitable[Any]:
        """Send one JSON record (None: a tombstone) to one of the AIMDS topics.

        Returns once the record is queued; the awaitable returned completes when the broker
        has it (and raises if it refused it).
        """


class TopicOutputs:
    """Outputs backed by the app's Faust topics."""

    def __init__(self, topics: Topics):
        self._topics = topics

    async def send(
        self, topic: str, key: bytes | None, record: dict[str, Any] | None
    ) -> Awaitable[Any]:
        """Produce the record (None: a tombstone) to the named AIMDS topic."""
        value = None if record is None else to_bytes(record)
        # Faust's send returns the producer's future of the broker's acknowledgement
        delivery: Awaitable[Any] = await getattr(self._topics, topic).send(key=key, value=value)
        return delivery


@dataclass
class AimdsApp:
    """A Faust app wired with the AIMDS topics, tables, core pipeline and agents."""

    settings: Settings
    faust: faust.App
    topics: Topics
    tables: Tables
    pipeline: Pipeline
    outputs: Outputs
    #: stage 6: feedback → signed pattern updates (None: no signing key on this worker)
    learner: Any = None
    #: stage 6: applies `aimds.patterns` to this worker's store (None: no trusted key)
    follower: Any = None
    agents: dict[str, Any] = field(default_factory=dict)


def faust_config(settings: Settings) -> dict[str, Any]:
    """Faust settings derived from AIMDS settings."""
    return {
        "broker": settings.broker_url,
        "store": settings.store,
        "autodiscover": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_allow_declare": True,
        "web_enabled": settings.web_port > 0,
        "web_port": settings.web_port or 6066,
        "web_host": "127.0.0.1",
        "consumer_auto_offset_reset": "earliest",
        "producer_max_request_size": settings.max_message_bytes,
        "consumer_max_fetch_size": settings.max_message_bytes,
        "producer_acks": -1,
        "processing_guarantee": "at_least_once",
        "table_cleanup_interval": 30.0,
        "stream_wait_empty": False,
        "broker_commit_every": 500,
    }


def create_app(
    settings: Settings,
    *,
    pipeline: Pipeline,
    outputs: Outputs | None = None,
    learning: tuple[Any, Any] | None = None,
) -> AimdsApp:
    """Build the Faust app with every AIMDS topic, table and agent.

    `learning` is `(learner, follower)`; by default both come from the settings
    (`app.core.build_learning`).
    """
    if learning is None:
        from app.core import build_learning

        learning = build_learning(settings, pipeline.screener)
    from app.faust_patches import (
        expire_windows_by_event_time,
        fix_recovery_offsets,
        refuse_gaps,
    )

    # the topics agents consume: never compacted, so a gap there is a record skipped
    refuse_gaps({settings.topic(name) for name in ("prompts", "verification", "feedback")})
    fix_recovery_offsets()
    expire_windows_by_event_time()
    app = faust.App(settings.app_id, **faust_config(settings))
    topics = declare_topics(app, settings)
    tables = declare_tables(app, settings)
    aimds = AimdsApp(
        settings=settings,
        faust=app,
        topics=topics,
        tables=tables,
        pipeline=pipeline,
        outputs=outputs or TopicOutputs(topics),
        learner=learning[0],
        follower=learning[1],
    )
    from agents import learn, screen, verify

    aimds.agents["screen_prompts"] = screen.register(aimds)
    aimds.agents["verify_prompts"] = verify.register(aimds)
    aimds.agents.update(learn.register(aimds))
    drain_on_stop(app, grace_s=settings.verify_timeout_s + DRAIN_MARGIN_S)
    return aimds


#: seconds a graceful stop waits, beyond one verification's budget, for events in flight
DRAIN_MARGIN_S = 2.0


def _in_flight(consumer: Any) -> int:
    """Events taken and not acknowledged. Faust drops an acknowledged message from its
    `unacked` set only for the first delivery of its offset: a second delivery, acknowledged
    along with the first (`agents._acks`), stays there, so `acked` decides."""
    return sum(1 for message in consumer.unacked if not message.acked)


def drain_on_stop(app: faust.App, *, grace_s: float) -> None:
    """At a graceful stop, let the events in flight finish, then commit.

    Faust has stopped fetching by then and its agents are still running; it does not wait
    for them (`stream_wait_empty` off, since a wait without a bound could hold a rebalance
    for ever), and its own last commit can be skipped while a periodic one is running. So
    this waits, at most `grace_s`, until every event taken is acknowledged (its outcome
    delivered, `agents._acks`), and commits. Whatever is still unacknowledged then is
    processed again after the restart.
    """

    @app.on_before_shutdown.connect
    async def drain(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        consumer = app.consumer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while _in_flight(consumer) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if in_flight := _in_flight(consumer):
            log.warning(
                "stopping with %d events in flight after %.1fs: they are processed again "
                "after the restart",
                in_flight,
                grace_s,
            )
        # a commit already running makes commit() wait for it and return False
        for _attempt in range(3):
            if await consumer.commit():
                break
