"""Pause and resume through the SDK: state survives, RAM drops, paused sandboxes refuse calls."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nullspace import Sandbox, SandboxNotFoundError, SandboxPausedError
from nullspace.runtime.cgroups import open_driver
from nullspace.server.settings import Settings

MiB = 1 << 20


def _swap_bytes() -> int:
    lines = Path("/proc/swaps").read_text().splitlines()[1:]
    return sum(int(line.split()[2]) * 1024 for line in lines)


def _memory(server, sandbox_id: str) -> int:
    cgroup = open_driver(Settings(data_dir=server.data_dir).cgroup_root).open(sandbox_id)
    assert cgroup is not None
    return cgroup.stats().memory_current


def test_state_survives_and_ram_drops(server) -> None:
    with Sandbox.create(timeout=120, memory_mb=1024) as sb:
        sb.run_code("import numpy as np\nblob = np.ones(40 * 1024 * 1024 // 8)\nx = 41")
        sb.files.write("/home/user/kept.txt", "still here")
        ticker = sb.commands.run(
            "while true; do date +%s%N >> /tmp/ticks; sleep 0.1; done", background=True
        )
        time.sleep(0.5)
        before = _memory(server, sb.sandbox_id)

        info = sb.pause()
        assert sb.get_info().state == "paused"
        assert info.memory_before_bytes > 40 * MiB
        paused = _memory(server, sb.sandbox_id)
        if _swap_bytes() >= 256 * MiB:  # scripts/setup.sh makes swap when the host has none
            assert paused < before / 3, (before, paused)
            assert info.memory_after_bytes < info.memory_before_bytes / 3

        with pytest.raises(SandboxPausedError):
            sb.run_code("x")
        with pytest.raises(SandboxPausedError):
            sb.files.read("/home/user/kept.txt")
        time.sleep(1.0)  # long enough that a ticker still running would leave no gap

        sb.resume()
        assert sb.get_info().state == "running"
        assert sb.run_code("x + 1").text == "42"
        assert sb.run_code("int(blob.sum())").text == str(40 * 1024 * 1024 // 8)
        assert sb.files.read("/home/user/kept.txt") == "still here"
        lines = sb.files.read("/tmp/ticks").split()
        gaps = [(int(b) - int(a)) / 1e9 for a, b in zip(lines, lines[1:], strict=False)]
        assert max(gaps) > 0.5, "the background command did not stop while paused"
        count = len(lines)
        time.sleep(0.5)
        assert len(sb.files.read("/tmp/ticks").split()) > count, "the background command is not running"
        assert ticker.pid in [c.pid for c in sb.commands.list() if c.running]


def test_kill_while_paused_frees_everything(server) -> None:
    sb = Sandbox.create(timeout=120)
    sb.run_code("1")
    sb.pause()
    cgroup_root = Settings(data_dir=server.data_dir).cgroup_root
    assert open_driver(cgroup_root).open(sb.sandbox_id) is not None
    assert sb.kill() is True
    assert sb.get_info().state == "killed"
    assert open_driver(cgroup_root).open(sb.sandbox_id) is None
    assert not (server.data_dir / "sandboxes" / sb.sandbox_id).exists()


def test_paused_past_its_lifetime_is_killed(server) -> None:
    sb = Sandbox.create(timeout=120)
    info = sb.pause(timeout=1)
    assert info.paused_until is not None
    deadline = time.monotonic() + 15
    while sb.get_info().state == "paused" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sb.get_info().state == "timed_out"
    with pytest.raises(SandboxNotFoundError):
        sb.run_code("1")


def test_auto_resume_and_connect(server) -> None:
    with Sandbox.create(timeout=120, auto_resume=True) as sb:
        sb.run_code("y = 7")
        sb.pause()
        assert sb.run_code("y * 6").text == "42"  # the call resumed it
        assert sb.get_info().state == "running"
        sb.pause()
        again = Sandbox.connect(sb.sandbox_id)  # connect resumes, as E2B's does
        assert again.get_info().state == "running"
        assert again.run_code("y").text == "7"
        again.close()


def test_pause_refuses_bad_input(server) -> None:
    import httpx

    with Sandbox.create(timeout=120) as sb:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as http:
            reply = http.post(f"/v1/sandboxes/{sb.sandbox_id}/pause", json={"timeout": 10**9})
            assert reply.status_code == 400 and reply.json()["code"] == "invalid_argument"
            reply = http.post(f"/v1/sandboxes/{sb.sandbox_id}/pause", json={"timeout": "soon"})
            assert reply.status_code == 400
            reply = http.post("/v1/sandboxes/sb_0000000000000000/pause")
            assert reply.status_code == 404 and reply.json()["code"] == "sandbox_not_found"
        assert sb.get_info().state == "running"
