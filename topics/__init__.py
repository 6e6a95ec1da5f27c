"""Every AIMDS topic: names, keys, partitions, retention/compaction and wire schema.

| topic                 | key         | value schema    | cleanup            |
| --------------------- | ----------- | --------------- | ------------------ |
| `<p>.prompts`         | session_id  | prompt.json     | delete (retention) |
| `<p>.decisions`       | session_id  | decision.json   | delete (retention) |
| `<p>.verification`    | session_id  | verification.json | delete (retention) |
| `<p>.feedback`        | prompt_id   | feedback.json   | delete (retention) |
| `<p>.patterns`        | pattern_id  | pattern.json    | compact            |
| `<p>.deadletter`      | source key  | deadletter.json | delete (retention) |

`<p>` is `Settings.topic_prefix` (default `aimds`). Values are UTF-8 JSON written with orjson;
Faust topics are declared with the `raw` serializer so parsing stays in `app.records`, where
bad bytes become dead-letter records instead of exceptions inside Faust.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings
from app.windows import SESSION_WINDOW_S


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one topic is created on the broker."""

    suffix: str
    name: str
    partitions: int
    key: str
    schema: str
    config: dict[str, str]


#: the agents' tables; Faust names their changelogs `<app_id>-<table>-changelog`
TABLES = (
    "session-state-windowed",
    "prompts-per-session-1m",
    "blocked-per-session-10m",
    "seen-prompt-ids",
    "verified-records",
)


def changelog_specs(settings: Settings) -> list[TopicSpec]:
    """The tables' changelog topics, created up front with the agents' topics.

    Faust declares changelogs itself, but asynchronously: a record that arrives before the
    declaration is visible fails with "changelog topic has 0 partitions". Creating them with
    the same partition count as `<p>.prompts` before the worker starts removes that race.
    """
    expires = table_expiry_s(settings)
    specs = []
    for table in TABLES:
        config = {"max.message.bytes": str(settings.max_message_bytes)}
        window_s = expires[table]
        if window_s is None:
            config["cleanup.policy"] = "compact"
        else:  # windowed: every window is a new key, so old windows must also be deleted
            config["cleanup.policy"] = "compact,delete"
            config["retention.ms"] = str(int(window_s * 1000))
        name = f"{settings.app_id}-{table}-changelog"
        specs.append(
            TopicSpec(f"changelog:{table}", name, settings.partitions, "table key", "", config)
        )
    return specs


def table_expiry_s(settings: Settings) -> dict[str, float | None]:
    """How long each table keeps a window (None: not windowed)."""
    return {
        "session-state-windowed": 2 * SESSION_WINDOW_S,
        "prompts-per-session-1m": 600.0,
        "blocked-per-session-10m": 3600.0,
        "seen-prompt-ids": 2 * settings.dedup_ttl_s,
        "verified-records": 2 * settings.dedup_ttl_s,
    }


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The six AIMDS topics for these settings."""
    retention = str(settings.retention_ms)
    max_bytes = str(settings.max_message_bytes)
    delete = {"cleanup.policy": "delete", "retention.ms": retention, "max.message.bytes": max_bytes}
    # prompts carry their event time as the Kafka time (replays of old logs): kept by size, or
    # time-based retention would delete an old log's records before any worker reads them
    by_size = dict(
        delete, **{"retention.ms": "-1", "retention.bytes": str(settings.prompts_retention_bytes)}
    )
    compact = {"cleanup.policy": "compact", "max.message.bytes": max_bytes}
    n = settings.partitions
    rows = [
        ("prompts", n, "session_id", "prompt", by_size),
        ("decisions", n, "session_id", "decision", delete),
        ("verification", n, "session_id", "verification", delete),
        ("feedback", max(1, n // 2), "prompt_id", "feedback", delete),
        ("patterns", 1, "pattern_id", "pattern", compact),
        ("deadletter", max(1, n // 2), "source key", "deadletter", delete),
    ]
    return [
        TopicSpec(suffix, settings.topic(suffix), parts, key, schema, dict(cfg))
        for suffix, parts, key, schema, cfg in rows
    ]
