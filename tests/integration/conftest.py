"""A real server (real bwrap, cgroups, kernels) for the end-to-end tests, driven through the SDK.

The server gets its own data dir (so its cgroups and uids are its own) that shares the built
templates of the default data dir (built by scripts/setup.sh). It listens on a unix socket and
on TCP 127.0.0.1 with an API key, so both ways in are tested.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nullspace.templates import share_builds

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HOME = Path("/var/lib/nullspace")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "end-to-end tests need root (cgroups, mounts, per-sandbox uids)"
    if not shutil.which("bwrap"):
        return "bubblewrap is not installed (run scripts/setup.sh)"
    if not (DEFAULT_HOME / "templates" / "code-interpreter" / "current").exists():
        return "template code-interpreter is not built (run scripts/setup.sh)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason:
        for item in items:
            if {"server", "sandbox"} & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class ServerHandle:
    data_dir: Path
    socket: Path
    tcp_url: str
    api_key: str
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


def new_data_dir() -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="nstest-", dir="/var/tmp"))
    os.chmod(data_dir, 0o711)
    share_builds(DEFAULT_HOME, data_dir)
    return data_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = open(data_dir / "server.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "nullspace", "serve", "--data-dir", str(data_dir), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def wait_healthy(sock: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://n") as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "server exited during start"
            try:
                if client.get("/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise TimeoutError("server did not become healthy")


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """The TCP listener starts after the unix socket's (it needs the lifespan's state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the server did not listen on TCP port {port}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerHandle]:
    data_dir = new_data_dir()
    key = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nullspace",
                "keys",
                "create",
                "tests",
                "--data-dir",
                str(data_dir),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = _free_port()
    process = start_server(data_dir, "--host", "127.0.0.1", "--port", str(port))
    sock = data_dir / "nullspace.sock"
    wait_healthy(sock, process)
    _wait_listening(port, process)
    handle = ServerHandle(data_dir, sock, f"http://127.0.0.1:{port}", key, process)
    saved = {
        k: os.environ.get(k)
        for k in ("NULLSPACE_HOME", "NULLSPACE_SOCKET", "NULLSPACE_API_URL", "NULLSPACE_API_KEY")
    }
    os.environ["NULLSPACE_HOME"] = str(data_dir)
    os.environ["NULLSPACE_SOCKET"] = str(sock)
    os.environ.pop("NULLSPACE_API_URL", None)
    os.environ.pop("NULLSPACE_API_KEY", None)
    try:
        yield handle
    finally:
        stop_server(process)
        for key_name, value in saved.items():
            if value is None:
                os.environ.pop(key_name, None)
            else:
                os.environ[key_name] = value
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def sandbox(server: ServerHandle) -> Iterator[object]:
    from nullspace import Sandbox

    with Sandbox.create(template="code-interpreter", timeout=300) as sb:
        yield sb
