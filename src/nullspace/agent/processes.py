"""Processes of ``/commands``: start, follow, feed, kill (the HTTP side is `commands.py`).

Each command is started by the agent as the sandbox user, in its own session and process group
(``start_new_session``) and with ``NULLSPACE_COMMAND_ID`` in its environment, so a timeout or a
kill reaches its whole tree: the group, the session, every descendant found in /proc, and every
process that inherited the marker (daemons that called ``setsid`` and were orphaned included).

Output is read by the command's own tasks whether or not anyone listens, and kept as a list of
events capped at ``max_output_bytes`` (text plus a per-event overhead, so a process printing
one byte at a time is bounded too); past the cap a stderr marker is added and the rest dropped.
A reader replays that list from the start and then follows it (`Command.follow`), so a
background command can be re-attached to as often as wanted.

Exit is noticed through a pidfd, not through the pipes: output that processes left behind keep
writing after the command itself exited is collected for ``OUTPUT_GRACE`` seconds only.

A command started with ``pty: {rows, cols}`` runs on a pseudo-terminal (it is the session
leader and the terminal is its controlling tty): its output is one stream of raw bytes
(``pty`` events, base64), stdin writes go to the terminal, and ``resize`` changes the window
size (the kernel sends SIGWINCH). Terminal sessions are interactive and may print without end,
so their output is a ring: the last ``max_output_bytes`` are kept for late readers, and a reader
that falls behind skips to the oldest kept event instead of ending the session. A command started
with ``output: "ring"`` keeps its stdout/stderr the same way (the E2B door's processes: servers
that log for hours).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import collections
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from . import messages
from .config import AgentConfig
from .contexts import AgentError, validate_envs
from .kernel_process import kernel_env, make_preexec

log = logging.getLogger("nullspace.agent")

Event = dict[str, Any]
READ_BYTES = 64 * 1024
EVENT_OVERHEAD = 128  # bytes charged per event on top of its text (bounds tiny-chunk floods)
OUTPUT_GRACE = 1.0  # seconds to keep reading pipes after the command exited
MAX_FINISHED = 32  # finished background commands kept for late readers
STDIN_TIMEOUT = 30.0  # seconds a stdin write may wait for the process to read
MARKER = "NULLSPACE_COMMAND_ID"
SIGNALS = {"SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"}
MAX_PTY_SIDE = 1000  # rows and cols of a terminal
MAX_TAG = 256


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that is at most `max_bytes` UTF-8 bytes."""
    return text.encode("utf-8", "surrogatepass")[: max(max_bytes, 0)].decode("utf-8", "ignore")


# -- finding a process tree ----------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid → (ppid, pgrp, session) for every process we can see."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        try:
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
        except (IndexError, ValueError):
            continue
    return table


def _marked(command_id: str) -> set[int]:
    """Processes whose environment carries ``NULLSPACE_COMMAND_ID=<command_id>``."""
    marker = f"{MARKER}={command_id}".encode()
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = fh.read(1 << 20)
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(int(name))
    return found


def tree_pids(
    leader: int, table: dict[int, tuple[int, int, int]], marked: set[int] = frozenset()
) -> set[int]:
    """The processes of a command started as a session leader: its session, its process group,
    the `marked` ones, and all their descendants (pure; `table` as `_proc_table` returns it)."""
    found = {pid for pid, (_, pgrp, sid) in table.items() if sid == leader or pgrp == leader}
    found |= marked & table.keys()
    if leader in table:
        found.add(leader)
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    found.discard(1)
    return found


def kill_tree(leader: int, command_id: str, sig: int = signal.SIGKILL) -> int:
    """Send `sig` to the whole tree of `leader`, repeatedly (forks race with us). Returns how
    many processes were signalled."""
    total = 0
    for _ in range(5):
        with contextlib.suppress(OSError):
            os.killpg(leader, sig)
        pids = tree_pids(leader, _proc_table(), _marked(command_id))
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        total += len(pids)
        if sig != signal.SIGKILL:
            break
    return total


# -- one command ---------------------------------------------------------------------------------


class Command:
    def __init__(
        self,
        argv: list[str],
        display: str,
        cwd: str,
        *,
        background: bool,
        timeout: float | None,
        max_output: int,
        pty: tuple[int, int] | None = None,
        tag: str | None = None,
        envs: dict[str, str] | None = None,
        ring: bool = False,
    ) -> None:
        self.id = "cmd_" + secrets.token_hex(8)
        self.argv = argv
        self.display = display
        self.cwd = cwd
        self.background = background
        self.timeout = timeout
        self.max_output = max_output
        self.pty = pty  # (rows, cols) while on a terminal
        self.ring = ring or pty is not None  # output kept as a ring of the newest, not capped
        self.tag = tag
        self.envs = envs or {}
        self.started_at = _now()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.master_fd: int | None = None
        self.events: collections.deque[Event] = collections.deque()
        self.base = 0  # index of events[0] among every event ever pushed (a PTY drops old ones)
        self.sizes: collections.deque[int] = collections.deque()  # bytes charged per kept event
        self.used = 0
        self.truncated = False
        self.end: Event | None = None
        self.kill_reason: str | None = None
        self.stdin_fd: int | None = None
        self.stdin_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._exited: asyncio.Future[int] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- events ----------------------------------------------------------------------------

    def _push(self, event: Event, size: int = 0) -> None:
        self.events.append(event)
        self.sizes.append(size)
        self._changed.set()
        self._changed = asyncio.Event()

    def _keep(self, event: Event, size: int) -> None:
        """Push `event` into the ring: the oldest events go once more than `max_output` is kept."""
        self.used += size
        self._push(event, size)
        while self.used > self.max_output and len(self.events) > 1:
            self.events.popleft()
            self.used -= self.sizes.popleft()
            self.base += 1

    def terminal_output(self, data: bytes) -> None:
        """Raw terminal bytes (always a ring)."""
        if data:
            self._keep({"type": "pty", "data": base64.b64encode(data).decode("ascii")}, len(data) + EVENT_OVERHEAD)

    def output(self, kind: str, text: str) -> None:
        if not text:
            return
        if self.ring:
            size = len(text.encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD
            self._keep({"type": kind, "text": text, "timestamp": _now()}, size)
            return
        if self.truncated:
            return
        size = len(text.encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD
        if self.used + size > self.max_output:
            text = _cut(text, self.max_output - self.used - EVENT_OVERHEAD)
            self.truncated = True
        self.used += size
        if text:
            self._push({"type": kind, "text": text, "timestamp": _now()})
        if self.truncated:
            marker = (
                f"\n[nullspace: output truncated after {self.max_output} bytes; the command keeps running]\n"
            )
            self._push({"type": "stderr", "text": marker, "timestamp": _now()})

    async def follow(self, keepalive: float, from_now: bool = False) -> AsyncIterator[Event]:
        """Every event from the start (the oldest kept, for a terminal), then new ones as they
        come, until ``end``; the ``start`` event always comes first. `from_now`: the ``start``
        event, then only new ones (or the end of a command that already ended)."""
        start = {"type": "start", "id": self.id, "pid": self.pid}
        index = self.base
        if from_now:
            yield start
            if self.end is not None:
                yield self.end
                return
            index = self.base + len(self.events)
        started = from_now
        while True:
            while index < self.base + len(self.events):
                index = max(index, self.base)  # fell behind a terminal's ring: skip ahead
                event = self.events[index - self.base]
                index += 1
                if event["type"] == "start":
                    if started:
                        continue
                elif not started:
                    yield start
                started = True
                yield event
                if event["type"] == "end":
                    return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), keepalive)
            except TimeoutError:
                yield messages.keepalive()

    @property
    def running(self) -> bool:
        return self.end is None

    def info(self) -> dict[str, Any]:
        end = self.end or {}
        return {
            "id": self.id,
            "pid": self.pid,
            "cmd": self.display,
            "argv": self.argv,
            "envs": self.envs,
            "cwd": self.cwd,
            "background": self.background,
            "started_at": self.started_at,
            "running": self.running,
            "exit_code": end.get("exit_code"),
            "status": end.get("status", "running"),
            "tag": self.tag,
            "pty": {"rows": self.pty[0], "cols": self.pty[1]} if self.pty else None,
        }

    # -- process -------------------------------------------------------------------------------

    def start(
        self, env: dict[str, str], stdin: bytes | None, oom_score_adj: int, stdin_open: bool | None = None
    ) -> None:
        """`stdin_open`: keep stdin open for later writes (default: for background commands or
        when `stdin` data is given)."""
        env = {**env, MARKER: self.id}
        if self.pty is not None:
            self._start_on_terminal(env, oom_score_adj)
        else:
            keep_stdin = (self.background or stdin is not None) if stdin_open is None else stdin_open
            self.proc = subprocess.Popen(  # noqa: S603 - running the user's command is the point
                self.argv,
                stdin=subprocess.PIPE if keep_stdin or stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=make_preexec(oom_score_adj),  # noqa: PLW1509 - raw syscalls only
            )
            if self.proc.stdin is not None:
                self.stdin_fd = self.proc.stdin.fileno()
                os.set_blocking(self.stdin_fd, False)
        self.pid = self.proc.pid
        self._push({"type": "start", "id": self.id, "pid": self.pid})
        self.task = asyncio.create_task(self._supervise(stdin), name=f"command-{self.id}")

    def _start_on_terminal(self, env: dict[str, str], oom_score_adj: int) -> None:
        assert self.pty is not None
        master, slave = os.openpty()
        try:
            _set_window(slave, *self.pty)
            os.set_blocking(master, False)
            os.set_inheritable(master, False)
            base = make_preexec(oom_score_adj)

            def preexec() -> None:  # between fork and exec: raw syscalls only
                base()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the terminal becomes the session's

            self.proc = subprocess.Popen(  # noqa: S603 - running the user's command is the point
                self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.cwd,
                env={"TERM": "xterm-256color", **env},
                start_new_session=True,
                close_fds=True,
                preexec_fn=preexec,  # noqa: PLW1509
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master_fd = master
        self.stdin_fd = os.dup(master)
        os.set_blocking(self.stdin_fd, False)

    def resize(self, rows: int, cols: int) -> None:
        if self.master_fd is None or self.pty is None:
            raise AgentError(409, "conflict", f"{self.id} does not run on a terminal")
        if self.end is None:
            _set_window(self.master_fd, rows, cols)
            self.pty = (rows, cols)

    def _watch_exit(self) -> asyncio.Future[int]:
        """A future for the exit status, from a pidfd (a thread where pidfds are missing)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        proc = self.proc
        assert proc is not None
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (OSError, AttributeError):

            def wait() -> None:
                code = proc.wait()
                loop.call_soon_threadsafe(lambda: future.done() or future.set_result(code))

            threading.Thread(target=wait, name=f"wait-{self.id}", daemon=True).start()
            return future

        def ready() -> None:
            code = proc.poll()
            if code is not None and not future.done():
                loop.remove_reader(pidfd)
                os.close(pidfd)
                future.set_result(code)

        loop.add_reader(pidfd, ready)
        return future

    async def _pump(self, pipe: Any, kind: str) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_BYTES)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while chunk := await reader.read(READ_BYTES):
                self.output(kind, decoder.decode(chunk))
            self.output(kind, decoder.decode(b"", final=True))
        finally:
            transport.close()

    async def _pump_terminal(self) -> None:
        """Read the terminal until every process closed it (EIO) or it was closed here."""
        fd = self.master_fd
        assert fd is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = os.read(fd, READ_BYTES)
            except BlockingIOError:
                readable = loop.create_future()
                loop.add_reader(fd, lambda f=readable: f.done() or f.set_result(None))
                try:
                    await readable
                finally:
                    loop.remove_reader(fd)
                continue
            except OSError:  # EIO: no process has the terminal open any more
                return
            if not chunk:
                return
            self.terminal_output(chunk)

    async def _supervise(self, stdin: bytes | None) -> None:
        proc = self.proc
        assert proc is not None
        exited = self._watch_exit()
        if self.master_fd is not None:
            pumps = [asyncio.create_task(self._pump_terminal())]
        else:
            pumps = [
                asyncio.create_task(self._pump(proc.stdout, "stdout")),
                asyncio.create_task(self._pump(proc.stderr, "stderr")),
            ]
        feeder = None
        if stdin:
            feeder = asyncio.create_task(self._feed(stdin, close=not self.background))
        elif stdin is not None and not self.background:
            self.close_stdin()
        try:
            try:
                code = await asyncio.wait_for(asyncio.shield(exited), self.timeout)
            except TimeoutError:
                self.kill(reason="timeout")
                code = await exited
            _, pending = await asyncio.wait(pumps, timeout=OUTPUT_GRACE)
            for task in pending:
                task.cancel()
        except asyncio.CancelledError:
            self.kill(reason="agent shutting down")
            raise
        except Exception:
            log.exception("command %s: supervisor failed", self.id)
            self.kill(reason="internal error")
            code = proc.wait()
        finally:
            if feeder is not None:
                feeder.cancel()
            self.close_stdin()
            if self.master_fd is not None:
                os.close(self.master_fd)
                self.master_fd = None
        self._finish(code)

    def _finish(self, code: int) -> None:
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig else code
        status, error = "exited", None
        if self.kill_reason == "timeout":
            status, error = "timeout", f"killed after the {self.timeout:g} s timeout"
        elif self.kill_reason is not None and sig is not None:
            status, error = "killed", f"killed ({signal.Signals(sig).name}, {self.kill_reason})"
        elif sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            error = f"terminated by signal {sig} ({name})"
        self.end = {"type": "end", "exit_code": exit_code, "signal": sig, "status": status, "error": error}
        self._push(self.end)

    def kill(self, sig: int = signal.SIGKILL, reason: str = "by request") -> bool:
        """Signal the command's tree; False if it already ended."""
        if self.end is not None or self.proc is None:
            return False
        if self.kill_reason is None or sig == signal.SIGKILL:
            self.kill_reason = reason
        if sig == signal.SIGKILL:
            kill_tree(self.pid, self.id)
        else:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, sig)
        return True

    # -- stdin ---------------------------------------------------------------------------------

    async def _feed(self, data: bytes, close: bool) -> None:
        with contextlib.suppress(AgentError, OSError):
            await self.write_stdin(data, timeout=None)
        if close:
            self.close_stdin()

    async def write_stdin(self, data: bytes, timeout: float | None = STDIN_TIMEOUT) -> None:
        async with self.stdin_lock:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            view = memoryview(data)
            while view:
                fd = self.stdin_fd
                if fd is None:
                    raise AgentError(409, "conflict", f"the stdin of {self.id} is closed")
                try:
                    view = view[os.write(fd, view) :]
                    continue
                except BlockingIOError:
                    pass
                except BrokenPipeError as exc:
                    self.close_stdin()
                    raise AgentError(409, "conflict", f"{self.id} closed its stdin") from exc
                writable = loop.create_future()
                loop.add_writer(fd, lambda f=writable: f.done() or f.set_result(None))
                try:
                    wait = None if deadline is None else max(deadline - loop.time(), 0)
                    await asyncio.wait_for(writable, wait)
                except TimeoutError as exc:
                    raise AgentError(409, "conflict", f"{self.id} is not reading its stdin") from exc
                finally:
                    if self.stdin_fd == fd:
                        loop.remove_writer(fd)

    def close_stdin(self) -> None:
        fd, self.stdin_fd = self.stdin_fd, None
        if fd is None or self.proc is None:
            return
        with contextlib.suppress(OSError):
            asyncio.get_running_loop().remove_writer(fd)
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            else:
                os.close(fd)  # a terminal's write end (a dup of its master)


# -- the registry ----------------------------------------------------------------------------------


class Commands:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.all: dict[str, Command] = {}
        self.finished: collections.deque[str] = collections.deque()

    def get(self, command_id: str) -> Command:
        cmd = self.all.get(command_id)
        if cmd is None:
            raise AgentError(404, "not_found", f"command {command_id} does not exist (or ended long ago)")
        return cmd

    def start(self, body: dict[str, Any]) -> Command:
        argv, display = _argv(body.get("cmd"))
        cwd = body.get("cwd") or self.config.workdir
        if not isinstance(cwd, str) or "\0" in cwd:
            raise AgentError(400, "invalid_argument", "cwd must be a path")
        if not os.path.isabs(cwd):
            cwd = os.path.join(self.config.workdir, cwd)
        if not os.path.isdir(cwd):
            raise AgentError(400, "invalid_argument", f"cwd {cwd!r} does not exist in the sandbox")
        env = kernel_env()
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise AgentError(400, "invalid_argument", "timeout must be a positive number of seconds")
        envs = validate_envs(body.get("envs"))
        env.update(envs)
        stdin_open = body.get("stdin_open")
        if stdin_open is not None and not isinstance(stdin_open, bool):
            raise AgentError(400, "invalid_argument", "stdin_open must be a boolean")
        tag = body.get("tag")
        if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG):
            raise AgentError(400, "invalid_argument", f"tag must be a string of at most {MAX_TAG} characters")
        pty = terminal_size(body["pty"]) if body.get("pty") is not None else None
        ring = body.get("output", "capped")
        if ring not in ("capped", "ring"):
            raise AgentError(400, "invalid_argument", "output must be 'capped' or 'ring'")
        stdin = _stdin(body)
        if pty is not None and stdin is not None:
            raise AgentError(400, "invalid_argument", "a terminal command takes its input later, not as stdin")
        cmd = Command(
            argv,
            display,
            cwd,
            background=bool(body.get("background")),
            timeout=timeout,
            max_output=self.config.max_output_bytes,
            pty=pty,
            tag=tag,
            envs=envs,
            ring=ring == "ring",
        )
        try:
            cmd.start(env, stdin, self.config.oom_score_adj, stdin_open)
        except OSError as exc:
            raise AgentError(
                400, "invalid_argument", f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            ) from exc
        self.all[cmd.id] = cmd
        if cmd.background:
            assert cmd.task is not None
            cmd.task.add_done_callback(lambda _: self._retire(cmd))
        return cmd

    def _retire(self, cmd: Command) -> None:
        self.finished.append(cmd.id)
        while len(self.finished) > MAX_FINISHED:
            self.all.pop(self.finished.popleft(), None)

    def forget(self, cmd: Command) -> None:
        if not cmd.background:
            self.all.pop(cmd.id, None)

    def find(self, pid: int | None = None, tag: str | None = None) -> Command:
        """The command with that pid (or tag): the running one, else the latest that ended."""
        found = [c for c in self.all.values() if (pid is not None and c.pid == pid) or (tag is not None and c.tag == tag)]
        if not found:
            what = f"pid {pid}" if pid is not None else f"tag {tag!r}"
            raise AgentError(404, "not_found", f"no process with {what} (or it ended long ago)")
        running = [c for c in found if c.running]
        return (running or found)[-1]


def terminal_size(value: Any) -> tuple[int, int]:
    """(rows, cols) from ``{"rows", "cols"}``."""
    if not isinstance(value, dict):
        raise AgentError(400, "invalid_argument", "pty must be an object {rows, cols}")
    rows, cols = value.get("rows"), value.get("cols")
    for name, n in (("rows", rows), ("cols", cols)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PTY_SIDE:
            raise AgentError(400, "invalid_argument", f"pty.{name} must be an integer in 1..{MAX_PTY_SIDE}")
    return rows, cols


def _set_window(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _argv(cmd: Any) -> tuple[list[str], str]:
    if isinstance(cmd, str) and cmd.strip() and "\0" not in cmd:
        # Not a login shell (-l): Debian's /etc/profile resets PATH and would hide the template's venv.
        return ["/bin/bash", "-c", cmd], cmd
    if isinstance(cmd, list) and cmd and all(isinstance(a, str) and "\0" not in a for a in cmd) and cmd[0]:
        return list(cmd), " ".join(cmd)
    raise AgentError(400, "invalid_argument", "cmd must be a non-empty string or a list of strings")


def data_field(body: dict[str, Any], text_key: str, b64_key: str) -> bytes | None:
    text, b64 = body.get(text_key), body.get(b64_key)
    if text is not None and b64 is not None:
        raise AgentError(400, "invalid_argument", f"give {text_key} or {b64_key}, not both")
    if text is not None:
        if not isinstance(text, str):
            raise AgentError(400, "invalid_argument", f"{text_key} must be a string")
        return text.encode("utf-8", "surrogateescape")
    if b64 is not None:
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise AgentError(400, "invalid_argument", f"{b64_key} is not valid base64") from exc
    return None


def _stdin(body: dict[str, Any]) -> bytes | None:
    return data_field(body, "stdin", "stdin_base64")
