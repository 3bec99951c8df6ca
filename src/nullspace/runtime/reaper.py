"""Child reaping for the server: it is a subreaper and the only one who calls wait().

PID 1 on our machines reaps orphans only every ~2 s, and a killed sandbox's processes stay in its
cgroup until reaped (runtime-probe §0). So the server sets PR_SET_CHILD_SUBREAPER: every process
of every sandbox that loses its parent is re-parented to us, and one thread reaps them all with
``waitpid(-1)``. Consequence: nothing else in the server may wait for children (no
``subprocess.run``); every child is started through `Reaper.spawn`, which hands back a future for
its exit status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import os
import subprocess
import threading
from typing import Any

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def exit_code(status: int) -> int:
    """A wait status as subprocess reports it: exit code, or -signal."""
    return os.waitstatus_to_exitcode(status)


class Reaper:
    """Reaps every child and orphan; `spawn` returns (Popen, future of the exit code)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[int], subprocess.Popen[Any]]] = {}
        self._has_children = threading.Event()
        self._thread: threading.Thread | None = None
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nullspace-spawner")
        self.orphans_reaped = 0

    def start(self) -> None:
        become_subreaper()
        self._thread = threading.Thread(target=self._run, name="nullspace-reaper", daemon=True)
        self._thread.start()

    async def spawn(self, argv: list[str], **popen_kwargs: Any) -> tuple[subprocess.Popen[Any], asyncio.Future[int]]:
        """Start a child; returns it and a future of its exit code. Never wait()/poll() it.

        Fork+exec with a preexec_fn takes ~20 ms, so it runs on the spawner thread, not on the
        event loop. That thread lives as long as the server: children started with
        PR_SET_PDEATHSIG (bwrap --die-with-parent) die when their parent *thread* exits.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def start() -> subprocess.Popen[Any]:
            # Holding the lock across fork+register means the reaper thread, which takes the
            # lock before looking a pid up, can never see this child unregistered.
            with self._lock:
                proc = subprocess.Popen(argv, **popen_kwargs)
                self._waiters[proc.pid] = (loop, future, proc)
            self._has_children.set()
            return proc

        return await loop.run_in_executor(self._spawner, start), future

    def _run(self) -> None:
        while True:
            self._has_children.clear()
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                self._has_children.wait(timeout=5.0)
                continue
            except InterruptedError:
                continue
            code = exit_code(status)
            with self._lock:
                entry = self._waiters.pop(pid, None)
                if entry is None:  # an orphan re-parented to us
                    self.orphans_reaped += 1
                    continue
            loop, future, proc = entry
            proc.returncode = code
            loop.call_soon_threadsafe(_resolve, future, code)


def _resolve(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
