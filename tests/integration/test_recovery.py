"""A server that dies hard leaves nothing behind once it is started again."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from nullspace import Sandbox, SandboxNotFoundError

from .conftest import _skip_reason, new_data_dir, start_server, stop_server, wait_healthy

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _leftovers(sid: str) -> list[str]:
    found = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if sid in line]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/nullspace*/{sid}")]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"nullspace*/{sid}")]
    return found


def test_restart_after_crash_marks_dead_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = new_data_dir()
    sock = data_dir / "nullspace.sock"
    monkeypatch.setenv("NULLSPACE_SOCKET", str(sock))
    monkeypatch.setenv("NULLSPACE_HOME", str(data_dir))
    process = start_server(data_dir, "--pool", "code-interpreter=1")
    try:
        wait_healthy(sock, process)
        sb = Sandbox.create(timeout=300)
        sid = sb.sandbox_id
        assert sb.run_code("1 + 1").text == "2"
        assert _leftovers(sid)  # it is really there
        process.send_signal(signal.SIGKILL)  # no graceful shutdown
        process.wait()
        deadline = time.monotonic() + 10  # bwrap --die-with-parent takes the sandbox down
        while time.monotonic() < deadline:
            alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_cgroup(p, sid)]
            if not alive:
                break
            time.sleep(0.1)
        assert not alive
        process = start_server(data_dir, "--pool", "code-interpreter=1")
        wait_healthy(sock, process)
        assert _leftovers(sid) == []
        assert not (data_dir / "sandboxes" / sid).exists()
        with pytest.raises(SandboxNotFoundError, match="restarted"):
            Sandbox.connect(sid)
        with Sandbox.create(timeout=60) as again:
            assert again.run_code("6 * 7").text == "42"
    finally:
        stop_server(process)
        shutil.rmtree(data_dir, ignore_errors=True)
    # a server that stopped cleanly removes its (now empty) cgroup root too
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/nullspace-*") if _instance(data_dir) in p.name]


def _instance(data_dir: Path) -> str:
    from nullspace.server.settings import Settings

    return Settings(data_dir=data_dir).instance


def _in_cgroup(proc: Path, sid: str) -> bool:
    try:
        return sid in (proc / "cgroup").read_text() and os.path.exists(proc / "status") and "State:\tZ" not in (proc / "status").read_text()
    except OSError:
        return False
