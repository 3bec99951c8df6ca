"""Sans-I/O core of `run_code`: request body, NDJSON line splitting, Execution assembly.

Both `AsyncSandbox` and the generated `Sandbox` drive the same pieces:

* `execute_body()` checks the arguments and builds the JSON body of `POST .../execute`;
* `NDJSONDecoder` turns raw byte chunks into event dicts;
* `ExecutionBuilder.feed(event)` updates the `Execution` and returns the items to emit;
  `finish()` raises when the stream was cut short or the run timed out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .._exceptions import ExecutionTimeoutError, InvalidArgumentError, TransportError
from .._protocol import ndjson
from ._artifacts import ArtifactInfo, parse_event
from ._models import (
    Context,
    EndOfExecution,
    Execution,
    ExecutionError,
    OutputMessage,
    Result,
)

T = TypeVar("T")

StreamEvent = OutputMessage | Result | ExecutionError | EndOfExecution
"""What `run_code_stream` yields."""

OutputCallback = Callable[[OutputMessage], Any]
ResultCallback = Callable[[Result], Any]
ErrorCallback = Callable[[ExecutionError], Any]


def context_id(context: Context | str | None) -> str | None:
    """The id of a `Context`, or the string itself."""
    if context is None or isinstance(context, str):
        return context
    if isinstance(context, Context):
        return context.id
    raise InvalidArgumentError(f"context must be a Context or a context id, not {context!r}")


def execute_body(
    code: str,
    language: str | None,
    context: Context | str | None,
    envs: dict[str, str] | None,
    timeout: float | None,
    max_output_bytes: int | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /v1/sandboxes/{id}/execute`.

    Raises:
        InvalidArgumentError: both `language` and `context` were given, or `code` is not a str.
    """
    if not isinstance(code, str):
        raise InvalidArgumentError(f"code must be a str, not {type(code).__name__}")
    if language is not None and context is not None:
        raise InvalidArgumentError(
            "pass either language or context, not both (a context already has a language)"
        )
    body = {
        "code": code,
        "language": language,
        "context_id": context_id(context),
        "envs": dict(envs) if envs is not None else None,
        "timeout": timeout,
    }
    if max_output_bytes is not None:
        if isinstance(max_output_bytes, bool) or not isinstance(max_output_bytes, int) or max_output_bytes < 1:
            raise InvalidArgumentError(f"max_output_bytes must be a positive int, not {max_output_bytes!r}")
        body["max_output_bytes"] = max_output_bytes
    return body


class NDJSONDecoder:
    """Split a byte stream into NDJSON events, incrementally.

    Lines are split on b"\\n" only, so U+2028 and friends inside a (non-escaped) string never cut
    an event in two. Blank and malformed lines are skipped.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of an unfinished line (joined once: linear time)

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Add bytes; return the events of every line completed by them."""
        if b"\n" not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        head, *lines, tail = chunk.split(b"\n")
        first = b"".join([*self._pending, head])
        self._pending = [tail] if tail else []
        return self._decode([first, *lines])

    def flush(self) -> list[dict[str, Any]]:
        """The event of a last line that had no trailing newline, if any."""
        line, self._pending = b"".join(self._pending), []
        return self._decode([line])

    @staticmethod
    def _decode(lines: list[bytes]) -> list[dict[str, Any]]:
        events = []
        for line in lines:
            event = ndjson.decode(line.decode("utf-8", "replace")) if line.strip() else None
            if event is not None:
                events.append(event)
        return events


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _traceback(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    return _text(value)


_ERROR_FIELDS = frozenset({"type", "name", "value", "traceback", "state_lost"})


class ExecutionBuilder:
    """Assemble an `Execution` from wire events (pure; one builder per run).

    Attributes:
        execution: The execution built so far.
        status: The `end_of_execution` status, or None while the stream is open.
    """

    def __init__(self, artifact: Callable[[ArtifactInfo], ArtifactInfo] | None = None) -> None:
        """`artifact` turns each `ArtifactInfo` into the object stored (the sandboxes bind it to
        themselves, so that `read()` / `download()` work)."""
        self.execution = Execution()
        self.status: str | None = None
        self._artifact = artifact

    @property
    def ended(self) -> bool:
        """True once `end_of_execution` arrived."""
        return self.status is not None

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        """Apply one event; return the items to emit (usually zero or one)."""
        if self.ended:
            return []
        kind = event.get("type")
        ex = self.execution
        if kind in ("stdout", "stderr"):
            text = _text(event.get("text"))
            timestamp = event.get("timestamp")
            (ex.logs.stderr if kind == "stderr" else ex.logs.stdout).append(text)
            ts = timestamp if isinstance(timestamp, str) else None
            return [OutputMessage(line=text, timestamp=ts, error=kind == "stderr")]
        if kind == "result":
            result = Result.from_event(event)
            ex.results.append(result)
            return [result]
        if kind == "error":
            if ex.error is not None:  # at most one per run; keep the first
                return []
            details = {k: v for k, v in event.items() if k not in _ERROR_FIELDS}
            ex.error = ExecutionError(
                name=_text(event.get("name")),
                value=_text(event.get("value")),
                traceback=_traceback(event.get("traceback")),
                state_lost=event.get("state_lost") is True,
                details=details,
            )
            return [ex.error]
        if kind == "number_of_executions":
            count = event.get("execution_count")
            ex.execution_count = count if isinstance(count, int) else None
        elif kind == "limit":
            ex.limits.append({k: v for k, v in event.items() if k != "type"})
        elif kind == "network_refused":
            ex.network_refusals.append({k: v for k, v in event.items() if k != "type"})
        elif kind == "artifacts":
            for info in parse_event(event):
                ex.artifacts.append(self._artifact(info) if self._artifact else info)
        elif kind == "end_of_execution":
            self.status = _text(event.get("status")) or "ok"
            return [EndOfExecution(status=self.status, execution=ex)]
        return []  # keepalive and unknown types

    def finish(self) -> Execution:
        """Check how the stream ended and return the execution.

        Raises:
            TransportError: the stream ended without `end_of_execution`.
            ExecutionTimeoutError: the run hit its timeout; `.execution` holds the partial run.
        """
        if self.status is None:
            raise TransportError(
                "the execute stream ended before end_of_execution (connection lost or server died)"
            )
        if self.status == "timeout":
            error = self.execution.error
            message = error.value if error and error.value else "execution timed out"
            raise ExecutionTimeoutError(message, execution=self.execution)
        return self.execution


def dispatch(
    item: StreamEvent,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
    on_result: ResultCallback | None,
    on_error: ErrorCallback | None,
) -> tuple[Callable[[Any], Any] | None, Any]:
    """The callback (if any) that `item` goes to, and the argument."""
    if isinstance(item, OutputMessage):
        return (on_stderr if item.error else on_stdout), item
    if isinstance(item, Result):
        return on_result, item
    if isinstance(item, ExecutionError):
        return on_error, item
    return None, item


async def acall(callback: Callable[[T], Any] | None, item: T) -> None:
    """Call `callback(item)` if given, awaiting the result when it is awaitable."""
    if callback is not None:
        ret = callback(item)
        if inspect.isawaitable(ret):
            await ret


def call(callback: Callable[[T], Any] | None, item: T) -> None:
    """Call `callback(item)` if given (the sync twin of `acall`)."""
    if callback is not None:
        callback(item)
