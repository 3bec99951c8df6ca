"""Start the embedded local server when its unix socket does not answer.

`start_flow()` is a generator that holds the whole decision (root check, lock file, spawn,
polling) but performs no network I/O and never sleeps: it yields `PROBE` ("is `GET /v1/health`
ok? send me a bool") and `Sleep(seconds)` actions, which the async and sync HTTP clients carry
out their own way. Concurrent SDK processes serialize on `fcntl.flock(<data dir>/.start.lock)`
so only one of them spawns `python -m nullspace serve`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from .._exceptions import TransportError
from ._config import ConnectionConfig

START_WAIT = 60.0
POLL_INTERVAL = 0.25
LOCK_NAME = ".start.lock"
LOG_NAME = "server.log"

_spawned: list[subprocess.Popen[bytes]] = []  # keep handles alive (no ResourceWarning on GC)


@dataclass(frozen=True)
class Probe:
    """Action: probe `GET /v1/health` and send back True when the server answered ok."""


@dataclass(frozen=True)
class Sleep:
    """Action: wait `seconds`, then send back None."""

    seconds: float


PROBE = Probe()
Action = Probe | Sleep


async def asleep(seconds: float) -> None:
    """Sleep without blocking the event loop."""
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Sleep (the sync twin of `asleep`)."""
    time.sleep(seconds)


def log_tail(data_dir: str, max_lines: int = 20) -> str:
    """The last lines of `<data dir>/server.log`, or "" when there is none."""
    try:
        with open(os.path.join(data_dir, LOG_NAME), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-max_lines:])


def _with_log(message: str, data_dir: str) -> str:
    tail = log_tail(data_dir)
    where = os.path.join(data_dir, LOG_NAME)
    return f"{message}\nlast lines of {where}:\n{tail}" if tail else f"{message} (see {where})"


def not_root_message(socket_path: str) -> str:
    """Why a non-root process cannot use the embedded default, and what to do instead."""
    if os.path.exists(socket_path) and not os.access(socket_path, os.R_OK | os.W_OK):
        problem = f"permission denied on the local nullspace server socket {socket_path}"
    else:
        problem = f"no nullspace server is answering on {socket_path}"
    return (
        f"{problem}; the local server needs root: start it with `sudo nullspace serve` "
        "(or run this program as root), or set NULLSPACE_API_URL (and NULLSPACE_API_KEY) "
        "to use a remote server"
    )


def spawn_server(config: ConnectionConfig) -> subprocess.Popen[bytes]:
    """Start `python -m nullspace serve` detached, logging to `<data dir>/server.log`."""
    assert config.data_dir is not None
    log_fd = os.open(os.path.join(config.data_dir, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open(log_fd, "ab") as log:  # 0600: the server's log is for root only
        proc = subprocess.Popen(
            [sys.executable, "-m", "nullspace", "serve"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    _spawned.append(proc)
    return proc


def start_flow(
    config: ConnectionConfig,
    *,
    wait: float = START_WAIT,
    is_root: bool | None = None,
    spawn: Callable[[ConnectionConfig], subprocess.Popen[bytes]] = spawn_server,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[Action, bool | None, None]:
    """Make sure a local server answers on `config.socket_path`, starting one if needed.

    Args:
        config: A local (unix socket) connection config.
        wait: Seconds to wait for a starting server to answer.
        is_root: Override the `os.geteuid() == 0` check (tests).
        spawn: Starts the server (tests inject a fake).
        clock: Monotonic clock (tests inject a fake).

    Yields:
        `PROBE` (send back whether the health check passed) or `Sleep` (send back None).

    Raises:
        TransportError: not root and no server; the server exited or never answered.
    """
    assert config.socket_path is not None and config.data_dir is not None
    if (yield PROBE):
        return
    if not (os.geteuid() == 0 if is_root is None else is_root):
        raise TransportError(not_root_message(config.socket_path))
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
    deadline = clock() + wait
    fd = os.open(os.path.join(config.data_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:  # another SDK process may be starting the server: wait for it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            if (yield PROBE):
                return
            if clock() > deadline:
                msg = f"timed out waiting for another process to start {config.socket_path}"
                raise TransportError(_with_log(msg, config.data_dir))
            yield Sleep(POLL_INTERVAL)
        if (yield PROBE):  # it came up while we waited for the lock
            return
        proc = spawn(config)
        while True:
            if (yield PROBE):
                return
            code = proc.poll()
            if code is not None:
                msg = f"the local nullspace server exited with code {code} while starting"
                raise TransportError(_with_log(msg, config.data_dir))
            if clock() > deadline:
                msg = f"the server started but {config.socket_path} gave no answer in {wait:.0f} s"
                raise TransportError(_with_log(msg, config.data_dir))
            yield Sleep(POLL_INTERVAL)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
