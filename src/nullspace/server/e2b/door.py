"""The E2B front door: an ASGI dispatcher in front of the nullspace app, on the same origin.

* A request with an ``E2b-Sandbox-Id`` or ``E2b-Sandbox-Port`` header is sandbox traffic (§3.2):
  both headers are then required, the sandbox must be running and the request must carry one of
  its access tokens (``X-Access-Token`` or ``E2B-Traffic-Access-Token``). Anything else answers
  exactly like a sandbox that does not exist: E2B's 502 "The sandbox was not found". Port 49999
  goes to the code-interpreter translation (interpreter.py), 49983 to envd (envd/), any other
  port gets E2B's "port is not open".
* ``/sandboxes...`` and ``/v2/sandboxes...`` are E2B's control plane (control.py), which checks
  the API key itself so that its errors have E2B's shape.
* Everything else goes to `inner` (the nullspace app behind its own API-key check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..._exceptions import SandboxNotFoundError, SandboxPausedError
from ..middleware import BodyLimit
from ..tenants import ADMIN, Principal
from . import control, envd, interpreter, tokens, wire

Authenticate = Callable[[str], Awaitable[Any]]
"""An API key → the caller (a Principal), or None when the key is not valid."""

CONTROL_PREFIXES = ("/sandboxes", "/v2/sandboxes")


def _is_control(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in CONTROL_PREFIXES)


class E2BDoor:
    """Dispatch E2B traffic; pass the rest to `inner`.

    `api` is the nullspace app (its lifespan puts the manager in `api.state`). `authenticate`
    resolves control-plane API keys; None means the listener is trusted (the unix socket) and
    every caller is an admin.
    """

    def __init__(self, inner: ASGIApp, api: Any, *, max_body_bytes: int, authenticate: Authenticate | None) -> None:
        self.inner = inner
        self.api = api
        self.authenticate = authenticate
        self.control = BodyLimit(control.create_app(), max_body_bytes)
        self.interpreter = BodyLimit(interpreter.create_app(), max_body_bytes)
        self.envd = envd.create_app()  # bounds its own bodies (file uploads stream)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        if b"e2b-sandbox-id" in headers or b"e2b-sandbox-port" in headers:
            return await self._sandbox(scope, headers, receive, send)
        if _is_control(scope["path"]):
            return await self._control(scope, headers, receive, send)
        await self.inner(scope, receive, send)

    def _scope(self, scope: Scope, **state: Any) -> Scope:
        return {**scope, "state": {**(scope.get("state") or {}), "manager": self.api.state.manager, **state}}

    async def _control(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        if self.authenticate is None:
            principal = ADMIN
        else:
            key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if not key and auth.lower().startswith("bearer "):
                key = auth[7:].strip()
            if not key:
                return await wire.send_json(send, 401, wire.error_body(
                    401, "missing API key: set E2B_API_KEY to a nullspace API key (sent as X-API-Key)", "unauthorized"))
            principal = await self.authenticate(key)
            if principal is None:
                return await wire.send_json(send, 401, wire.error_body(401, "invalid API key", "unauthorized"))
        await self.control(self._scope(scope, principal=principal), receive, send)

    async def _sandbox(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        sandbox_id = headers.get(b"e2b-sandbox-id", b"").decode("latin-1").strip()
        port = headers.get(b"e2b-sandbox-port", b"").decode("latin-1").strip()
        for name, value in (("E2b-Sandbox-Id", sandbox_id), ("E2b-Sandbox-Port", port)):
            if not value:
                return await wire.send_json(send, 400, wire.error_body(400, f"Missing header: {name}"))
        if not port.isdigit():
            return await wire.send_json(send, 400, wire.error_body(400, f"invalid E2b-Sandbox-Port {port!r}: not a number"))
        offered = [headers.get(h, b"").decode("latin-1") for h in (b"x-access-token", b"e2b-traffic-access-token")]
        live = self.api.state.manager.live.get(sandbox_id)
        if live is None or not any([tokens.verify(live, t) for t in offered]):
            return await wire.sandbox_not_found(send, sandbox_id)
        owner = Principal(live.record.tenant_id)  # the token stands for the sandbox's owner
        try:  # the token is checked first: only its holder may wake an auto-resuming sandbox
            live = await self.api.state.manager.require_live(sandbox_id, owner)
        except SandboxNotFoundError:
            return await wire.sandbox_not_found(send, sandbox_id)
        except SandboxPausedError:
            return await wire.sandbox_not_found(send, sandbox_id, "The sandbox was not found: it is paused (connect() resumes it)")
        inner = self._scope(scope, e2b_sandbox=live, principal=owner)
        if int(port) == wire.INTERPRETER_PORT:
            return await self.interpreter(inner, receive, send)
        if int(port) == wire.ENVD_PORT:
            return await self.envd(inner, receive, send)
        await wire.port_not_open(send, sandbox_id, port)
