"""Tests for the producer-side helpers of app.kafka_io (no broker needed)."""

from __future__ import annotations

import pytest

from app.kafka_io import prompt_records, record_key, record_timestamp_ms


def test_lines_become_prompt_records_and_typos_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = [
        '{"id": "a", "session_id": "s1", "text": "hi", "ts": 5}\n',
        "\n",
        "plain text prompt\n",
        '{"id": "b", "text": "oops", "ts": 1e400\n',
    ]
    with caplog.at_level("WARNING", logger="app.kafka_io"):
        records = list(prompt_records(lines, clock=lambda: 7.0))
    assert records[0] == {"id": "a", "session_id": "s1", "text": "hi", "ts": 5}
    assert records[1]["text"] == "plain text prompt" and records[1]["ts"] == 7.0
    assert records[1]["session_id"] == "cli"
    # nothing is lost: the broken line is still sent, as text, and the log names its line
    assert records[2]["text"] == lines[3].rstrip("\n")
    assert len(records) == 3
    assert "line 4 is not a JSON record" in caplog.text
    assert [record_key(r) for r in records] == [b"s1", b"cli", b"cli"]


def test_a_session_given_on_the_command_line_wins() -> None:
    (record,) = prompt_records(['{"session_id": "x", "text": "hi"}'], session="forced")
    assert record["session_id"] == "forced"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1_700_000_000, 1_700_000_000_000),  # seconds
        (1_700_000_000_123, 1_700_000_000_123),  # milliseconds
        (1e20, None),  # no Kafka timestamp holds it: the broker's time, the worker refuses it
        (1e300, None),
        (10**400, None),  # no float holds it
        (-5, None),
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),  # ISO-8601, as the worker reads it
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000),
        ("yesterday", None),  # not a time: the worker dead-letters it
        ("2026-01-01T00:00:00", None),  # no time zone: likewise
        (True, None),
    ],
)
def test_kafka_timestamps_follow_the_event_times_it_can_hold(
    ts: object, expected: int | None
) -> None:
    assert record_timestamp_ms({"ts": ts}) == expected
