"""The local KRaft broker starts whatever its random cluster id looks like."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

import app.runtime.local as local
from app.settings import Settings

pytestmark = pytest.mark.integration


def test_a_cluster_id_beginning_with_a_dash_is_not_taken_for_an_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """1 in 64 random ids begins with '-'; given as a separate argument, Kafka's storage tool
    took it for an option and the format failed (seen once in `make test`)."""
    dash_id = base64.urlsafe_b64encode(bytes([0xFB]) + bytes(15)).decode().rstrip("=")
    assert dash_id.startswith("-")
    monkeypatch.setattr(local, "_cluster_id", lambda: dash_id)
    settings = Settings.from_env(
        {k: v for k, v in os.environ.items() if k in ("AIMDS_HOME", "AIMDS_KAFKA_VERSION")}
    )
    handle = local.start_kafka(
        home=Path(settings.home), version=settings.kafka_version, data_dir=tmp_path / "kafka"
    )
    try:
        assert local.port_open(handle.port)
        assert dash_id in (tmp_path / "kafka" / "logs" / "meta.properties").read_text()
    finally:
        handle.stop()
