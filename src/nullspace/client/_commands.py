"""Sans-I/O core of `sandbox.commands`: request bodies, public types, event → result assembly.

`AsyncCommands` and the generated `Commands` drive the same pieces: `run_body()` builds the JSON
of `POST .../commands`; `CommandOutput.feed(event)` accumulates stdout/stderr and returns the
`OutputMessage` to hand to a callback; `CommandOutput.finish(check)` returns the
`CommandResult` or raises `CommandExitError` / `CommandTimeoutError`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._exceptions import (
    CommandExitError,
    CommandTimeoutError,
    InvalidArgumentError,
    ServerError,
    TransportError,
)
from ._models import OutputMessage

OutputCallback = Callable[[OutputMessage], Any]
SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


@dataclass
class CommandResult:
    """How a command ended and what it printed.

    Attributes:
        stdout: Everything it wrote to stdout (decoded as UTF-8, invalid bytes replaced).
        stderr: Everything it wrote to stderr.
        exit_code: Its exit code; 128 + N when it was killed by signal N; -1 when the sandbox
            went away before it ended.
        status: "exited" (it ended by itself), "killed" (by `kill()`), "timeout" (its
            `timeout` passed and its process tree was killed) or "lost" (the sandbox ended).
        error: What ended it when it did not simply exit, else None.
        signal: The signal that ended it, if any.
        command_id: The command's id in the sandbox.
    """

    stdout: str
    stderr: str
    exit_code: int
    status: str = "exited"
    error: str | None = None
    signal: int | None = None
    command_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the command exited with code 0."""
        return self.exit_code == 0 and self.status == "exited"


@dataclass
class CommandInfo:
    """A command the sandbox knows about (`sandbox.commands.list()`).

    Attributes:
        id: Its id (`cmd_...`), for `kill`, `send_stdin` and `connect`.
        pid: Its process id inside the sandbox.
        cmd: The command line.
        cwd: Its working directory.
        background: True if started with `background=True`.
        started_at: ISO-8601 start time.
        running: False once it ended.
        exit_code: Its exit code once it ended.
        status: "running", "exited", "killed" or "timeout".
        pty: (rows, cols) of its terminal, for a command on a pseudo-terminal (`sandbox.pty`).
    """

    id: str
    pid: int
    cmd: str
    cwd: str = ""
    background: bool = False
    started_at: str = ""
    running: bool = True
    exit_code: int | None = None
    status: str = "running"
    pty: tuple[int, int] | None = None

    @classmethod
    def from_dict(cls, data: Any) -> CommandInfo:
        """Parse a CommandInfo from the server's JSON."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ServerError(f"malformed command info in server response: {data!r}"[:500])
        return cls(
            id=data["id"],
            pid=int(data.get("pid") or 0),
            cmd=str(data.get("cmd") or ""),
            cwd=str(data.get("cwd") or ""),
            background=bool(data.get("background")),
            started_at=str(data.get("started_at") or ""),
            running=bool(data.get("running")),
            exit_code=data.get("exit_code"),
            status=str(data.get("status") or "running"),
            pty=_size(data.get("pty")),
        )


def _size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, dict) and isinstance(value.get("rows"), int) and isinstance(value.get("cols"), int):
        return value["rows"], value["cols"]
    return None


def _data(data: str | bytes, text_key: str) -> dict[str, str]:
    if isinstance(data, str):
        return {text_key: data}
    if isinstance(data, bytes | bytearray | memoryview):
        return {f"{text_key}_base64": base64.b64encode(bytes(data)).decode("ascii")}
    raise InvalidArgumentError(f"stdin data must be str or bytes, not {type(data).__name__}")


def run_body(
    cmd: str | list[str],
    cwd: str | None,
    envs: dict[str, str] | None,
    timeout: float | None,
    stdin: str | bytes | None,
    background: bool,
) -> dict[str, Any]:
    """The JSON body of `POST /v1/sandboxes/{id}/commands`."""
    if isinstance(cmd, str):
        if not cmd.strip():
            raise InvalidArgumentError("cmd must not be empty")
    elif isinstance(cmd, list | tuple) and cmd and all(isinstance(a, str) for a in cmd):
        cmd = list(cmd)
    else:
        raise InvalidArgumentError("cmd must be a shell command string or a non-empty list of strings")
    body: dict[str, Any] = {"cmd": cmd, "background": bool(background)}
    if cwd is not None:
        body["cwd"] = cwd
    if envs is not None:
        body["envs"] = dict(envs)
    if timeout is not None:
        body["timeout"] = timeout
    if stdin is not None:
        body.update(_data(stdin, "stdin"))
    return body


def stdin_body(data: str | bytes | None, eof: bool) -> dict[str, Any]:
    """The JSON body of `POST .../commands/{id}/stdin`."""
    body: dict[str, Any] = {"eof": eof}
    if data is not None:
        body.update(_data(data, "data"))
    return body


def kill_body(signal: str) -> dict[str, str]:
    """The JSON body of `POST .../commands/{id}/kill`."""
    name = signal.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name not in SIGNALS:
        raise InvalidArgumentError(f"signal must be one of {', '.join(SIGNALS)}")
    return {"signal": name}


class CommandOutput:
    """Folds a command's events into its stdout, stderr and result."""

    def __init__(self) -> None:
        self.stdout_parts: list[str] = []
        self.stderr_parts: list[str] = []
        self.command_id: str | None = None
        self.pid: int | None = None
        self.end: dict[str, Any] | None = None

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_parts)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_parts)

    def feed(self, event: dict[str, Any]) -> OutputMessage | None:
        """Take one event; returns the output message to emit, if it is one."""
        kind = event.get("type")
        if kind in ("stdout", "stderr"):
            text = event.get("text")
            if not isinstance(text, str):
                return None
            (self.stdout_parts if kind == "stdout" else self.stderr_parts).append(text)
            return OutputMessage(line=text, timestamp=event.get("timestamp"), error=kind == "stderr")
        if kind == "start":
            self.command_id = event.get("id")
            self.pid = event.get("pid")
        elif kind == "end":
            self.end = event
        return None

    def result(self) -> CommandResult:
        """The result so far (`exit_code` is -1 and status "running" before the end event)."""
        end = self.end or {}
        code = end.get("exit_code")
        return CommandResult(
            stdout=self.stdout,
            stderr=self.stderr,
            exit_code=code if isinstance(code, int) else -1,
            status=str(end.get("status") or ("exited" if self.end else "running")),
            error=end.get("error"),
            signal=end.get("signal"),
            command_id=self.command_id,
        )

    def finish(self, check: bool) -> CommandResult:
        """The result; with `check`, raise when the command did not exit with code 0.

        Raises:
            TransportError: the stream ended without an end event.
            CommandTimeoutError: the command hit its timeout.
            CommandExitError: it exited non-zero, was killed, or the sandbox went away.
        """
        if self.end is None:
            raise TransportError("the command's output stream ended without its end event")
        result = self.result()
        if check and not result.ok:
            raise exit_error(result)
        return result


def exit_error(result: CommandResult) -> CommandExitError:
    """The exception for a command that did not exit with code 0."""
    if result.status == "timeout":
        return CommandTimeoutError(f"command {result.error or 'timed out'}", result)
    if result.status == "lost":
        return CommandExitError(f"command lost: {result.error or 'the sandbox went away'}", result)
    what = result.error or f"exited with code {result.exit_code}"
    tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
    detail = f": {tail[0][:500]}" if tail else ""
    return CommandExitError(f"command {what}{detail}", result)
