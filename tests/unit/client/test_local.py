"""The embedded-server start logic (`_local.start_flow`) and the unix-socket connection path."""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest

import nullspace
from nullspace.client import _local
from nullspace.client._config import ConnectionConfig


class FakeProc:
    def __init__(self, code: int | None = None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


def drive(flow: Iterator[_local.Action], health: Callable[[], bool]) -> list[str]:
    """Run a start flow the way the HTTP clients do; return what it asked for."""
    log: list[str] = []
    reply = None
    try:
        while True:
            action = flow.send(reply)  # type: ignore[attr-defined]
            if isinstance(action, _local.Sleep):
                log.append("sleep")
                reply = None
            else:
                reply = health()
                log.append(f"probe:{reply}")
    except StopIteration:
        return log


@pytest.fixture
def data_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="ns-", dir="/tmp")  # short: unix socket paths max ~107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def local_config(data_dir: str) -> ConnectionConfig:
    return ConnectionConfig.resolve(env={"NULLSPACE_HOME": data_dir})


def test_healthy_server_is_left_alone(data_dir: str) -> None:
    spawned: list[object] = []
    flow = _local.start_flow(local_config(data_dir), is_root=False, spawn=spawned.append)
    assert drive(flow, lambda: True) == ["probe:True"]
    assert spawned == []


def test_not_root_and_no_server_explains_what_to_do(data_dir: str) -> None:
    flow = _local.start_flow(local_config(data_dir), is_root=False, spawn=pytest.fail)
    with pytest.raises(nullspace.TransportError) as info:
        drive(flow, lambda: False)
    message = str(info.value)
    assert "sudo nullspace serve" in message and "NULLSPACE_API_URL" in message
    assert os.path.join(data_dir, "nullspace.sock") in message


def test_root_spawns_once_and_waits_for_health(data_dir: str) -> None:
    spawned: list[ConnectionConfig] = []
    health = iter([False, False, False, False, True])

    def spawn(cfg: ConnectionConfig) -> FakeProc:
        spawned.append(cfg)
        return FakeProc()

    cfg = local_config(data_dir)
    log = drive(_local.start_flow(cfg, is_root=True, spawn=spawn), lambda: next(health))
    assert spawned == [cfg]
    assert log == [
        "probe:False",  # nothing answers
        "probe:False",  # still nothing once we hold the lock: spawn
        "probe:False",
        "sleep",
        "probe:False",
        "sleep",
        "probe:True",
    ]
    assert os.path.exists(os.path.join(data_dir, ".start.lock"))
    lock = os.open(os.path.join(data_dir, ".start.lock"), os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the flow finished
    finally:
        os.close(lock)


def test_server_that_exits_reports_the_log_tail(data_dir: str) -> None:
    with open(os.path.join(data_dir, "server.log"), "w") as f:
        f.write("".join(f"line {i}\n" for i in range(50)) + "error: bwrap not found\n")
    flow = _local.start_flow(local_config(data_dir), is_root=True, spawn=lambda c: FakeProc(1))
    with pytest.raises(nullspace.TransportError) as info:
        drive(flow, lambda: False)
    message = str(info.value)
    assert "exited with code 1" in message and "error: bwrap not found" in message
    assert "line 49" in message and "line 10\n" not in message  # only the last lines


def test_server_that_never_answers_times_out(data_dir: str) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 10
        return now[0]

    flow = _local.start_flow(
        local_config(data_dir), wait=60, is_root=True, spawn=lambda c: FakeProc(), clock=clock
    )
    with pytest.raises(nullspace.TransportError, match="no answer in 60 s"):
        drive(flow, lambda: False)


def test_waits_for_another_process_holding_the_lock(data_dir: str) -> None:
    lock = os.open(os.path.join(data_dir, ".start.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # "another SDK process" is starting the server
    try:
        health = iter([False, False, False, True])
        flow = _local.start_flow(local_config(data_dir), is_root=True, spawn=pytest.fail)
        log = drive(flow, lambda: next(health))
    finally:
        os.close(lock)
    assert log == ["probe:False", "probe:False", "sleep", "probe:False", "sleep", "probe:True"]


def test_spawn_server_detaches_and_logs(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, object]]] = []

    def popen(argv: list[str], **kwargs: object) -> FakeProc:
        calls.append((argv, kwargs))
        return FakeProc()

    monkeypatch.setattr(_local.subprocess, "Popen", popen)
    monkeypatch.setattr(_local, "_spawned", [])
    _local.spawn_server(local_config(data_dir))
    ((argv, kwargs),) = calls
    assert argv[1:] == ["-m", "nullspace", "serve"]
    assert kwargs["start_new_session"] is True and kwargs["stdin"] == _local.subprocess.DEVNULL
    assert kwargs["stdout"] is kwargs["stderr"]
    assert os.path.exists(os.path.join(data_dir, "server.log"))


# -- a real unix socket ----------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.paths.append(self.path)
        body = {"status": "ok"} if self.path == "/v1/health" else []
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_server(data_dir: str) -> Iterator[tuple[str, list[str]]]:
    path = os.path.join(data_dir, "nullspace.sock")
    paths: list[str] = []
    handler = type("Handler", (_Handler,), {"paths": paths})
    server = _UnixServer(path, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, paths
    server.shutdown()
    server.server_close()


def test_sdk_talks_over_the_unix_socket(
    unix_server: tuple[str, list[str]], data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket_path, paths = unix_server
    monkeypatch.delenv("NULLSPACE_API_URL", raising=False)
    monkeypatch.setenv("NULLSPACE_HOME", data_dir)
    monkeypatch.setenv("NULLSPACE_SOCKET", socket_path)
    assert nullspace.Sandbox.list(metadata={"a": "b"}) == []
    assert paths == ["/v1/health", "/v1/sandboxes?metadata.a=b"]
    assert not os.path.exists(os.path.join(data_dir, "server.log"))  # nothing was spawned


def test_non_root_without_a_server_fails_fast(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NULLSPACE_API_URL", raising=False)
    monkeypatch.delenv("NULLSPACE_SOCKET", raising=False)
    monkeypatch.setenv("NULLSPACE_HOME", data_dir)
    monkeypatch.setattr(_local.os, "geteuid", lambda: 1000)
    with pytest.raises(nullspace.TransportError, match="needs root"):
        nullspace.Sandbox.create()
