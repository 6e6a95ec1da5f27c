"""Settings from AIMDS_* variables: coercion, defaults and clear start-up errors."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.settings import Settings


def test_defaults_are_valid() -> None:
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.topic("prompts") == "aimds.prompts"
    assert s.block_threshold is None


def test_environment_values_are_coerced() -> None:
    s = Settings.from_env(
        {
            "AIMDS_BROKER_URL": "kafka://10.0.0.1:9093,10.0.0.2:9093",
            "AIMDS_PARTITIONS": "12",
            "AIMDS_BLOCK_THRESHOLD": "0.9",
            "AIMDS_ALLOW_THRESHOLD": "",
            "AIMDS_TOPIC_PREFIX": "tenant-a",
            "PATH": "/usr/bin",  # other variables are ignored
        }
    )
    assert s.bootstrap_servers == "10.0.0.1:9093,10.0.0.2:9093"
    assert s.partitions == 12
    assert s.block_threshold == 0.9
    assert s.allow_threshold is None
    assert s.topic("deadletter") == "tenant-a.deadletter"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIMDS_BROKER_URL": "localhost:9092"}, "AIMDS_BROKER_URL"),
        ({"AIMDS_PARTITIONS": "many"}, "AIMDS_PARTITIONS"),
        ({"AIMDS_PARTITIONS": "0"}, "AIMDS_PARTITIONS"),
        ({"AIMDS_BLOCK_THRESHOLD": "1.5"}, "AIMDS_BLOCK_THRESHOLD"),
        ({"AIMDS_BLOCK_THRESHOLD": "0.3", "AIMDS_ALLOW_THRESHOLD": "0.6"}, "must not exceed"),
        ({"AIMDS_STORE": "postgres://x"}, "AIMDS_STORE"),
        ({"AIMDS_EMBEDDER": "gpt"}, "AIMDS_EMBEDDER"),
        ({"AIMDS_REDIS_URL": "http://x"}, "AIMDS_REDIS_URL"),
        ({"AIMDS_TOPIC_PREFIX": "a b"}, "AIMDS_TOPIC_PREFIX"),
        ({"AIMDS_BROKERURL": "kafka://x:1"}, "unknown setting"),
    ],
)
def test_invalid_configuration_stops_with_a_clear_message(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.partitions = 3  # type: ignore[misc]
    assert s.replace(partitions=3).partitions == 3


def test_unknown_topic_suffix() -> None:
    with pytest.raises(KeyError):
        Settings.from_env({}).topic("nope")


def test_cli_reports_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    monkeypatch.setenv("AIMDS_PARTITIONS", "-1")
    assert main(["scan", "-"]) == 2
    assert "AIMDS_PARTITIONS" in capsys.readouterr().err
