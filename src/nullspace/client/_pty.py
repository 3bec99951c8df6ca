"""Sans-I/O core of `sandbox.pty`: request bodies and the folding of terminal events.

`AsyncPty` and the generated `Pty` drive the same pieces: `pty_body()` builds the JSON of
`POST .../commands` for a command on a pseudo-terminal, `TerminalOutput.feed(event)` returns the
raw bytes a ``pty`` event carries and remembers the command's end.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from .._exceptions import InvalidArgumentError, ServerError, TransportError

DataCallback = Callable[[bytes], Any]
DEFAULT_SHELL = ["/bin/bash", "-i"]  # not -l: Debian's /etc/profile would reset PATH
MAX_SIDE = 1000


def size_body(rows: int, cols: int) -> dict[str, int]:
    """``{"rows", "cols"}``, checked."""
    for name, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
            raise InvalidArgumentError(f"{name} must be an integer in 1..{MAX_SIDE}")
    return {"rows": rows, "cols": cols}


def pty_body(
    rows: int,
    cols: int,
    cmd: str | list[str] | None,
    cwd: str | None,
    envs: dict[str, str] | None,
    timeout: float | None,
) -> dict[str, Any]:
    """The JSON body of `POST /v1/sandboxes/{id}/commands` for a terminal command."""
    if cmd is None:
        cmd = list(DEFAULT_SHELL)
    elif isinstance(cmd, list | tuple):
        if not cmd or not all(isinstance(a, str) for a in cmd):
            raise InvalidArgumentError("cmd must be a shell command string or a non-empty list of strings")
        cmd = list(cmd)
    elif not isinstance(cmd, str) or not cmd.strip():
        raise InvalidArgumentError("cmd must be a shell command string or a non-empty list of strings")
    body: dict[str, Any] = {
        "cmd": cmd,
        "background": True,
        "pty": size_body(rows, cols),
        "envs": {"LANG": "C.UTF-8", "TERM": "xterm-256color", **(envs or {})},
    }
    if cwd is not None:
        body["cwd"] = cwd
    if timeout is not None:
        body["timeout"] = timeout
    return body


def input_body(data: str | bytes) -> dict[str, str]:
    """The JSON body of `POST .../commands/{id}/stdin` for terminal input (keys, text)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgumentError(f"terminal input must be str or bytes, not {type(data).__name__}")
    return {"data_base64": base64.b64encode(bytes(data)).decode("ascii")}


class TerminalOutput:
    """Folds a terminal command's events: its bytes as they come, then its end."""

    def __init__(self) -> None:
        self.end: dict[str, Any] | None = None

    def feed(self, event: dict[str, Any]) -> bytes | None:
        """Take one event; the terminal bytes it carries, if any."""
        kind = event.get("type")
        if kind == "pty":
            try:
                return base64.b64decode(event.get("data") or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ServerError("the server sent terminal output that is not base64") from exc
        if kind == "end":
            self.end = event
        return None

    def exit_code(self) -> int:
        """The exit code (128 + N when killed by signal N; -1 when the sandbox went away).

        Raises:
            TransportError: the stream ended without the end event.
        """
        if self.end is None:
            raise TransportError("the terminal's output stream ended without its end event")
        code = self.end.get("exit_code")
        return code if isinstance(code, int) else -1
