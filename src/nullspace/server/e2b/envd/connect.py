"""The Connect protocol (JSON codec, no compression), server side, as E2B's SDKs speak it (§5.3).

* Unary: the request body is one JSON message (``application/json``); the answer is ``200`` with
  a JSON message, or an error status with ``{"code": "<connect code>", "message"}``.
* Server streaming and client streaming (``application/connect+json``): messages are envelopes,
  ``[flags:1][length:4, big-endian][JSON]``; a stream answers ``200`` at once and ends with an
  end-stream envelope (flags ``0x02``) holding ``{}`` or ``{"error": {...}}``.

Everything the client sends is bounded (`MAX_MESSAGE`) and checked: a malformed envelope or JSON
body is a Connect ``invalid_argument`` error, never a 500 or a hang.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ...._exceptions import (
    APIError,
    ConflictError,
    DiskFullError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
)
from ...agent_client import AgentError

MAX_MESSAGE = 8 << 20
END_STREAM = 0x02
COMPRESSED = 0x01
UNARY_TYPES = ("application/json",)
STREAM_TYPES = ("application/connect+json",)

# Connect code -> HTTP status (connectrpc's _error_to_http_status)
STATUS = {
    "canceled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504,
    "not_found": 404, "already_exists": 409, "permission_denied": 403, "resource_exhausted": 429,
    "failed_precondition": 400, "aborted": 409, "out_of_range": 400, "unimplemented": 501,
    "internal": 500, "unavailable": 503, "data_loss": 500, "unauthenticated": 401,
}  # fmt: skip


class ConnectError(Exception):
    """An error to answer with a Connect code (a key of `STATUS`) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def from_exception(exc: BaseException) -> ConnectError:
    """Our exceptions (from the agent client) as Connect errors."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, InvalidArgumentError):
        return ConnectError("invalid_argument", exc.message)
    if isinstance(exc, NotFoundError):
        return ConnectError("not_found", exc.message)
    if isinstance(exc, ConflictError):
        return ConnectError("failed_precondition", exc.message)
    if isinstance(exc, DiskFullError | PayloadTooLargeError):
        return ConnectError("resource_exhausted", exc.message)
    if isinstance(exc, AgentError):
        return ConnectError("unavailable", f"the sandbox did not answer: {exc.message}")
    if isinstance(exc, APIError):
        return ConnectError("internal", exc.message)
    return ConnectError("internal", f"internal error: {type(exc).__name__}")


# -- messages ------------------------------------------------------------------------------------


def decode(raw: bytes) -> dict[str, Any]:
    """One JSON message (an object); ``invalid_argument`` otherwise."""
    if not raw.strip():
        return {}
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectError("invalid_argument", f"the message is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ConnectError("invalid_argument", "the message must be a JSON object")
    return message


def envelope(message: Any, flags: int = 0) -> bytes:
    raw = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">BI", flags, len(raw)) + raw


def end_stream(error: ConnectError | None = None) -> bytes:
    return envelope({"error": error.body()} if error is not None else {}, END_STREAM)


async def read_envelopes(request: Request) -> AsyncIterator[dict[str, Any]]:
    """The client's messages, one envelope at a time, as they arrive; stops at the end of the
    body (or at an end-stream envelope)."""
    buf = bytearray()
    chunks = request.stream()
    done = False
    while True:
        while len(buf) < 5 or len(buf) < 5 + struct.unpack(">I", buf[1:5])[0]:
            if len(buf) >= 5 and struct.unpack(">I", buf[1:5])[0] > MAX_MESSAGE:
                raise ConnectError("resource_exhausted", f"a message is over {MAX_MESSAGE} bytes")
            if done:
                if buf:
                    raise ConnectError("invalid_argument", "the request ended inside an envelope")
                return
            try:
                chunk = await anext(chunks)
            except (StopAsyncIteration, ClientDisconnect):
                done = True
                continue
            buf += chunk
        flags, length = struct.unpack(">BI", buf[:5])
        raw = bytes(buf[5 : 5 + length])
        del buf[: 5 + length]
        if flags & COMPRESSED:
            raise ConnectError("unimplemented", "compressed messages are not supported (use identity)")
        if flags & END_STREAM:
            return
        if flags:
            raise ConnectError("invalid_argument", f"unknown envelope flags {flags:#x}")
        yield decode(raw)


async def read_unary(request: Request) -> dict[str, Any]:
    """The body of a unary call: one JSON message, bounded."""
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_MESSAGE:
                raise ConnectError("resource_exhausted", f"the message is over {MAX_MESSAGE} bytes")
    except ClientDisconnect:
        raise ConnectError("canceled", "the client went away") from None
    return decode(bytes(raw))


async def read_single(request: Request) -> dict[str, Any]:
    """The one message of a server-streaming call (an envelope)."""
    messages = [m async for m in read_envelopes(request)]
    if len(messages) != 1:
        raise ConnectError("invalid_argument", f"expected exactly one request message, got {len(messages)}")
    return messages[0]


# -- responses -----------------------------------------------------------------------------------


def unary_response(message: dict[str, Any]) -> Response:
    return Response(json.dumps(message, separators=(",", ":")), media_type="application/json")


def error_response(error: ConnectError) -> Response:
    return Response(json.dumps(error.body()), status_code=STATUS.get(error.code, 500), media_type="application/json")


class StreamResponse(Response):
    """A Connect stream: ``200`` at once, each message as an envelope written as it comes, then
    the end-stream envelope. An exception from `messages` ends the stream with its error. When
    the client goes away, `messages` is closed (its ``finally`` runs). The request body must
    have been read already (only a disconnect is listened for)."""

    def __init__(self, messages: AsyncGenerator[dict[str, Any], None]) -> None:
        self.messages = messages
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"application/connect+json"), (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.create_task(self._stream(send))
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await asyncio.wait({stream, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, watcher):
                task.cancel()
            await asyncio.gather(stream, watcher, return_exceptions=True)
            await self.messages.aclose()

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        error: ConnectError | None = None
        try:
            async for message in self.messages:
                await send({"type": "http.response.body", "body": envelope(message), "more_body": True})
        except Exception as exc:  # noqa: BLE001 - every failure becomes the stream's error
            error = from_exception(exc)
        await send({"type": "http.response.body", "body": end_stream(error), "more_body": False})


def check_content_type(request: Request, streaming: bool) -> None:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    allowed = STREAM_TYPES if streaming else UNARY_TYPES
    if ctype not in allowed:
        if ctype in ("application/proto", "application/connect+proto", "application/grpc"):
            raise ConnectError("unimplemented", f"only the JSON codec is supported (got {ctype})")
        raise ConnectError("invalid_argument", f"content-type must be {allowed[0]} (got {ctype or 'none'})")
    encoding = request.headers.get("connect-content-encoding" if streaming else "content-encoding", "identity")
    if encoding.strip().lower() not in ("identity", ""):
        raise ConnectError("unimplemented", f"compressed requests are not supported ({encoding})")


def timeout_seconds(request: Request) -> float | None:
    """``Connect-Timeout-Ms`` in seconds (None: no deadline)."""
    value = request.headers.get("connect-timeout-ms")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise ConnectError("invalid_argument", f"Connect-Timeout-Ms must be a number of milliseconds, not {value!r}")
    return int(value) / 1000 or None
