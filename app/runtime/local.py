"""Real Kafka (KRaft) and Redis servers as local processes, for development and tests.

Kafka runs from the jars of `org.apache.kafka:kafka_2.13` that Maven resolves from Maven
Central (the pom next to this module); they are cached under `<home>/kafka/<version>/libs`
and in `~/.m2`, so only the first start downloads. Redis runs from the Debian package's
`redis-server`. Both listen on free loopback ports, log to files under their data directory,
and are stopped by PID.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from app.errors import BrokerError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (and is not a zombie we own)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM a process (group), wait, then SIGKILL what is left."""
    if not pid_alive(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
    raise BrokerError(f"process {pid} did not stop")


class WorkerProcess:
    """`aimds worker` as a child process (its own session) logging to one file; the
    integration tests' and the restart soak's worker."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--log-level", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, size: int = 6000) -> str:
        return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Return once the log says `Worker ready`; raise if the worker died or took longer."""
        deadline = time.monotonic() + timeout_s
        while b"Worker ready" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BrokerError(f"worker not ready; see {self.log_path}")
            time.sleep(0.2)

    def signal(self, sig: int, timeout_s: float = 60.0) -> None:
        """Send `sig` (SIGTERM: a graceful stop, SIGKILL: a crash) and wait for the exit."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout_s)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=30)
        self.proc.wait(timeout=10)  # reap it
        self._log.close()


def _pom() -> Path:
    return Path(str(resources.files("app.runtime").joinpath("kafka/pom.xml")))


def ensure_kafka_jars(home: Path, version: str) -> Path:
    """Resolve the broker jars of Kafka `version` with Maven once; return their directory."""
    libs = home / "kafka" / version / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH: it is needed to fetch the Kafka jars")
    libs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log.info("resolving Kafka %s jars with Maven into %s", version, libs)
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(_pom()),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0 or not any(libs.glob(f"kafka_2.13-{version}.jar")):
        raise BrokerError(
            f"Maven could not resolve Kafka {version}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    marker.write_text(version)
    log.info("Kafka %s jars ready in %.1fs", version, time.monotonic() - started)
    return libs


@dataclass(frozen=True, slots=True)
class ServerHandle:
    """A running local server: what it is, where it listens, its PID and files."""

    kind: str
    pid: int
    port: int
    url: str
    data_dir: str
    log_file: str
    version: str

    def alive(self) -> bool:
        """Whether the process still runs."""
        return pid_alive(self.pid)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the process by PID."""
        stop_pid(self.pid, timeout=timeout)


def _cluster_id() -> str:
    """A random KRaft cluster id (22 URL-safe base64 characters; may begin with '-')."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _group_coordinator_ready(port: int) -> bool:
    """Whether the broker answers for consumer groups yet.

    The first such request creates the offsets topic, and until it exists a consumer's
    group join fails with GroupCoordinatorNotAvailable, which aiokafka logs as an ERROR in
    the worker's log at every fresh start. Asked here, the topic is there before any worker.
    """
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def ask() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            await admin.start()
            await admin.find_coordinator("aimds-readiness")
            return True
        except KafkaError:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(ask())


def start_kafka(
    *,
    home: Path,
    data_dir: Path,
    version: str = "3.9.1",
    port: int | None = None,
    max_message_bytes: int = 8 * 1024 * 1024,
    heap: str = "768m",
    timeout: float = 90.0,
) -> ServerHandle:
    """Format KRaft storage and start a single-node Kafka broker+controller; wait until ready."""
    java = shutil.which("java")
    if java is None:
        raise BrokerError("java is not on PATH: the local Kafka broker needs Java 17+")
    libs = ensure_kafka_jars(home, version)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    controller_port = free_port()
    props = data_dir / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data_dir / 'logs'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                f"message.max.bytes={max_message_bytes}",
                f"replica.fetch.max.bytes={max_message_bytes}",
                "log.retention.check.interval.ms=60000",
            ]
        )
        + "\n"
    )
    classpath = f"{libs}/*"
    log_file = data_dir / "kafka.log"
    fmt = subprocess.run(  # noqa: S603
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format"]
        # `--cluster-id=`: an id beginning with '-' (1 in 64) passed as a separate argument
        # is taken for an option, and the format fails
        + [f"--cluster-id={_cluster_id()}", "--config", str(props)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if fmt.returncode != 0:
        raise BrokerError(f"kafka storage format failed:\n{fmt.stdout}{fmt.stderr}")
    with log_file.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            [java, f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
            + ["-cp", classpath, "kafka.Kafka", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    handle = ServerHandle(
        kind="kafka",
        pid=proc.pid,
        port=port,
        url=f"kafka://127.0.0.1:{port}",
        data_dir=str(data_dir),
        log_file=str(log_file),
        version=version,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(
                f"Kafka exited with {proc.returncode}; see {log_file}:\n{_tail(log_file)}"
            )
        if (
            port_open(port)
            and "Kafka Server started" in _tail(log_file, 200_000)
            and _group_coordinator_ready(port)
        ):
            return handle
        time.sleep(0.2)
    handle.stop()
    raise BrokerError(f"Kafka did not become ready within {timeout:.0f}s; see {log_file}")


def start_redis(*, data_dir: Path, port: int | None = None, timeout: float = 20.0) -> ServerHandle:
    """Start `redis-server` on a loopback port without persistence; wait until it answers."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BrokerError("redis-server is not on PATH (Debian: apt-get install -y redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_file = data_dir / "redis.log"
    proc = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(data_dir), "--logfile", str(log_file), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    handle = ServerHandle(
        kind="redis",
        pid=proc.pid,
        port=port,
        url=f"redis://127.0.0.1:{port}/0",
        data_dir=str(data_dir),
        log_file=str(log_file),
        version=_redis_version(binary),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"redis-server exited with {proc.returncode}: {_tail(log_file)}")
        if _redis_ping(port):
            return handle
        time.sleep(0.1)
    handle.stop()
    raise BrokerError(f"redis-server did not answer within {timeout:.0f}s")


def _redis_version(binary: str) -> str:
    out = subprocess.run(  # noqa: S603
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return "unknown"


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _tail(path: Path, size: int = 4000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
