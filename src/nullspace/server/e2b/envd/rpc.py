"""Dispatch of Connect calls (``POST /{package.Service}/{Method}``) to the service handlers, and
what every handler shares: the sandbox, the caller's user, the call's deadline."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...lifecycle import LiveSandbox
from . import connect
from .connect import ConnectError

SANDBOX_USER = "user"


@dataclass
class Call:
    """One RPC: the sandbox it is for and the request's Connect headers."""

    live: LiveSandbox
    request: Request
    deadline: float | None  # time.monotonic() at which the call ends; None: no deadline

    @property
    def timeout(self) -> float | None:
        return self.deadline - time.monotonic() if self.deadline is not None else None

    async def agent(self, method: str, path: str, body: Any = None) -> Any:
        """One agent request, within the call's deadline."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self.live.agent.request(method, path, json_body=body)
        except TimeoutError:
            raise ConnectError("deadline_exceeded", "the call's deadline (Connect-Timeout-Ms) passed") from None


Unary = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]
ServerStream = Callable[[Call, dict[str, Any]], AsyncGenerator[dict[str, Any], None]]
ClientStream = Callable[[Call, AsyncIterator[dict[str, Any]]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Method:
    kind: str  # "unary" | "server_stream" | "client_stream"
    handler: Any


def check_user(request: Request) -> None:
    """``Authorization: Basic base64("<user>:")`` picks the user a call runs as (§5.2). A sandbox
    has one user; `root` and anyone else are refused, clearly, instead of silently ignored."""
    header = request.headers.get("authorization")
    if not header:
        return
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ConnectError("unauthenticated", "Authorization must be Basic base64('<user>:')")
    try:
        user = base64.b64decode(value.strip(), validate=True).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, ValueError):
        raise ConnectError("unauthenticated", "Authorization is not valid base64") from None
    check_username(user, ConnectError)


def check_username(user: str | None, error: Callable[[str, str], Exception]) -> None:
    if user in (None, "", SANDBOX_USER):
        return
    if user == "root":
        raise error(
            "permission_denied",
            "nullspace sandboxes have one user, 'user' (unprivileged, uid 1000): processes and file "
            "operations cannot run as root; drop user='root' (install packages with "
            "pip install --user or sandbox.install_packages)",
        )
    raise error("unauthenticated", f"invalid username {user!r}: the sandbox's only user is '{SANDBOX_USER}'")


async def dispatch(request: Request, methods: dict[str, Method]) -> Response:
    name = request.path_params["method"]
    method = methods.get(name)
    streaming = method is not None and method.kind != "unary"
    try:
        if method is None:
            raise ConnectError("unimplemented", f"{request.url.path.lstrip('/')} is not implemented")
        connect.check_content_type(request, streaming)
        check_user(request)
        timeout = connect.timeout_seconds(request)
        call = Call(request.state.e2b_sandbox, request, time.monotonic() + timeout if timeout else None)
        if method.kind == "unary":
            return connect.unary_response(await method.handler(call, await connect.read_unary(request)))
        if method.kind == "client_stream":
            reply = await method.handler(call, connect.read_envelopes(request))
            return connect.StreamResponse(_one(reply))
        message = await connect.read_single(request)
        return connect.StreamResponse(method.handler(call, message))
    except Exception as exc:  # noqa: BLE001 - every failure is a Connect error
        error = connect.from_exception(exc)
        if streaming:
            return connect.StreamResponse(_fail(error))
        return connect.error_response(error)


async def _one(message: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    yield message


async def _fail(error: ConnectError) -> AsyncGenerator[dict[str, Any], None]:
    raise error
    yield {}  # pragma: no cover - makes this a generator


# -- JSON field helpers (proto3 JSON: lowerCamelCase, optional fields may be absent) -------------


def field(message: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """An optional field of type `kind` (absent or null: `default`); ``invalid_argument`` otherwise."""
    value = message.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConnectError("invalid_argument", f"{name} must be a {kind.__name__}")
    return value


def uint(message: dict[str, Any], name: str) -> int | None:
    """A uint32 field: a number or (proto3 JSON allows it) a decimal string."""
    value = message.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit() and len(value) < 11:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
        raise ConnectError("invalid_argument", f"{name} must be a uint32")
    return value


def b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ConnectError("invalid_argument", f"{name} must be base64 bytes")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_" if "-" in value or "_" in value else None)
    except (binascii.Error, ValueError):
        raise ConnectError("invalid_argument", f"{name} is not valid base64") from None
