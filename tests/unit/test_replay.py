"""Replaying prompt logs (`app/replay.py`) against a stand-in producer, and the CLI's clear
errors for bad arguments and files (no broker needed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import app.replay as replay_module
from app.cli import main
from app.errors import ConfigError
from app.replay import load_log, read_checkpoint, replay
from app.settings import Settings

NOW = time.time()


def _write(path: Path, lines: list[Any]) -> Path:
    out = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _prompt(n: int, ts: Any) -> dict[str, Any]:
    return {"id": f"p{n}", "session_id": "s", "text": f"prompt {n}", "ts": ts}


class FakeProducer:
    """Records what `replay` sends; every send is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None, int | None]] = []

    async def start(self) -> None:
        pass

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None, timestamp_ms: int | None
    ) -> asyncio.Future[None]:
        self.sent.append((value, key, timestamp_ms))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def test_bad_lines_keep_their_place_and_unusable_times_go_to_the_broker(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "log.jsonl",
        [
            _prompt(1, NOW - 30),
            _prompt(2, 1e20),  # past any Kafka timestamp: sent with the broker's time
            b"not json at all",
            _prompt(3, "2026-01-01T00:00:00Z"),
            _prompt(4, NOW - 40),
            [1, 2, 3],
        ],
    )
    records = load_log(log)
    order = [r.line_no for r in records]
    # lines 2, 3 and 6 take the time of the line before them (1, 1 and 5)
    assert order == [4, 5, 6, 1, 2, 3]
    by_line = {r.line_no: r for r in records}
    assert by_line[2].timestamp_ms is None and by_line[3].timestamp_ms is None
    assert by_line[1].timestamp_ms == round((NOW - 30) * 1000)
    assert by_line[4].timestamp_ms == 1_767_225_600_000
    assert by_line[1].key == b"s" and by_line[3].key is None


def test_replay_sends_every_line_and_never_waits_for_a_future_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _write(
        tmp_path / "log.jsonl",
        [_prompt(1, NOW - 2), _prompt(2, NOW - 1), b"{broken", _prompt(3, NOW + 86_400 * 800)],
    )
    fake = FakeProducer()
    monkeypatch.setattr(replay_module, "producer", lambda settings: fake)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    records = load_log(log)
    checkpoint = tmp_path / "ckpt"
    sent = asyncio.run(replay(Settings(), records, speed=1.0, checkpoint=checkpoint, sleep=sleep))
    assert sent == 4 and len(fake.sent) == 4
    assert [orjson.loads(v)["id"] for v, _, _ in fake.sent if v.startswith(b'{"')] == [
        "p1",
        "p2",
        "p3",
    ]
    assert all(w <= 1.5 for w in waits)  # the 2028 line is not waited for
    assert fake.sent[-1][2] == round((NOW + 86_400 * 800) * 1000)
    assert read_checkpoint(checkpoint) == 4


@pytest.mark.parametrize(
    ("content", "expected"), [(None, 0), ("", 0), ("17\n", 17), ("abc", None), ("-3", None)]
)
def test_checkpoints(tmp_path: Path, content: str | None, expected: int | None) -> None:
    path = tmp_path / "ckpt"
    if content is not None:
        path.write_text(content)
    if expected is None:
        with pytest.raises(ConfigError, match="not a position"):
            read_checkpoint(path)
    else:
        assert read_checkpoint(path) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "/nonexistent/prompts.jsonl"], "cannot read /nonexistent/prompts.jsonl"),
        (["scan", "/"], "cannot read /: Is a directory"),
        (["eval", "/nonexistent/rows.jsonl"], "cannot read /nonexistent/rows.jsonl"),
        (["replay", "/nonexistent/log.jsonl"], "cannot read /nonexistent/log.jsonl"),
        (["replay", "LOG", "--speed", "abc"], "--speed must be a number > 0"),
        (["replay", "LOG", "--speed", "0"], "--speed must be a number > 0"),
        (["replay", "LOG", "--checkpoint", "CKPT"], "not a position"),
    ],
)
def test_cli_errors_are_one_line_not_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("AIMDS_HOME", str(tmp_path / "home"))
    log = _write(tmp_path / "log.jsonl", [_prompt(1, NOW)])
    (tmp_path / "ckpt").write_text("twelve")
    argv = [a.replace("LOG", str(log)).replace("CKPT", str(tmp_path / "ckpt")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ConfigError" in err and message in err
    assert "Traceback" not in err
