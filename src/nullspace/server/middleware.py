"""ASGI middleware: who is calling (API keys on TCP, admin on the unix socket) and body size limits."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from .tenants import ADMIN, Principal

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = {"/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
# File uploads stream into the sandbox, whose disk limit bounds them (server/routes/files.py).
STREAMED_UPLOADS = ("PUT", re.compile(r"^/v1/sandboxes/[^/]+/files$"))


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == STREAMED_UPLOADS[0] and STREAMED_UPLOADS[1].match(scope["path"]):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await _reply(send, 413, "payload_too_large",
                                    f"request body of {int(value)} bytes is over the limit of {self.max_bytes}")
        # Read the (bounded) body first, so that a chunked body over the limit gets a 413 before
        # any route sees it (raised inside a route's body read, FastAPI made it a 400).
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return await _reply(send, 413, "payload_too_large",
                                    f"request body is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict[str, Any]:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class ApiKeyAuth:
    """Require `X-API-Key` (or `Authorization: Bearer`) on everything but health and docs, and
    put the key's `Principal` in ``scope["state"]["principal"]`` (`deps.Caller` reads it)."""

    def __init__(self, app: ASGIApp, resolve: Callable[[str], Awaitable[Principal | None]]) -> None:
        self.app, self.resolve = app, resolve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        key = headers.get(b"x-api-key", b"").decode("latin-1")
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not key:
            return await _reply(send, 401, "unauthorized", "missing API key: send it in the X-API-Key header")
        principal = await self.resolve(key)
        if principal is None:
            return await _reply(send, 401, "unauthorized", "invalid API key")
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class LocalAdmin:
    """The unix socket: its file mode (0600, root) is the authentication; callers are admins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault("state", {})["principal"] = ADMIN
        await self.app(scope, receive, send)
