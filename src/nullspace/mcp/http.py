"""MCP over streamable HTTP, mounted on the server at `/mcp` behind the API's own auth.

On TCP the API-key middleware runs before this endpoint, as for every route: no key, no MCP.
Each tool call reaches the API in-process with the auth state of the HTTP request that carried
it (`access.HttpAccess`), so a key sees only its tenant's sandboxes. A session is bound to the
key that opened it: a request for it with another key is answered like an unknown session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.routing import Route

from ._asgi import ASGIApp, Message
from .access import HttpAccess
from .tools import build_server

PATH = "/mcp"


def caller_identity(scope: dict[str, Any]) -> str:
    """Who sent this request, as the session-owner check compares it: the principal the auth
    middleware resolved, else the presented key's digest, else the unix socket."""
    principal = (scope.get("state") or {}).get("principal")
    if principal is not None:
        return f"principal:{getattr(principal, 'tenant_id', None)}:{getattr(principal, 'key_id', None)}"
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-api-key" or (name.lower() == b"authorization" and value[:7].lower() == b"bearer "):
            return "key:" + hashlib.sha256(value.split(b" ")[-1].strip()).hexdigest()
    return "local"


class _BindSessionToCaller:
    """Give the SDK's session manager the caller as `scope["user"]`: it then refuses a session to
    any caller but the one that created it (the same 404 as an unknown session)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Message], Any]) -> None:
        token = AccessToken(token="", client_id=caller_identity(scope), scopes=[])
        scope["user"] = AuthenticatedUser(token)
        await self.app(scope, receive, send)


def mount(app: Any) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Add the `/mcp` endpoint to the FastAPI `app`; run what this returns in its lifespan."""
    server = build_server(HttpAccess(app))
    # Not a localhost-only server: DNS-rebinding checks would refuse real hosts; a browser page
    # cannot send the API key, and the unix socket is not reachable from one.
    server.streamable_http_app(host="0.0.0.0")
    manager = server.session_manager
    app.router.routes.append(Route(PATH, _BindSessionToCaller(StreamableHTTPASGIApp(manager)), include_in_schema=False))
    return manager.run
