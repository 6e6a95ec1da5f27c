"""Parsing prompt records: valid forms, every bad-input class, and schema/parser agreement."""

from __future__ import annotations

import jsonschema
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.errors import ParseError, SchemaViolation, TextTooLarge
from app.records import Prompt, is_blank, parse_prompt, parse_timestamp
from tests.badinput import BAD_INPUTS, MAX_TEXT_CHARS, good
from topics.schemas import load_schema

#: the latest event time `parse` accepts: a fixed clock (in 2030), so that no result depends
#: on the day the tests run (with today's clock, generated times near it were flaky)
LATEST_TS = 1_900_000_000.0


def parse(raw: bytes | None) -> Prompt:
    # as the pipeline parses: no event time past the clock plus the allowed skew
    return parse_prompt(raw, max_text_chars=MAX_TEXT_CHARS, latest_ts=LATEST_TS)


def test_valid_record_round_trips() -> None:
    raw = orjson.dumps(
        {
            "id": "p1",
            "session_id": "s1",
            "text": "hello",
            "ts": 1_700_000_000.5,
            "user_id": "u",
            "tenant": "t",
            "role": "user",
            "metadata": {"app": "x"},
        }
    )
    prompt = parse(raw)
    assert prompt == Prompt("p1", "s1", "hello", 1_700_000_000.5, "u", "t", "user", {"app": "x"})
    assert parse(orjson.dumps(prompt.to_wire())) == prompt


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000_123, 1_700_000_000.123),  # milliseconds
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
    ],
)
def test_timestamp_forms(ts: object, expected: float) -> None:
    assert parse_timestamp(ts) == pytest.approx(expected)


def test_naive_iso_timestamp_is_rejected() -> None:
    with pytest.raises(SchemaViolation, match="time zone"):
        parse_timestamp("2023-11-14T22:13:20")


@pytest.mark.parametrize(("name", "raw", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_raises_parse_error_with_reason(
    name: str, raw: bytes | None, reason: str
) -> None:
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert info.value.reason == reason
    assert str(info.value)  # a message a human can read


def test_text_limit_is_a_setting() -> None:
    raw = good(1, text="x" * 101)
    with pytest.raises(TextTooLarge):
        parse_prompt(raw, max_text_chars=100)
    assert parse_prompt(raw, max_text_chars=101).text == "x" * 101


def _valid_by_schema(obj: object) -> bool:
    try:
        jsonschema.validate(obj, load_schema("prompt"))
    except jsonschema.ValidationError:
        return False
    return True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2_000_000_000_000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.text(min_size=1, max_size=8),
        "session_id": json_values | st.text(min_size=1, max_size=8),
        "text": json_values | st.text(min_size=1, max_size=20),
        "ts": json_values | st.floats(0, 2e9, allow_nan=False),
        "role": st.sampled_from(["user", "system", "root", None]),
        "metadata": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(records)
@example({"id": "a", "session_id": "s", "text": "hi", "ts": 1.95e9})  # past the clock
def test_parser_agrees_with_published_schema(obj: dict) -> None:
    """The worker's validation and the JSON Schema handed to producers accept the same records
    (up to the checks a schema cannot express: empty text, timestamp string syntax, and an
    event time ahead of the worker's clock)."""
    raw = orjson.dumps(obj)
    try:
        parse(raw)
        accepted = True
    except ParseError:
        accepted = False
    if accepted:
        assert _valid_by_schema(obj)
    elif _valid_by_schema(obj):
        text, ts = obj["text"], obj["ts"]
        assert is_blank(text) or isinstance(ts, str) or ts > LATEST_TS


@pytest.mark.parametrize(
    ("ts", "latest", "accepted"),
    [(1_700_000_000.0, 1_700_000_000.0, True), (1_700_000_000.5, 1_700_000_000.0, False)],
)
def test_a_ts_past_the_latest_accepted_time_is_refused(
    ts: float, latest: float, accepted: bool
) -> None:
    from app.errors import TimestampOutOfRange

    raw = orjson.dumps({"id": "p", "session_id": "s", "text": "hi", "ts": ts})
    if accepted:
        assert parse_prompt(raw, max_text_chars=10, latest_ts=latest).ts == ts
    else:
        with pytest.raises(TimestampOutOfRange, match="past the latest time accepted"):
            parse_prompt(raw, max_text_chars=10, latest_ts=latest)
    assert parse_prompt(raw, max_text_chars=10).ts == ts  # no bound without a clock
