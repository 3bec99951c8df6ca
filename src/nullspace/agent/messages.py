"""Jupyter messages → execute-stream events. Pure functions, no I/O (tested with plain dicts).

The event vocabulary is the public one (docs/api.md): ``number_of_executions``, ``stdout``,
``stderr``, ``result``, ``error``, ``keepalive``, ``end_of_execution``. Events are plain dicts
with a ``"type"`` key; ``encode`` turns one into an ASCII-only NDJSON line.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import UTC, datetime
from typing import Any

from .languages import tidy_error

Event = dict[str, Any]

CHUNK_BYTES = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def encode(event: Event) -> bytes:
    """One NDJSON line. ASCII only, so U+2028 and friends never split a line on the reader side."""
    return (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def timestamp(msg: dict[str, Any]) -> str | None:
    """The message header date as ISO-8601 (jupyter_client parses it into a datetime)."""
    date = (msg.get("header") or {}).get("date")
    if isinstance(date, datetime):
        return date.isoformat()
    return date if isinstance(date, str) else None


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def error_event(name: str, value: str, traceback: str = "", **extra: Any) -> Event:
    name, value = tidy_error(name, value, traceback)  # per-language quirks (JJava's names)
    return {"type": "error", "name": name, "value": value, "traceback": traceback, **extra}


def _traceback(lines: Any) -> str:
    if isinstance(lines, list):
        return strip_ansi("\n".join(str(line) for line in lines))
    return strip_ansi(str(lines or ""))


def iopub_event(msg: dict[str, Any]) -> Event | None:
    """Map one iopub message to an event, or None for messages that are not part of the stream
    (status, clear_output, comm traffic, ...). Stream text is not capped here: see `OutputLimiter`.
    """
    msg_type = (msg.get("header") or {}).get("msg_type") or msg.get("msg_type")
    content = msg.get("content") or {}
    if msg_type == "stream":
        name = content.get("name")
        if name not in ("stdout", "stderr"):
            return None
        return {"type": name, "text": str(content.get("text", "")), "timestamp": timestamp(msg)}
    if msg_type == "execute_input":
        return {"type": "number_of_executions", "execution_count": content.get("execution_count")}
    if msg_type in ("execute_result", "display_data"):
        return {
            "type": "result",
            "data": content.get("data") or {},
            "metadata": content.get("metadata") or {},
            "is_main_result": msg_type == "execute_result",
        }
    if msg_type == "error":
        return error_event(
            str(content.get("ename", "")),
            str(content.get("evalue", "")),
            _traceback(content.get("traceback")),
        )
    return None


def reply_error(content: dict[str, Any]) -> Event | None:
    """The error an ``execute_reply`` carries (the kernel may not have sent an iopub ``error``)."""
    status = content.get("status")
    if status == "error":
        return error_event(
            str(content.get("ename", "")),
            str(content.get("evalue", "")),
            _traceback(content.get("traceback")),
        )
    if status in ("aborted", "abort"):
        return error_event("ExecutionAborted", "the execution was aborted by the kernel")
    return None


def is_idle(msg: dict[str, Any]) -> bool:
    header = msg.get("header") or {}
    return header.get("msg_type") == "status" and (msg.get("content") or {}).get("execution_state") == "idle"


def notice(text: str) -> Event:
    """An agent-made stderr line (stream events always carry a timestamp)."""
    return {"type": "stderr", "text": f"\n[nullspace: {text}]\n", "timestamp": datetime.now(UTC).isoformat()}


def keepalive() -> Event:
    return {"type": "keepalive"}


def end_of_execution(status: str) -> Event:
    return {"type": "end_of_execution", "status": status}


def timeout_error(timeout: float, *, restarted: bool) -> Event:
    what = "restarted, state lost" if restarted else "interrupted"
    return error_event(
        "ExecutionTimeout",
        f"execution exceeded the {float(timeout)} s timeout; the kernel was {what}",
        state_lost=restarted,
    )


def describe_exit(returncode: int | None) -> tuple[str, int | None, int | None]:
    """``(text, exit_code, signal)`` for a Popen return code (negative = killed by a signal)."""
    if returncode is None:
        return "the kernel exited", None, None
    if returncode < 0:
        signum = -returncode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            return f"the kernel exited (killed by signal {signum})", None, signum
        return f"the kernel exited (killed by signal {signum}, {name})", None, signum
    return f"the kernel exited (exit code {returncode})", returncode, None


def kernel_died(returncode: int | None) -> Event:
    text, exit_code, signum = describe_exit(returncode)
    return error_event("KernelDied", text, "", state_lost=True, exit_code=exit_code, signal=signum)


def preempted_error(reason: str) -> Event:
    names = {"restarted": "ContextRestarting", "deleted": "ContextDeleted"}
    return error_event(names.get(reason, "ContextShutdown"), f"the context was {reason} during the execution")


def _boundary(data: bytes, cut: int) -> int:
    """Move `cut` back to the start of a UTF-8 character."""
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def split_text(text: str, max_bytes: int = CHUNK_BYTES) -> list[str]:
    """Split `text` into pieces of at most `max_bytes` UTF-8 bytes, never inside a character."""
    data = _encode(text)
    if len(data) <= max_bytes:
        return [text]
    pieces = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        if end < len(data):
            cut = _boundary(data, end)
            end = cut if cut > start else end  # max_bytes < 4 only
        pieces.append(_decode(data[start:end]))
        start = end
    return pieces


class OutputLimiter:
    """Caps the stdout+stderr bytes of one run and splits big stream messages into chunks.

    `feed(event)` takes a ``stdout``/``stderr`` event and returns the events to emit: the text cut
    to what is left of the budget and split into ≤ `chunk_bytes` pieces, plus, once, a stderr
    marker saying that the output was truncated. After that it drops all stream text.
    """

    def __init__(self, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.used = 0
        self.truncated = False

    def marker(self) -> str:
        return f"\n[nullspace: output truncated after {self.max_bytes} bytes]\n"

    def feed(self, event: Event) -> list[Event]:
        if self.truncated:
            return []
        text = event.get("text", "")
        data = _encode(text)
        left = self.max_bytes - self.used
        out: list[Event] = []
        if len(data) > left:
            cut = _boundary(data, left)
            data = data[:cut]
            text = _decode(data)
            self.truncated = True
        self.used += len(data)
        if text:
            out.extend({**event, "text": piece} for piece in split_text(text, self.chunk_bytes))
        if self.truncated:
            out.append({**event, "type": "stderr", "text": self.marker()})
        return out
