"""`AsyncPty` (`sandbox.pty`): interactive commands on a pseudo-terminal."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from .._commands import CommandInfo
from .._execution import acall
from .._pty import DataCallback, TerminalOutput, input_body, pty_body, size_body
from ._http import AsyncAPIClient
from .commands import AsyncCommands


class AsyncPtyHandle:
    """A command running on a pseudo-terminal (a shell, by default).

    `async for data in handle` yields the terminal's raw output bytes, from the oldest kept
    (the sandbox keeps the newest 8 MiB for readers that come late) and then live, until the
    command ends; `await handle.wait()` does the same and returns the exit code. Leaving either
    does not stop the command; `kill()` does, and so does the shell exiting.
    """

    def __init__(self, info: CommandInfo, pty: AsyncPty) -> None:
        """Wrap a running terminal; use `sandbox.pty.create()` or `connect()`."""
        self.info = info
        self._pty = pty
        self._output = TerminalOutput()

    @property
    def id(self) -> str:
        """The command's id (`cmd_...`)."""
        return self.info.id

    @property
    def pid(self) -> int:
        """Its process id inside the sandbox."""
        return self.info.pid

    @property
    def exit_code(self) -> int | None:
        """The exit code once this handle saw the end, else None."""
        return self._output.exit_code() if self._output.end is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, pid={self.pid})"

    async def __aiter__(self) -> AsyncGenerator[bytes, None]:
        """Yield the terminal's output bytes until the command ends."""
        self._output = TerminalOutput()
        path = self._pty._commands._command(self.id, "events")
        events = self._pty._commands._events("GET", path, None, None)
        async with aclosing(events):
            async for event in events:
                data = self._output.feed(event)
                if data:
                    yield data
                if self._output.end is not None:
                    break

    async def wait(self, on_data: DataCallback | None = None) -> int:
        """Follow the terminal to its end; `on_data` gets each chunk of output bytes.

        Returns:
            The exit code (128 + N when killed by signal N).
        """
        async with aclosing(self.__aiter__()) as chunks:
            async for data in chunks:
                await acall(on_data, data)
        return self._output.exit_code()

    async def send_input(self, data: str | bytes) -> None:
        """Type into the terminal: text or raw bytes (`"\\x03"` is Ctrl-C, `"\\r"` Enter)."""
        await self._pty.send_input(self.id, data)

    async def resize(self, rows: int, cols: int) -> None:
        """Change the terminal's size; the program in it gets SIGWINCH."""
        await self._pty.resize(self.id, rows, cols)

    async def kill(self, signal: str = "SIGKILL") -> bool:
        """Signal the command (SIGKILL: its whole process tree). False if it had ended."""
        return await self._pty._commands.kill(self.id, signal)


class AsyncPty:
    """`sandbox.pty`: interactive programs on a pseudo-terminal, as the sandbox's user."""

    def __init__(self, api: AsyncAPIClient, commands: AsyncCommands) -> None:
        """Created by the sandbox; use `sandbox.pty`."""
        self._api = api
        self._commands = commands

    async def create(
        self,
        rows: int = 24,
        cols: int = 80,
        cmd: str | list[str] | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> AsyncPtyHandle:
        """Start a program on a new terminal of `rows` x `cols` and return its handle.

        Args:
            rows: Terminal height (1..1000).
            cols: Terminal width (1..1000).
            cmd: A shell command string or an argv list (default: an interactive bash).
            cwd: Working directory (default: /home/user).
            envs: Extra environment variables (`TERM=xterm-256color` and `LANG=C.UTF-8`
                are set unless given).
            timeout: Seconds after which it and every process it started are killed
                (None: no limit but the sandbox's own).
            request_timeout: Seconds for the start request.

        Raises:
            InvalidArgumentError: bad arguments, or `cwd` does not exist.
        """
        body = pty_body(rows, cols, cmd, cwd, envs, timeout)
        data = await self._api.request(
            "POST", self._commands._path("commands"), json=body, timeout=request_timeout
        )
        return AsyncPtyHandle(CommandInfo.from_dict(data), self)

    async def connect(self, command_id: str, request_timeout: float | None = None) -> AsyncPtyHandle:
        """A handle on a terminal command started earlier.

        Raises:
            NotFoundError: no such command.
        """
        path = self._commands._command(command_id)
        data = await self._api.request("GET", path, timeout=request_timeout)
        return AsyncPtyHandle(CommandInfo.from_dict(data), self)

    async def send_input(
        self, command_id: str, data: str | bytes, request_timeout: float | None = None
    ) -> None:
        """Type `data` into a terminal command.

        Raises:
            ConflictError: the command ended.
        """
        path = self._commands._command(command_id, "stdin")
        await self._api.request("POST", path, json=input_body(data), timeout=request_timeout)

    async def resize(
        self, command_id: str, rows: int, cols: int, request_timeout: float | None = None
    ) -> None:
        """Change a terminal's size.

        Raises:
            ConflictError: the command does not run on a terminal.
        """
        path = self._commands._command(command_id, "resize")
        await self._api.request("POST", path, json=size_body(rows, cols), timeout=request_timeout)

    async def kill(self, command_id: str, signal: str = "SIGKILL", request_timeout: float | None = None) -> bool:
        """Signal a terminal command; False if it had ended or is unknown."""
        return await self._commands.kill(command_id, signal, request_timeout)

