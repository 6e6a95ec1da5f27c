"""Integration fixtures: a real Kafka broker and Redis, and real `aimds worker` processes.

The broker comes from `app.runtime.services`: an external one when `AIMDS_BROKER_URL` is set,
Testcontainers when a Docker engine answers, otherwise a local KRaft Kafka (jars from Maven
Central) and `redis-server` processes. These tests never skip for want of Docker. Each test
gets its own topic prefix and consumer group, so tests cannot see each other's records.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.kafka_io import read_topic, send_all
from app.runtime.local import WorkerProcess as LocalWorker
from app.runtime.services import Services, start_services
from app.settings import Settings
from topics.faust_topics import ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    settings = Settings.from_env(
        {k: v for k, v in os.environ.items() if k in ("AIMDS_HOME", "AIMDS_KAFKA_VERSION")}
    )
    svc = start_services(home=Path(settings.home), kafka_version=settings.kafka_version)
    print(
        f"\n[integration] Kafka {svc.kafka_version} via {svc.mode} at {svc.kafka_url}, "
        f"Redis at {svc.redis_url}, ready in {svc.started_in_s:.1f}s"
    )
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def settings(services: Services, request: pytest.FixtureRequest) -> Settings:
    tag = f"it-{request.node.name[:20].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:6]}"
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in tag)
    s = Settings.from_env(services.env()).replace(
        topic_prefix=tag, app_id=tag, partitions=4, verify_timeout_s=5.0
    )
    asyncio.run(ensure_topics(s))
    return s


class WorkerProcess(LocalWorker):
    """`aimds worker` as a child process, pointed at this test's broker, topics and group."""

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None):
        env = dict(os.environ)
        env.update(
            {
                "AIMDS_BROKER_URL": settings.broker_url,
                "AIMDS_REDIS_URL": settings.redis_url,
                "AIMDS_TOPIC_PREFIX": settings.topic_prefix,
                "AIMDS_APP_ID": settings.app_id,
                "AIMDS_PARTITIONS": str(settings.partitions),
                "AIMDS_VERIFY_TIMEOUT_S": str(settings.verify_timeout_s),
            }
        )
        env.update(extra_env or {})
        super().__init__(env, log_path)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        yield proc
    finally:
        proc.stop()
        print(f"\n[worker log tail]\n{proc.log_tail(2000)}")


def produce(settings: Settings, items: list[tuple[bytes | None, bytes | None, int | None]]) -> int:
    """Send raw (key, value, timestamp_ms) records to the prompts topic."""
    return asyncio.run(send_all(settings, items))  # type: ignore[arg-type]


def collect(
    settings: Settings,
    topic: str,
    *,
    expect: int,
    timeout_s: float = 180.0,
    worker: WorkerProcess | None = None,
    settle_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Read an AIMDS topic from the beginning until `expect` records arrived.

    With `settle_s`, keeps following that much longer after the count is reached, so records
    that should not exist (doubles) show up in the result. Gives up after the timeout, or as
    soon as the worker process (if given) has died.
    """

    async def run() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        reader = read_topic(settings, settings.topic(topic), follow=True, timeout_s=timeout_s)
        reached_at = loop.time() if expect <= 0 else None
        try:
            while True:
                wait = None
                if reached_at is not None:
                    wait = settle_s - (loop.time() - reached_at)
                    if wait <= 0:
                        break
                try:
                    record = await asyncio.wait_for(anext(reader), wait)
                except (StopAsyncIteration, TimeoutError):
                    break
                got.append(record)
                if reached_at is None and len(got) >= expect:
                    reached_at = loop.time()
        finally:
            await reader.aclose()
        return got

    async def watched() -> list[dict[str, Any]]:
        task = asyncio.ensure_future(run())
        while not task.done():
            if worker is not None and worker.proc.poll() is not None:
                task.cancel()
                raise AssertionError(f"worker died:\n{worker.log_tail()}")
            await asyncio.wait({task}, timeout=0.5)
        return task.result()

    return asyncio.run(watched())


#: how long tests keep reading after the expected count, to catch doubles
SETTLE_S = 4.0
