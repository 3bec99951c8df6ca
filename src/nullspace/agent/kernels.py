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
import logging
import queue
import subprocess
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from . import languages
from .kernel_process import Prelaunched, kernel_argv, kernel_env, make_preexec

log = logging.getLogger("nullspace.agent")

Routed = tuple[str, "dict[str, Any] | None"]  # (channel, message); ("wake", None) pokes a waiter


RECONNECT_MS = 10
"""zmq's reconnect interval for the client's sockets (default 100 ms): they usually connect
before the kernel has bound its sockets, and each retry was up to 100 ms of start-up."""


class KernelStartError(Exception):
    """The kernel could not be started (bad kernelspec, crash at startup, no answer)."""


class AdoptingKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose first launch adopts a process that `kernel_process.prelaunch`
    started (same argv, env and connection file) instead of starting one; restarts launch anew."""

    adopt: Prelaunched | None = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        prelaunched, self.adopt = self.adopt, None
        if prelaunched is None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            return
        provisioner = self.provisioner
        assert provisioner is not None
        provisioner.process = prelaunched.process  # type: ignore[attr-defined]
        provisioner.pid = provisioner.pgid = prelaunched.process.pid  # type: ignore[attr-defined]
        provisioner.cwd = kw.get("cwd")  # type: ignore[attr-defined]
        self._reconcile_connection_info(provisioner.connection_info)  # type: ignore[attr-defined]


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
        prelaunched: Prelaunched | None = None,
    ) -> None:
        self.kernel_name = kernel_name
        self.extra_arguments = list(extra_arguments or [])  # appended to the kernelspec argv
        self.cwd = cwd
        self.connection_file = connection_file
        self.env = kernel_env(env)
        self.startup_timeout = startup_timeout
        self.oom_score_adj = oom_score_adj
        self.kernel_output = kernel_output
        self.prelaunched = prelaunched  # adopted by the first start (same kernel and cwd)
        self.km: AsyncKernelManager | None = None
        self.kc: AsyncKernelClient | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._routes: dict[str, asyncio.Queue[Routed]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        km = AdoptingKernelManager(
            kernel_name=self.kernel_name,
            transport="ipc",
            connection_file=self.connection_file,
        )
        self.km = km
        languages.apply_transport(km)  # Deno and JJava speak TCP only
        self._adopt(km)
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
            with contextlib.suppress(Exception):  # no such kernelspec: start_kernel says so
                km.kernel_spec.argv = kernel_argv(km.kernel_spec.argv)
            await km.start_kernel(**launch)
        except Exception as exc:
            raise KernelStartError(f"cannot start kernel {self.kernel_name!r}: {exc}") from exc
        await self._connect()

    def _adopt(self, km: AdoptingKernelManager) -> None:
        """Hand the prelaunched process to `km` if it is this kernelspec's; else stop it."""
        prelaunched, self.prelaunched = self.prelaunched, None
        if prelaunched is None:
            return
        try:
            same = (
                prelaunched.connection_file == self.connection_file
                and km.kernel_spec.resource_dir == prelaunched.resource_dir
                and km.transport == "ipc"
            )
        except Exception:
            same = False
        if not same:
            log.warning("not adopting the prelaunched %s kernel: its kernelspec differs", self.kernel_name)
            prelaunched.process.kill()
            return
        km.load_connection_file(self.connection_file)
        km._connection_file_written = True  # the kernel may be reading it: never rewrite it
        km.adopt = prelaunched

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
        kc.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)  # defaults for its new sockets
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        self.kc = kc
        try:
            await asyncio.wait_for(self._wait_ready(kc), self.startup_timeout)
        except Exception as exc:
            text = "did not answer"
            if not await self.km.is_alive():
                text = f"exited with code {self.returncode()}"
            raise KernelStartError(f"kernel {self.kernel_name!r} {text}: {exc!r}") from exc
        self._readers = [
            asyncio.create_task(self._read("shell", kc.shell_channel), name="kernel-shell"),
            asyncio.create_task(self._read("iopub", kc.iopub_channel), name="kernel-iopub"),
        ]

    async def _wait_ready(self, kc: AsyncKernelClient) -> None:
        """Send kernel_info until it is answered on shell and iopub delivers too (the SUB socket
        is subscribed, so no output of a first run is lost). jupyter_client's wait_for_ready does
        the same with 1 s and 0.2 s waits, which cost ~200 ms of every start (measured)."""
        assert self.km is not None
        while True:
            kc.kernel_info()
            if await _receive(kc.shell_channel, 0.5, "kernel_info_reply") and await _receive(
                kc.iopub_channel, 0.05
            ):
                return
            if not await self.km.is_alive():
                raise KernelStartError("the kernel process exited")

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
        store_history: bool | None = None,
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
                "store_history": not silent if store_history is None else store_history,
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


async def _receive(channel: Any, timeout: float, msg_type: str | None = None) -> bool:
    """Whether `channel` delivers a message (of `msg_type`, if given) within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await channel.get_msg(timeout=left)
        except queue.Empty:
            return False
        if msg_type is None or msg.get("msg_type") == msg_type:
            return True
    return False
