"""Where Kafka and Redis come from: an external server, Testcontainers, or local processes.

One resolution rule serves the CLI (`aimds broker start`), `make run` and the test fixtures:

1. external: `AIMDS_BROKER_URL` / `AIMDS_REDIS_URL` set in the environment are used as they are;
2. testcontainers: when a Docker engine answers, `KafkaContainer` (KRaft) and `RedisContainer`;
3. local: otherwise a real Kafka broker (KRaft, jars from Maven Central) and `redis-server`
   started as local processes on free loopback ports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.errors import BrokerError
from app.runtime.local import ServerHandle, pid_alive, start_kafka, start_redis

log = logging.getLogger(__name__)


def docker_available(timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers (the `docker` CLI alone is not enough)."""
    try:
        import docker  # testcontainers' dependency; only needed on this path
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


@dataclass
class Services:
    """Kafka and Redis endpoints plus how they were obtained (`external|testcontainers|local`)."""

    kafka_url: str
    redis_url: str
    mode: str
    kafka_version: str = ""
    started_in_s: float = 0.0
    handles: list[ServerHandle] = field(default_factory=list)
    #: a temporary data directory made for these servers, removed when they stop
    owned_dir: Path | None = None
    _containers: list[Any] = field(default_factory=list, repr=False)

    def env(self) -> dict[str, str]:
        """The `AIMDS_*` variables that point a worker or CLI at these services."""
        return {"AIMDS_BROKER_URL": self.kafka_url, "AIMDS_REDIS_URL": self.redis_url}

    def stop(self) -> None:
        """Stop whatever this object started (never an external server)."""
        for handle in reversed(self.handles):
            handle.stop()
        for container in reversed(self._containers):
            with contextlib.suppress(Exception):
                container.stop()
        self.handles.clear()
        self._containers.clear()
        if self.owned_dir is not None:  # each run's Kafka log and Redis dump (~35 MB)
            shutil.rmtree(self.owned_dir, ignore_errors=True)
            self.owned_dir = None


def start_services(
    *,
    home: Path,
    kafka_version: str,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    use_docker: bool | None = None,
    max_message_bytes: int = 8 * 1024 * 1024,
) -> Services:
    """Resolve or start Kafka and Redis following the module's three-step rule."""
    env = os.environ if environ is None else environ
    started = time.monotonic()
    if env.get("AIMDS_BROKER_URL"):
        return Services(
            kafka_url=env["AIMDS_BROKER_URL"],
            redis_url=env.get("AIMDS_REDIS_URL", ""),
            mode="external",
            kafka_version=kafka_version,
        )
    if use_docker is None:
        use_docker = docker_available()
    if use_docker:
        services = _start_containers(kafka_version)
    else:
        base = data_dir or Path(tempfile.mkdtemp(prefix="aimds-services-"))
        kafka = start_kafka(
            home=home,
            data_dir=base / "kafka",
            version=kafka_version,
            max_message_bytes=max_message_bytes,
        )
        try:
            redis = start_redis(data_dir=base / "redis")
        except BrokerError:
            kafka.stop()
            raise
        services = Services(
            kafka_url=kafka.url,
            redis_url=redis.url,
            mode="local",
            kafka_version=kafka_version,
            handles=[kafka, redis],
            owned_dir=None if data_dir else base,
        )
    services.started_in_s = time.monotonic() - started
    log.info(
        "services (%s) ready in %.1fs: %s %s",
        services.mode,
        services.started_in_s,
        services.kafka_url,
        services.redis_url,
    )
    return services


def _start_containers(kafka_version: str) -> Services:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    kafka = KafkaContainer(f"apache/kafka:{kafka_version}").with_kraft()
    kafka.start()
    redis = RedisContainer("redis:7")
    try:
        redis.start()
    except Exception:
        kafka.stop()
        raise
    host = redis.get_container_host_ip()
    port = redis.get_exposed_port(6379)
    return Services(
        kafka_url="kafka://" + kafka.get_bootstrap_server(),
        redis_url=f"redis://{host}:{port}/0",
        mode="testcontainers",
        kafka_version=kafka_version,
        _containers=[kafka, redis],
    )


# --- the state file behind `aimds broker start|stop|status` ---------------------------------


def state_path(home: Path) -> Path:
    """Where `aimds broker start` records what it started."""
    return home / "run" / "services.json"


def save_state(home: Path, svc: Services) -> None:
    """Record locally started servers so other commands find and stop them."""
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "mode": svc.mode,
        "kafka_url": svc.kafka_url,
        "redis_url": svc.redis_url,
        "kafka_version": svc.kafka_version,
        "handles": [asdict(h) for h in svc.handles],
    }
    path.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))


def load_state(home: Path) -> Services | None:
    """The services recorded by `aimds broker start`, if their processes still run."""
    path = state_path(home)
    if not path.exists():
        return None
    state = orjson.loads(path.read_bytes())
    handles = [ServerHandle(**h) for h in state.get("handles", [])]
    if not handles or not all(pid_alive(h.pid) for h in handles):
        return None
    return Services(
        kafka_url=state["kafka_url"],
        redis_url=state["redis_url"],
        mode=state["mode"],
        kafka_version=state.get("kafka_version", ""),
        handles=handles,
    )


def clear_state(home: Path) -> None:
    """Forget the recorded services."""
    state_path(home).unlink(missing_ok=True)
