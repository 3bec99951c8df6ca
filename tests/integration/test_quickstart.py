"""The README's main job, exactly as a newcomer runs it: no server running, no settings."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, _skip_reason, new_data_dir

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def test_quickstart_starts_the_local_server_and_prints_42(tmp_path: Path) -> None:
    data_dir = new_data_dir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NULLSPACE_")}
    env["NULLSPACE_HOME"] = str(data_dir)
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / "quickstart.py")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr + (data_dir / "server.log").read_text(errors="replace")
        lines = done.stdout.splitlines()
        assert lines[0] == "42"
        assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
        assert (data_dir / "server.pid").exists()  # the SDK started a server in the background
    finally:
        pid_file = data_dir / "server.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
        shutil.rmtree(data_dir, ignore_errors=True)
