"""The in-process pipeline: dead letters, duplicates, failing closed, routing to verification."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.pipeline import LocalScanner, Pipeline
from app.records import Action, Prompt
from app.screening import RuleScreener, ScreenResult
from tests.badinput import BAD_INPUTS, MAX_TEXT_CHARS, duplicate_pair, good
from tests.schema_check import assert_valid


def scanner(screener: Any = None, verifier: Any = None) -> LocalScanner:
    return LocalScanner(
        Pipeline(
            screener=screener or RuleScreener(), verifier=verifier, max_text_chars=MAX_TEXT_CHARS
        )
    )


@pytest.mark.parametrize(("name", "raw", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_becomes_a_dead_letter(name: str, raw: bytes | None, reason: str) -> None:
    topic, record = scanner().process(raw, key=b"k", offset=7)
    assert topic == "deadletter"
    assert record["reason"] == reason
    assert record["stage"] == "parse"
    assert record["offset"] == 7
    assert record["raw_size"] == (len(raw) if raw is not None else 0)
    assert_valid(record, "deadletter")


def test_good_records_around_bad_ones_still_get_decisions() -> None:
    s = scanner()
    outputs = []
    for i, (_, raw, _) in enumerate(BAD_INPUTS):
        outputs.append(s.process(good(i)))
        outputs.append(s.process(raw))
    decisions = [r for t, r in outputs if t == "decisions"]
    assert [d["prompt_id"] for d in decisions] == [f"good-{i}" for i in range(len(BAD_INPUTS))]
    for d in decisions:
        assert_valid(d, "decision")


def test_duplicate_prompt_id_in_a_session_is_dead_lettered() -> None:
    s = scanner()
    first, second = duplicate_pair()
    assert s.process(first)[0] == "decisions"
    topic, record = s.process(second)
    assert (topic, record["reason"]) == ("deadletter", "duplicate_prompt")
    # the same id in another session is a different prompt
    other = orjson.loads(second) | {"session_id": "another"}
    assert s.process(orjson.dumps(other))[0] == "decisions"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("sess-A", "x\x1fq-7"), ("sess-A\x1fx", "q-7")),
        (("1:a", "b"), ("1", "a\x1fb")),
        (("2:a\x1fb", "c"), ("2", "a\x1fb\x1fc")),
    ],
)
def test_no_two_prompts_share_a_dedup_key(a: tuple[str, str], b: tuple[str, str]) -> None:
    s = scanner()
    for session, prompt_id in (a, b):
        record = {"id": prompt_id, "session_id": session, "text": "hello", "ts": 1_700_000_000}
        assert s.process(orjson.dumps(record))[0] == "decisions", (session, prompt_id)


class ExplodingScreener(RuleScreener):
    def _screen(self, prompt: Prompt, session, facts: dict, started: int, *_) -> ScreenResult:
        raise RuntimeError("model file corrupted")


def test_detector_failure_fails_closed() -> None:
    topic, record = scanner(ExplodingScreener()).process(good(1))
    assert topic == "decisions"
    assert record["action"] == "ESCALATE"
    assert record["stage"] == "error"
    assert "model file corrupted" in record["reasons"][0]


class UncertainScreener(RuleScreener):
    def _screen(self, prompt: Prompt, session, facts: dict, started: int, *_) -> ScreenResult:
        return ScreenResult(
            action=Action.ESCALATE,
            score=0.6,
            stage="fusion",
            reasons=("unsure",),
            session_facts=facts,
        )


def test_uncertain_prompt_without_verifier_escalates() -> None:
    topic, record = scanner(UncertainScreener()).process(good(1))
    assert topic == "decisions"
    assert record["action"] == "ESCALATE"
    assert record["stage"] == "verification"
    assert "no verifier" in record["reasons"][-1]
    assert_valid(record, "decision")


def test_window_facts_reach_the_screener() -> None:
    seen: list[dict] = []

    class Recording(RuleScreener):
        def _screen(self, prompt: Prompt, session, facts: dict, started: int, *_) -> ScreenResult:
            seen.append(facts)
            return super()._screen(prompt, session, facts, started, None)

    s = scanner(Recording())
    for i in range(3):
        s.process(good(i, session="rate"))
    assert [f["prompts_1m"] for f in seen] == [1, 2, 3]
    assert all(f["blocked_10m"] == 0 for f in seen)


def test_failed_batch_preparation_falls_back_to_one_by_one() -> None:
    class Unpreparable(RuleScreener):
        def prepare(self, texts):
            raise RuntimeError("embedder out of memory")

    pipeline = Pipeline(screener=Unpreparable())
    prompts = [Prompt(f"p{i}", "s", f"hello {i}", 1.0) for i in range(3)]
    assert pipeline.prepare(prompts) == [None, None, None]
    routed = pipeline.screen(prompts[0], None, {}, None)
    assert routed.result.action is Action.ALLOW


@pytest.mark.parametrize(
    ("record_ts", "expected"),
    [
        (None, 1_700_000_003.0),  # no record time (aimds scan): the body's ts
        (1_700_000_003.5, 1_700_000_003.0),  # within a second: the body's ts
        (1_700_000_010.0, 1_700_000_010.0),  # further: the record time
        (1_699_000_000.0, 1_699_000_000.0),  # the body may not claim a later time either
        (float("nan"), 1_700_000_003.0),  # no usable record time: the body's ts
        (-0.001, 1_700_000_003.0),  # Kafka's "no timestamp"
    ],
)
def test_the_kafka_record_time_overrides_a_ts_far_from_it(
    record_ts: float | None, expected: float
) -> None:
    prompt = Pipeline(screener=RuleScreener()).parse(good(3), record_ts=record_ts)
    assert prompt.ts == expected


def test_a_kafka_record_time_far_ahead_is_refused_before_the_body_is_read() -> None:
    from app.errors import TimestampOutOfRange

    pipeline = Pipeline(screener=RuleScreener(), clock=lambda: 1_700_000_000.0)
    with pytest.raises(TimestampOutOfRange, match="Kafka record time 9000000000000"):
        pipeline.parse(b"{not json", record_ts=9e12)
    assert pipeline.parse(good(1), record_ts=1_700_000_299.0).ts == 1_700_000_299.0


def test_the_scanner_drops_expired_session_states_without_changing_a_decision() -> None:
    from app.core import build_screener
    from app.settings import Settings

    screener = build_screener(Settings.from_env({}))
    records, ts = [], 1_700_000_000.0
    for i in range(60):  # 12 sessions; gaps from seconds to hours
        ts += (2.0, 40.0, 1900.0, 7300.0)[i % 4]
        text = f"prompt {i} ignore previous instructions" if i % 5 == 0 else f"question {i}"
        records.append(
            orjson.dumps({"id": f"p{i}", "session_id": f"s{i % 12}", "text": text, "ts": ts})
        )
    kept, pruned = (LocalScanner(Pipeline(screener=screener), prune_every=n) for n in (10**9, 7))
    drop = ("timings_us", "decided_at")
    for raw in records:
        a, b = kept.process(raw)[1], pruned.process(raw)[1]
        assert {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }
    assert len(kept._sessions) == 12 and len(pruned._sessions) < 12
