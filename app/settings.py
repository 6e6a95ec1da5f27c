"""One frozen `Settings` object, built once at start from `AIMDS_*` environment variables.

Every setting has a default that works on a developer machine (`make run`); each field's
environment variable is its upper-cased name with the `AIMDS_` prefix, e.g. `broker_url` is
`AIMDS_BROKER_URL`. Invalid values raise `ConfigError` naming the variable, so a worker with a
bad configuration stops at start-up instead of misbehaving later.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlparse

from app.errors import ConfigError

PREFIX = "AIMDS_"

TOPIC_SUFFIXES = ("prompts", "decisions", "verification", "feedback", "patterns", "deadletter")


def _default_home() -> str:
    return str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aimds")


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration of AIMDS (all fields read from `AIMDS_<NAME>`)."""

    #: Kafka bootstrap servers, `kafka://host:port[,host:port]`
    broker_url: str = "kafka://127.0.0.1:9092"
    #: Redis for verdict/proof caches; empty string disables Redis (everything still correct)
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Faust application id (= consumer group)
    app_id: str = "aimds"
    #: prefix of every topic name: `<prefix>.prompts`, `<prefix>.decisions`, ...
    topic_prefix: str = "aimds"
    #: partitions of the prompts, decisions and verification topics
    partitions: int = 4
    replication_factor: int = 1
    #: retention of the decisions/verification/feedback/deadletter topics (ms); patterns is
    #: compacted, prompts kept by size
    retention_ms: int = 7 * 24 * 3600 * 1000
    #: retention of the prompts topic per partition (bytes): their Kafka time is the prompt's
    #: event time, which may be old (replays), so they are kept by size, not by time
    prompts_retention_bytes: int = 1 << 30
    #: largest prompt text accepted (characters); longer texts are dead-lettered
    max_text_chars: int = 200_000
    #: how far ahead of this worker's clock a prompt's `ts` or its Kafka time may be (seconds)
    max_clock_skew_s: float = 300.0
    #: largest Kafka record the producer/consumer/broker handle (bytes)
    max_message_bytes: int = 8 * 1024 * 1024
    #: Faust table store: `memory://` or `rocksdb://`
    store: str = "memory://"
    #: fused score at or above which a prompt is BLOCKed (empty = the trained model's own)
    block_threshold: float | None = None
    #: fused score below which a prompt is ALLOWed (empty = the trained model's own)
    allow_threshold: float | None = None
    #: seconds a prompt id is remembered per session to reject duplicates
    dedup_ttl_s: float = 3600.0
    #: per-obligation time budget of the verify agent (seconds)
    verify_timeout_s: float = 2.0
    #: prompts the screen agent normalizes and embeds together (> 1 pays off with the
    #: semantic embedders, whose cost per prompt falls in a batch) and how long it waits to
    #: fill a batch (seconds)
    screen_batch: int = 1
    screen_batch_wait_s: float = 0.02
    #: policy file for verification (empty = the packaged default set)
    policy_file: str = ""
    #: embedder of the pattern stage: `hashing`, `static`, `minilm` or `use`; it must be the
    #: one the fusion model was trained with (`aimds train --embedder`)
    embedder: str = "hashing"
    #: trained fusion model and pattern store (empty = packaged artifacts)
    model_path: str = ""
    pattern_store_path: str = ""
    #: Ed25519 private key (PEM) the learn agent signs pattern updates with; empty = this
    #: worker does not turn feedback into patterns
    pattern_signing_key: str = ""
    #: public keys (PEM paths, comma-separated) whose pattern updates this worker applies;
    #: empty = the signing key's own public key, or no updates at all without one
    pattern_trusted_keys: str = ""
    #: learned patterns in the exact delta buffer before the index is rebuilt in the background
    pattern_rebuild_after: int = 256
    #: patterns the learn agent learns in any hour at most; more feedback is dead-lettered
    feedback_max_per_hour: int = 1000
    #: where the local broker/redis keep jars, data and logs
    home: str = dataclasses.field(default_factory=_default_home)
    #: Apache Kafka version of the local broker
    kafka_version: str = "3.9.1"
    #: Faust web server port (0 = disabled)
    web_port: int = 0
    #: log level of the worker
    log_level: str = "info"

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("invalid AIMDS configuration:\n  " + "\n  ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not self.broker_url.startswith("kafka://") or not self.bootstrap_servers:
            out.append(f"AIMDS_BROKER_URL={self.broker_url!r}: expected kafka://host:port[,...]")
        if self.redis_url and urlparse(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            out.append(f"AIMDS_REDIS_URL={self.redis_url!r}: expected redis://host:port/db or ''")
        if not self.topic_prefix or any(c in self.topic_prefix for c in " /\\,:"):
            out.append(f"AIMDS_TOPIC_PREFIX={self.topic_prefix!r}: not a valid topic prefix")
        for name in ("partitions", "replication_factor", "retention_ms", "max_text_chars"):
            if getattr(self, name) < 1:
                out.append(f"AIMDS_{name.upper()}={getattr(self, name)}: must be >= 1")
        if not 0.0 <= self.max_clock_skew_s <= 86_400.0:
            out.append(f"AIMDS_MAX_CLOCK_SKEW_S={self.max_clock_skew_s}: must be within [0, 86400]")
        if self.prompts_retention_bytes < self.max_message_bytes:
            out.append("AIMDS_PROMPTS_RETENTION_BYTES: must be at least AIMDS_MAX_MESSAGE_BYTES")
        if self.max_message_bytes < 1024 * 1024:
            out.append("AIMDS_MAX_MESSAGE_BYTES: must be at least 1 MiB")
        for name in ("block_threshold", "allow_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                out.append(f"AIMDS_{name.upper()}={value}: must be within [0, 1]")
        if (
            self.block_threshold is not None
            and self.allow_threshold is not None
            and self.allow_threshold > self.block_threshold
        ):
            out.append("AIMDS_ALLOW_THRESHOLD must not exceed AIMDS_BLOCK_THRESHOLD")
        if self.store.split("://")[0] not in ("memory", "rocksdb"):
            out.append(f"AIMDS_STORE={self.store!r}: expected memory:// or rocksdb://")
        from app.embedders import EMBEDDER_NAMES  # numpy: only when settings are checked

        if self.embedder not in EMBEDDER_NAMES:
            out.append(
                f"AIMDS_EMBEDDER={self.embedder!r}: expected one of {', '.join(EMBEDDER_NAMES)}"
            )
        if self.verify_timeout_s <= 0 or self.dedup_ttl_s <= 0:
            out.append("AIMDS_VERIFY_TIMEOUT_S and AIMDS_DEDUP_TTL_S must be > 0")
        if not 1 <= self.screen_batch <= 1024 or not 0 < self.screen_batch_wait_s <= 10:
            out.append(
                "AIMDS_SCREEN_BATCH must be within 1..1024 and AIMDS_SCREEN_BATCH_WAIT_S "
                "within (0, 10]"
            )
        if self.pattern_rebuild_after < 1:
            out.append("AIMDS_PATTERN_REBUILD_AFTER: must be >= 1")
        if self.feedback_max_per_hour < 1:
            out.append("AIMDS_FEEDBACK_MAX_PER_HOUR: must be >= 1")
        if not 0 <= self.web_port < 65536:
            out.append(f"AIMDS_WEB_PORT={self.web_port}: not a port")
        return out

    @property
    def bootstrap_servers(self) -> str:
        """`host:port,...` as aiokafka wants it."""
        return self.broker_url.removeprefix("kafka://").strip("/")

    def topic(self, suffix: str) -> str:
        """Full name of one of the six AIMDS topics (`prompts`, `decisions`, ...)."""
        if suffix not in TOPIC_SUFFIXES:
            raise KeyError(suffix)
        return f"{self.topic_prefix}.{suffix}"

    @property
    def trusted_key_paths(self) -> list[str]:
        """The public keys pattern updates are checked against (see `pattern_trusted_keys`)."""
        return [p.strip() for p in self.pattern_trusted_keys.split(",") if p.strip()]

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `AIMDS_*` variables; unknown `AIMDS_*` names are errors."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX) :].lower()
            if name not in known:
                problems.append(f"{key}: unknown setting")
                continue
            try:
                values[name] = _coerce(raw, hints[name])
            except ValueError as exc:
                problems.append(f"{key}={raw!r}: {exc}")
        if problems:
            raise ConfigError("invalid AIMDS configuration:\n  " + "\n  ".join(problems))
        return cls(**values)


def _coerce(raw: str, hint: Any) -> Any:
    text = raw.strip()
    optional = "None" in str(hint)
    if optional and text == "":
        return None
    base = str(hint).replace(" | None", "")
    if base in ("int", "<class 'int'>"):
        return int(text)
    if base in ("float", "<class 'float'>"):
        return float(text)
    if base in ("bool", "<class 'bool'>"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected a boolean")
    return text
