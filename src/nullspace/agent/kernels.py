"""One Jupyter kernel: its process (AsyncKernelManager), its client, and message routing.

The kernel listens on IPC sockets in a private runtime dir (TCP is unusable in a sandbox with its
own loopback). Two reader tasks live as long as the client and route every shell/iopub message
by ``parent_header.msg_id`` to the queue of whoever sent that request (`Kernel.execute`); other
messages are dropped. A restart always makes a fresh client, so requests queued in the old
client's sockets can never reach the new kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import subprocess
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from . import languages

log = logging.getLogger("nullspace.agent")

PR_SET_PDEATHSIG = 1
Routed = tuple[str, "dict[str, Any] | None"]  # (channel, message); ("wake", None) pokes a waiter


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()  # resolved in the parent: the forked child must not load libraries


def _own_oom_score_adj() -> int:
    try:
        with open("/proc/self/oom_score_adj", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def make_preexec(oom_score_adj: int) -> Any:
    """A Popen ``preexec_fn`` for kernels: raise ``oom_score_adj`` (the OOM killer then prefers
    kernels over the agent; raising is unprivileged) and die with the agent (PDEATHSIG)."""
    target = str(max(oom_score_adj, _own_oom_score_adj())).encode("ascii")
    prctl = _PRCTL

    def preexec() -> None:  # runs in the child between fork and exec: keep it to raw syscalls
        try:
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            try:
                os.write(fd, target)
            finally:
                os.close(fd)
        except OSError:
            pass
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # SIGKILL

    return preexec


def kernel_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: the agent's own, minus what only concerns the agent.

    ``JPY_PARENT_PID`` would make ipykernel's parent poller exit inside a PID namespace; the
    agent's library dir is dropped from ``PYTHONPATH`` so user code does not see the agent.
    """
    env = dict(os.environ if base is None else base)
    env.pop("JPY_PARENT_PID", None)
    lib_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if env.get("PYTHONPATH"):
        parts = [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p != lib_dir]
        if parts:
            env["PYTHONPATH"] = os.pathsep.join(parts)
        else:
            del env["PYTHONPATH"]
    return env


class KernelStartError(Exception):
    """The kernel could not be started (bad kernelspec, crash at startup, no answer)."""


class Kernel:
    """A kernel process with one client. Not safe for concurrent lifecycle calls: the owning
    context serializes start/restart/shutdown and runs."""

    def __init__(
        self,
        kernel_name: str,
        *,
        cwd: str,
        connection_file: str,
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        oom_score_adj: int = 500,
        kernel_output: str = "null",
        extra_arguments: list[str] | None = None,
    ) -> None:
        self.kernel_name = kernel_name
        self.extra_arguments = list(extra_arguments or [])  # appended to the kernelspec argv
        self.cwd = cwd
        self.connection_file = connection_file
        self.env = kernel_env(env)
        self.startup_timeout = startup_timeout
        self.oom_score_adj = oom_score_adj
        self.kernel_output = kernel_output
        self.km: AsyncKernelManager | None = None
        self.kc: AsyncKernelClient | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._routes: dict[str, asyncio.Queue[Routed]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        km = AsyncKernelManager(
            kernel_name=self.kernel_name,
            transport="ipc",
            connection_file=self.connection_file,
        )
        self.km = km
        languages.apply_transport(km)  # Deno and JJava speak TCP only
        launch: dict[str, Any] = {
            "cwd": self.cwd,
            "env": self.env,
            "independent": True,  # no JPY_PARENT_PID
            "preexec_fn": make_preexec(self.oom_score_adj),
        }
        if self.extra_arguments:
            launch["extra_arguments"] = self.extra_arguments  # kept for restarts by jupyter_client
        if self.kernel_output != "inherit":
            launch["stdout"] = subprocess.DEVNULL
            launch["stderr"] = subprocess.DEVNULL
        try:
            await km.start_kernel(**launch)
        except Exception as exc:
            raise KernelStartError(f"cannot start kernel {self.kernel_name!r}: {exc}") from exc
        await self._connect()

    async def restart(self) -> None:
        """Kill the kernel process (dead or alive) and start a new one with the same launch
        arguments (cwd, env), then reconnect with a fresh client. All kernel state is lost."""
        assert self.km is not None
        await self._disconnect()
        try:
            await self.km.restart_kernel(now=True)
        except Exception as exc:
            raise KernelStartError(f"cannot restart kernel {self.kernel_name!r}: {exc}") from exc
        await self._connect()

    async def shutdown(self) -> None:
        await self._disconnect()
        if self.km is not None and self.km.has_kernel:
            with contextlib.suppress(Exception):
                await self.km.shutdown_kernel(now=True)
        for q in self._routes.values():
            q.put_nowait(("wake", None))

    async def _connect(self) -> None:
        assert self.km is not None
        kc = self.km.client()
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        self.kc = kc
        try:
            await kc.wait_for_ready(timeout=self.startup_timeout)
        except Exception as exc:
            text = "did not answer"
            if not await self.km.is_alive():
                text = f"exited with code {self.returncode()}"
            raise KernelStartError(f"kernel {self.kernel_name!r} {text}: {exc}") from exc
        self._readers = [
            asyncio.create_task(self._read("shell", kc.shell_channel), name="kernel-shell"),
            asyncio.create_task(self._read("iopub", kc.iopub_channel), name="kernel-iopub"),
        ]

    async def _disconnect(self) -> None:
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._readers = []
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None

    async def _read(self, channel: str, chan: Any) -> None:
        while True:
            try:
                msg = await chan.get_msg()
            except asyncio.CancelledError:
                raise
            except Exception:  # a malformed message must not kill the reader
                log.warning("dropping an unreadable %s message", channel, exc_info=True)
                continue
            parent = (msg.get("parent_header") or {}).get("msg_id")
            queue = self._routes.get(parent) if parent else None
            if queue is not None:
                queue.put_nowait((channel, msg))

    # -- state -------------------------------------------------------------------------------

    async def is_alive(self) -> bool:
        return self.km is not None and await self.km.is_alive()

    def returncode(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        if process is None:
            return None
        return process.poll()

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return None if process is None else process.pid

    async def interrupt(self) -> None:
        if self.km is None:
            return
        try:
            await self.km.interrupt_kernel()
        except Exception:  # already dead: the caller notices through is_alive()
            log.debug("interrupt failed", exc_info=True)

    # -- requests ----------------------------------------------------------------------------

    def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        user_expressions: dict[str, str] | None = None,
        stop_on_error: bool = True,
    ) -> tuple[str, asyncio.Queue[Routed]]:
        """Send an execute_request; returns its msg_id and the queue its replies arrive on.
        Call `release(msg_id)` when done."""
        if self.kc is None:
            raise KernelStartError(f"kernel {self.kernel_name!r} is not running")
        queue: asyncio.Queue[Routed] = asyncio.Queue()
        msg = self.kc.session.msg(
            "execute_request",
            {
                "code": code,
                "silent": silent,
                "store_history": not silent,
                "user_expressions": user_expressions or {},
                "allow_stdin": False,
                "stop_on_error": stop_on_error,
            },
        )
        msg_id = msg["header"]["msg_id"]
        self._routes[msg_id] = queue  # registered before sending: no reply can be missed
        self.kc.shell_channel.send(msg)
        return msg_id, queue

    def release(self, msg_id: str) -> None:
        self._routes.pop(msg_id, None)
