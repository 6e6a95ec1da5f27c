"""Wire records: parsing and validating prompts, and the decision/dead-letter/verification records.

Parsing is the only place raw bytes become a `Prompt`. Validation is driven by the JSON
Schemas in `topics/schemas/` (compiled once with fastjsonschema) so the schema published to
producers and the check the worker applies cannot drift apart.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fastjsonschema
import orjson

from app.errors import (
    ConfigError,
    EmptyText,
    InvalidEncoding,
    InvalidJson,
    SchemaViolation,
    TextTooLarge,
    TimestampOutOfRange,
)
from topics.schemas import validator


class Action(enum.StrEnum):
    """A final verdict on a prompt."""

    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    ESCALATE = "ESCALATE"


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt on its way to an LLM, as read from `aimds.prompts`."""

    id: str
    session_id: str
    text: str
    ts: float  # seconds since the epoch (UTC)
    user_id: str | None = None
    tenant: str | None = None
    role: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form of this prompt (optional fields left out when unset)."""
        out: dict[str, Any] = {
            "id": self.id,
            "session_id": self.session_id,
            "text": self.text,
            "ts": self.ts,
        }
        for name in ("user_id", "tenant", "role"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def parse_timestamp(value: Any) -> float:
    """Accept epoch seconds, epoch milliseconds or an ISO-8601 string; return epoch seconds.

    A time before 1970 (or NaN) is a `SchemaViolation`.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SchemaViolation(f"ts: not an ISO-8601 timestamp: {value[:40]!r}") from exc
        if parsed.tzinfo is None:
            raise SchemaViolation("ts: ISO-8601 timestamp needs a time zone")
        seconds = parsed.timestamp()
    else:
        seconds = float(value)
        # Anything past year 5138 in seconds is surely milliseconds.
        seconds = seconds / 1000.0 if seconds > 1e11 else seconds
    if not seconds >= 0.0:  # also NaN
        raise SchemaViolation(f"ts: {seconds!r} is before 1970")
    return seconds


def parse_prompt(
    raw: bytes | bytearray | memoryview | None,
    *,
    max_text_chars: int,
    latest_ts: float | None = None,
) -> Prompt:
    """Turn raw record bytes into a validated `Prompt` or raise a `ParseError` subclass.

    With `latest_ts` (the caller's clock plus the allowed skew), a later `ts` is refused.
    """
    obj = _checked_object(raw, "prompt", max_text_chars=max_text_chars)
    ts = parse_timestamp(obj["ts"])
    if latest_ts is not None and ts > latest_ts:
        raise TimestampOutOfRange(
            f"ts {ts:.0f} is {ts - latest_ts:.0f}s past the latest time accepted ({latest_ts:.0f})"
        )
    return Prompt(
        id=obj["id"],
        session_id=obj["session_id"],
        text=obj["text"],
        ts=ts,
        user_id=obj.get("user_id"),
        tenant=obj.get("tenant"),
        role=obj.get("role"),
        metadata=obj.get("metadata") or {},
    )


def _checked_object(
    raw: bytes | bytearray | memoryview | None, schema: str, *, max_text_chars: int
) -> dict[str, Any]:
    """Raw bytes to a JSON object valid under `schema` with a non-empty `text` (or ParseError)."""
    if raw is None:
        raise InvalidJson("record has no value (tombstone)")
    data = bytes(raw)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(f"value is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        obj = orjson.loads(decoded)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"value is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidJson(f"value is a JSON {type(obj).__name__}, expected an object")
    text = obj.get("text")
    if isinstance(text, str) and len(text) > max_text_chars:
        # checked before schema validation so a huge text is not walked twice
        raise TextTooLarge(f"text has {len(text)} characters, the limit is {max_text_chars}")
    try:
        validator(schema)(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaViolation(f"{exc.name}: {exc.message}") from exc
    if is_blank(obj["text"]):
        raise EmptyText("text is empty, or only whitespace and invisible characters")
    return obj


#: what shows nothing and carries nothing the normalizer reads: whitespace, zero-width and
#: bidi marks, fillers, control characters (tag characters and variation selectors can carry
#: hidden text, so a prompt made of those is screened)
_BLANK = re.compile(
    "[\\s\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufeff\uffa0\x00-\x1f\x7f-\x9f]*"
)


def open_input(path: str | Path, *, binary: bool = False) -> IO[Any]:
    """Open a file of records for reading; a missing or unreadable one is a `ConfigError`."""
    try:
        if binary:
            return Path(path).open("rb")
        return Path(path).open(encoding="utf-8", errors="replace")
    except OSError as exc:  # missing, a directory, unreadable: say so, no traceback
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def is_blank(text: str) -> bool:
    """Whether a prompt text shows nothing (dead-lettered as `empty_text`)."""
    return _BLANK.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Feedback:
    """An analyst's or the verifier's label for a prompt, as read from `aimds.feedback`."""

    prompt_id: str
    label: str  # "attack", "benign", or "proposed" (the verifier's, for an analyst to confirm)
    text: str
    source: str  # analyst id, or "verifier" on proposals
    ts: float
    session_id: str | None = None
    category: str | None = None
    severity: float | None = None


def parse_feedback(raw: bytes | bytearray | memoryview | None, *, max_text_chars: int) -> Feedback:
    """Turn raw record bytes into a validated `Feedback` or raise a `ParseError` subclass."""
    obj = _checked_object(raw, "feedback", max_text_chars=max_text_chars)
    return Feedback(
        prompt_id=obj["prompt_id"],
        label=obj["label"],
        text=obj["text"],
        source=obj["source"],
        ts=parse_timestamp(obj["ts"]),
        session_id=obj.get("session_id"),
        category=obj.get("category"),
        severity=obj.get("severity"),
    )
