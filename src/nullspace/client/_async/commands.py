"""`AsyncCommands` (`sandbox.commands`): run processes in the sandbox."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Literal, overload
from urllib.parse import quote

from ..._exceptions import NotFoundError, SandboxNotFoundError
from .._commands import (
    CommandInfo,
    CommandOutput,
    CommandResult,
    OutputCallback,
    kill_body,
    run_body,
    stdin_body,
)
from .._errors import map_errors
from .._execution import NDJSONDecoder, acall
from .._models import OutputMessage
from ._http import AsyncAPIClient


class AsyncCommandHandle:
    """A command started with `background=True`.

    `await handle.wait()` follows its output to the end and returns the `CommandResult`;
    `async for message in handle` yields its `OutputMessage`s as they come. Both start from
    the command's first byte of output each time (the sandbox keeps it, up to a cap), so a
    handle can be waited on again, or re-created with `sandbox.commands.connect(id)`.
    Leaving either does not stop the command; `kill()` does.
    """

    def __init__(
        self,
        info: CommandInfo,
        commands: AsyncCommands,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        check: bool = True,
        request_timeout: float | None = None,
    ) -> None:
        """Wrap a running command; use `commands.run(..., background=True)` or `connect()`."""
        self.info = info
        self._commands = commands
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._check = check
        self._request_timeout = request_timeout
        self._output = CommandOutput()

    @property
    def id(self) -> str:
        """The command's id (`cmd_...`)."""
        return self.info.id

    @property
    def pid(self) -> int:
        """Its process id inside the sandbox."""
        return self.info.pid

    @property
    def stdout(self) -> str:
        """The stdout received so far by this handle."""
        return self._output.stdout

    @property
    def stderr(self) -> str:
        """The stderr received so far by this handle."""
        return self._output.stderr

    @property
    def exit_code(self) -> int | None:
        """The exit code once this handle saw the end, else None."""
        return self._output.result().exit_code if self._output.end is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, pid={self.pid})"

    async def __aiter__(self) -> AsyncGenerator[OutputMessage, None]:
        """Yield the command's output from the start, then live, until it ends."""
        self._output = CommandOutput()
        path = self._commands._path("commands", quote(self.id, safe=""), "events")
        events = self._commands._events("GET", path, None, self._request_timeout)
        async with aclosing(events):
            async for event in events:
                message = self._output.feed(event)
                if message is not None:
                    yield message
                if self._output.end is not None:
                    break

    async def wait(
        self,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        check: bool | None = None,
    ) -> CommandResult:
        """Follow the command to its end (callbacks fire for all of its output, from the start).

        Args:
            on_stdout: Called with each stdout `OutputMessage` (default: the one given to `run`).
            on_stderr: Called with each stderr `OutputMessage` (default: the one given to `run`).
            check: Raise when it does not exit with 0 (default: as given to `run`).

        Raises:
            CommandExitError: it exited non-zero or was killed (with `check`).
            CommandTimeoutError: it hit its `timeout` (with `check`).
        """
        stdout_cb = on_stdout or self._on_stdout
        stderr_cb = on_stderr or self._on_stderr
        async with aclosing(self.__aiter__()) as messages:
            async for message in messages:
                await acall(stderr_cb if message.error else stdout_cb, message)
        return self._output.finish(self._check if check is None else check)

    async def kill(self, signal: str = "SIGKILL") -> bool:
        """Signal the command (SIGKILL: its whole process tree). False if it had ended."""
        return await self._commands.kill(self.id, signal)

    async def send_stdin(self, data: str | bytes) -> None:
        """Write to the command's stdin."""
        await self._commands.send_stdin(self.id, data)

    async def close_stdin(self) -> None:
        """Close the command's stdin (it reads end-of-file)."""
        await self._commands.close_stdin(self.id)


class AsyncCommands:
    """`sandbox.commands`: processes run as the sandbox's user, in the same filesystem as the
    code contexts, with the sandbox's environment variables."""

    def __init__(self, api: AsyncAPIClient, base_path: str) -> None:
        """Created by the sandbox; use `sandbox.commands`."""
        self._api = api
        self._base = base_path

    def _path(self, *parts: str) -> str:
        return "/".join([self._base, *parts])

    def _command(self, command_id: str, *parts: str) -> str:
        return self._path("commands", quote(command_id, safe=""), *parts)

    async def _events(
        self, method: str, path: str, body: Any, request_timeout: float | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        response = await self._api.open_stream(method, path, json=body, timeout=request_timeout)
        decoder = NDJSONDecoder()
        try:
            with map_errors(f"{method} {path}"):
                async for chunk in response.aiter_bytes():
                    for event in decoder.feed(chunk):
                        yield event
                for event in decoder.flush():
                    yield event
        finally:
            await response.aclose()

    @overload
    async def run(
        self,
        cmd: str | builtins.list[str],
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: str | bytes | None = None,
        background: Literal[False] = False,
        check: bool = True,
        request_timeout: float | None = None,
    ) -> CommandResult: ...

    @overload
    async def run(
        self,
        cmd: str | builtins.list[str],
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: str | bytes | None = None,
        *,
        background: Literal[True],
        check: bool = True,
        request_timeout: float | None = None,
    ) -> AsyncCommandHandle: ...

    async def run(
        self,
        cmd: str | builtins.list[str],
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: str | bytes | None = None,
        background: bool = False,
        check: bool = True,
        request_timeout: float | None = None,
    ) -> CommandResult | AsyncCommandHandle:
        """Run a command and return its output and exit code.

        Args:
            cmd: A shell command (run with `/bin/bash -c`) or an argv list (run directly).
            cwd: Working directory (default: the template's, /home/user).
            envs: Extra environment variables for this command.
            timeout: Seconds after which the command and every process it started are killed
                (None: no limit but the sandbox's own).
            on_stdout: Called with each stdout `OutputMessage` as it arrives.
            on_stderr: Called with each stderr `OutputMessage` as it arrives.
            stdin: Data for the command's stdin. A foreground command then reads end-of-file;
                a background one keeps its stdin open for `send_stdin()`.
            background: Return an `AsyncCommandHandle` at once instead of waiting.
            check: Raise `CommandExitError` when the command does not exit with 0.
            request_timeout: Seconds for connecting and between two received bytes (the
                server sends a keepalive every 5 s, so long commands are fine).

        Returns:
            The `CommandResult`, or an `AsyncCommandHandle` with `background=True`.

        Raises:
            CommandExitError: it exited non-zero or was killed (with `check`).
            CommandTimeoutError: it hit `timeout` (with `check`).
            InvalidArgumentError: bad arguments, or `cwd` does not exist.
        """
        body = run_body(cmd, cwd, envs, timeout, stdin, background)
        if background:
            data = await self._api.request(
                "POST", self._path("commands"), json=body, timeout=request_timeout
            )
            info = CommandInfo.from_dict(data)
            return AsyncCommandHandle(info, self, on_stdout, on_stderr, check, request_timeout)
        output = CommandOutput()
        events = self._events("POST", self._path("commands"), body, request_timeout)
        async with aclosing(events):
            async for event in events:
                message = output.feed(event)
                if message is not None:
                    await acall(on_stderr if message.error else on_stdout, message)
                if output.end is not None:
                    break
        return output.finish(check)

    async def list(self, request_timeout: float | None = None) -> builtins.list[CommandInfo]:
        """The commands running in the sandbox (foreground and background)."""
        data = await self._api.request("GET", self._path("commands"), timeout=request_timeout)
        return [CommandInfo.from_dict(item) for item in data or []]

    async def connect(
        self, command_id: str, request_timeout: float | None = None
    ) -> AsyncCommandHandle:
        """A handle on a command started earlier (also one that already ended, for a while).

        Raises:
            NotFoundError: no such command.
        """
        data = await self._api.request("GET", self._command(command_id), timeout=request_timeout)
        return AsyncCommandHandle(CommandInfo.from_dict(data), self, request_timeout=request_timeout)

    async def kill(
        self, command_id: str, signal: str = "SIGKILL", request_timeout: float | None = None
    ) -> bool:
        """Signal a command: SIGKILL (the default) kills its whole process tree; other signals
        ("SIGTERM", "SIGINT", ...) go to its process group.

        Returns:
            True if it was running, False if it had already ended or is unknown.
        """
        try:
            data = await self._api.request(
                "POST",
                self._command(command_id, "kill"),
                json=kill_body(signal),
                timeout=request_timeout,
            )
        except SandboxNotFoundError:
            raise
        except NotFoundError:
            return False
        return bool(isinstance(data, dict) and data.get("killed"))

    async def send_stdin(
        self,
        command_id: str,
        data: str | bytes,
        eof: bool = False,
        request_timeout: float | None = None,
    ) -> None:
        """Write `data` to a command's stdin (then close it, with `eof`).

        Raises:
            ConflictError: its stdin is closed, or it does not read it (30 s).
        """
        await self._api.request(
            "POST",
            self._command(command_id, "stdin"),
            json=stdin_body(data, eof),
            timeout=request_timeout,
        )

    async def close_stdin(self, command_id: str, request_timeout: float | None = None) -> None:
        """Close a command's stdin: it reads end-of-file."""
        await self._api.request(
            "POST",
            self._command(command_id, "stdin"),
            json=stdin_body(None, True),
            timeout=request_timeout,
        )
