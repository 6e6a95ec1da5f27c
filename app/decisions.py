"""Builders of the records AIMDS writes: decisions, verification requests and dead letters.

Every builder returns a plain JSON-ready dict that validates against its schema in
`topics/schemas/`; agents only serialize and send them.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from app.errors import ParseError, SchemaViolation
from app.records import Action, Prompt, parse_prompt
from app.screening import ScreenResult

OPT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def to_bytes(record: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a record."""
    return orjson.dumps(record, option=OPT)


def match_wire(match: Any) -> dict[str, Any]:
    """The wire form of a pattern match (`PatternMatch` of the pattern store)."""
    return {
        "id": match.pattern_id,
        "category": match.category,
        "severity": round(float(match.severity), 4),
        "similarity": round(float(match.similarity), 4),
        "source": match.source,
    }


def decision_record(
    prompt: Prompt,
    *,
    action: Action,
    score: float,
    stage: str,
    reasons: Iterable[str],
    categories: Iterable[str] = (),
    matched_patterns: Iterable[Mapping[str, Any]] = (),
    violated_policies: Iterable[str] = (),
    timings_us: Mapping[str, int],
    model_version: str,
    pattern_version: str,
    verification: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The final verdict on one prompt (`decision.json`)."""
    return {
        "prompt_id": prompt.id,
        "session_id": prompt.session_id,
        "action": str(action),
        "score": round(min(1.0, max(0.0, float(score))), 6),
        "stage": stage,
        "reasons": list(reasons),
        "categories": list(categories),
        "matched_patterns": [dict(m) for m in matched_patterns],
        "violated_policies": list(violated_policies),
        "timings_us": {k: max(0, int(v)) for k, v in timings_us.items()},
        "model_version": model_version,
        "pattern_version": pattern_version,
        "ts": prompt.ts,
        "decided_at": time.time(),
        "verification": dict(verification) if verification is not None else None,
    }


def screened_decision(prompt: Prompt, result: ScreenResult) -> dict[str, Any]:
    """The decision record of a prompt the screening stage decided on its own."""
    return decision_record(
        prompt,
        action=result.action,
        score=result.score,
        stage=result.stage,
        reasons=result.reasons,
        categories=result.categories,
        matched_patterns=[match_wire(m) for m in result.matches],
        timings_us=result.timings_us,
        model_version=result.model_version,
        pattern_version=result.pattern_version,
    )


def verification_request(prompt: Prompt, result: ScreenResult) -> dict[str, Any]:
    """What the screen agent sends to `aimds.verification` for an undecided prompt."""
    return {
        "prompt": prompt.to_wire(),
        "screen": {
            "score": result.score,
            "stage": result.stage,
            "reasons": list(result.reasons),
            "categories": list(result.categories),
            "matched_patterns": [match_wire(m) for m in result.matches],
            "scores": dict(result.scores),
            "session": dict(result.session_facts),
            "timings_us": dict(result.timings_us),
            "model_version": result.model_version,
            "pattern_version": result.pattern_version,
        },
        "routed_at": time.time(),
    }


def parse_verification_request(
    raw: bytes | None, *, max_text_chars: int
) -> tuple[Prompt, dict[str, Any]]:
    """Parse and validate a verification request; `ParseError` on bad input."""
    from topics.schemas import validator

    if raw is None:
        raise SchemaViolation("verification request has no value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SchemaViolation(f"verification request is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), dict):
        raise SchemaViolation("verification request must be an object with a prompt")
    prompt = parse_prompt(orjson.dumps(obj["prompt"]), max_text_chars=max_text_chars)
    try:
        validator("verification")(obj)
    except Exception as exc:  # fastjsonschema.JsonSchemaValueException
        raise SchemaViolation(f"verification request: {exc}") from exc
    return prompt, obj["screen"]


def dead_letter(
    raw: bytes | None,
    *,
    key: bytes | None,
    stage: str,
    error: BaseException,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    prompt: Prompt | None = None,
    max_raw_bytes: int | None = None,
) -> dict[str, Any]:
    """A dead-letter record (`deadletter.json`) that keeps the raw bytes for replay.

    With `max_raw_bytes`, a longer record keeps its first `max_raw_bytes` bytes, marked
    `raw_truncated`, with the SHA-256 of the whole (a dead letter must fit on its topic).
    """
    reason = error.reason if isinstance(error, ParseError) else "internal_error"
    extra: dict[str, Any] = {}
    if raw is not None and max_raw_bytes is not None and len(raw) > max_raw_bytes:
        extra = {"raw_truncated": True, "raw_sha256": hashlib.sha256(raw).hexdigest()}
        raw_kept: bytes | None = bytes(raw[: max(0, max_raw_bytes)])
    else:
        raw_kept = raw
    return {
        "stage": stage,
        "error_class": type(error).__name__,
        "reason": reason,
        "message": str(error)[:2000],
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "raw_b64": base64.b64encode(raw_kept).decode() if raw_kept is not None else None,
        "raw_size": len(raw) if raw is not None else 0,
        **_ids_of(raw, prompt),
        "ts": time.time(),
        **extra,
    }


def _ids_of(raw: bytes | None, prompt: Prompt | None) -> dict[str, str | None]:
    """The prompt and session ids of a dead letter: the prompt's, or what the raw record names.

    A record that failed to parse may still name them (a duplicate, a bad `ts`): they let an
    operator find the prompt. Only short string ids of a JSON object are taken.
    """
    if prompt is not None:
        return {"prompt_id": prompt.id, "session_id": prompt.session_id}
    ids: dict[str, str | None] = {"prompt_id": None, "session_id": None}
    if raw is None or len(raw) > 1 << 20:
        return ids
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ids
    if isinstance(obj, dict):
        for name, field in (("prompt_id", "id"), ("session_id", "session_id")):
            value = obj.get(field)
            if isinstance(value, str) and len(value) <= 256:
                ids[name] = value
    return ids


def dead_letter_raw_budget(max_message_bytes: int) -> int:
    """Raw bytes a dead letter can keep and still fit in `max_message_bytes` once base64'd."""
    return max(0, (max_message_bytes - 64 * 1024) * 3 // 4)
