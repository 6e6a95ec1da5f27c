"""`Services.stop`: what it stops and which files it removes (no servers are started here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.runtime.local import ServerHandle, pid_alive
from app.runtime.services import Services


def _sleeper(tmp: Path) -> ServerHandle:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    return ServerHandle("kafka", proc.pid, 0, "kafka://127.0.0.1:0", str(tmp), "", "test")


@pytest.mark.parametrize("owned", [True, False])
def test_stop_ends_the_servers_and_removes_only_a_directory_it_made(
    tmp_path: Path, owned: bool
) -> None:
    data = tmp_path / "aimds-services-x"
    (data / "kafka" / "logs").mkdir(parents=True)
    (data / "kafka" / "logs" / "segment.log").write_bytes(b"x" * 1024)
    handle = _sleeper(data)
    svc = Services("kafka://127.0.0.1:0", "", "local", handles=[handle])
    if owned:
        svc.owned_dir = data
    svc.stop()
    assert not pid_alive(handle.pid)
    assert data.exists() is not owned  # a directory given by the caller (broker start) stays
    svc.stop()  # twice is harmless
