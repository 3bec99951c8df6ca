"""Who may use the console over TCP: the assets need no key; the API needs one, unless the
operator started a loopback-only server with `--console-no-login`.

Without a login, a request is let in as an admin only when it is plainly the console in a
browser on this machine: from a loopback address, to a loopback host name (a DNS-rebinding page
sends its own name), with the `X-Nullspace-Console` header (other sites' pages cannot send it
without a CORS preflight, which this server never grants), and with no foreign `Origin` or
`Sec-Fetch-Site`. Anyone who can run code on this machine can do the same: the flag trusts them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from ..server.middleware import LocalAdmin

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]"}
CONSOLE_HEADER = b"x-nullspace-console"


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def local_browser(scope: Scope) -> bool:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if "x-api-key" in headers or "authorization" in headers:
        return False  # a key decides who the caller is
    if headers.get(CONSOLE_HEADER.decode()) != "1":
        return False
    client = scope.get("client")
    if not client or not is_loopback(str(client[0])):
        return False
    host = headers.get("host", "")
    if _host_name(host).lower() not in LOOPBACK_NAMES:
        return False
    origin = headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return False
    return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


class ConsoleAccess:
    """Wraps the TCP listener's stack: `authed` (the API-key middleware around the app) and the
    bare `app`, used for console assets and, with `no_login`, for the local browser (as an admin)."""

    def __init__(self, authed: ASGIApp, app: ASGIApp, no_login: bool = False) -> None:
        self.authed, self.app, self.no_login = authed, app, no_login
        self.local = LocalAdmin(app)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if scope["method"] in ("GET", "HEAD") and (path == "/console" or path.startswith("/console/")):
                return await self.app(scope, receive, send)
            if self.no_login and local_browser(scope):
                return await self.local(scope, receive, send)
        await self.authed(scope, receive, send)
