"""The agent as the sandbox runs it: ``python -m nullspace_agent --fd N`` with the package
mounted as a top-level ``nullspace_agent`` on PYTHONPATH and an inherited listening socket."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import httpx
import pytest

import nullspace.agent

AGENT_DIR = pathlib.Path(nullspace.agent.__file__).parent


@pytest.fixture
def layout() -> Iterator[pathlib.Path]:
    base = pathlib.Path(tempfile.mkdtemp(prefix="nsp-", dir="/tmp"))
    (base / "lib").mkdir()
    (base / "lib" / "nullspace_agent").symlink_to(AGENT_DIR)
    (base / "home").mkdir()
    (base / "template.json").write_text(
        json.dumps({"kernels": {"python": "python3"}, "workdir": str(base / "home")})
    )
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_runs_from_an_inherited_fd(layout: pathlib.Path) -> None:
    path = str(layout / "agent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(layout / "lib")
    env["JPY_PARENT_PID"] = "1"  # must not reach the kernel
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nullspace_agent",
            "--fd",
            str(listener.fileno()),
            "--template-json",
            str(layout / "template.json"),
            "--runtime-dir",
            str(layout / "run"),
        ],
        pass_fds=[listener.fileno()],
        env=env,
        cwd=str(layout),
        stderr=subprocess.PIPE,
    )
    listener.close()
    try:
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, base_url="http://agent", timeout=30) as client:
            # One request: the listening socket exists before the agent does (its backlog holds
            # the connection) and ?wait answers when the boot kernel is ready.
            health = client.get("/health", params={"wait": 30})
            assert health.json()["ready"] is True, (health.text, proc.poll())
            code = (
                "import os, importlib.util as u\n"
                "e = os.environ.get('JPY_PARENT_PID')\n"
                "print(e, u.find_spec('nullspace_agent'), os.getcwd())"
            )
            with client.stream("POST", "/execute", json={"code": code}) as r:
                events = [json.loads(line) for line in r.iter_lines()]
            stdout = "".join(e["text"] for e in events if e["type"] == "stdout")
            assert stdout == f"None None {layout / 'home'}\n", events
            assert events[-1] == {"type": "end_of_execution", "status": "ok"}
            kernel_pids = _children(proc.pid)
            assert kernel_pids
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            # uvicorn re-raises the signal it caught once the lifespan has shut down
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()
    for pid in kernel_pids:  # the lifespan shut the kernels down
        assert not pathlib.Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _children(pid: int) -> list[int]:
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _is_zombie(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
