"""Who gets in without a key when the operator started the server with --console-no-login."""

from __future__ import annotations

from typing import Any

import pytest

from nullspace.console.access import is_loopback, local_browser


def scope(client: str = "127.0.0.1", **headers: str) -> dict[str, Any]:
    base = {"host": "127.0.0.1:49982", "x-nullspace-console": "1", "sec-fetch-site": "same-origin"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    raw = [(k.encode(), v.encode()) for k, v in base.items() if v != "-"]
    return {"type": "http", "client": (client, 50000), "headers": raw}


def test_the_console_in_a_local_browser_gets_in() -> None:
    assert local_browser(scope())
    assert local_browser(scope(host="localhost:49982", origin="http://localhost:49982"))
    assert local_browser(scope(client="::1", host="[::1]:49982"))


@pytest.mark.parametrize(
    ("why", "request_scope"),
    [
        ("no console header: a plain form post or image from any page", scope(x_nullspace_console="-")),
        ("DNS rebinding: the attacker's name in Host", scope(host="evil.example:49982")),
        ("another site's page", scope(origin="http://evil.example")),
        ("a cross-site fetch", scope(sec_fetch_site="cross-site")),
        ("from another machine", scope(client="10.0.0.5")),
        ("a key decides who the caller is", scope(x_api_key="ns_whatever")),
    ],
)
def test_anything_else_needs_a_key(why: str, request_scope: dict[str, Any]) -> None:
    assert not local_browser(request_scope), why


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.1", "example.com", ""]))


@pytest.mark.anyio
@pytest.mark.parametrize("no_login", [False, True])
async def test_the_listener_stack(no_login: bool) -> None:
    """Assets bypass the key check; the local browser gets in as an admin only with no_login;
    everything else goes through the key check."""
    from nullspace.console.access import ConsoleAccess
    from nullspace.server.tenants import ADMIN

    seen: list[tuple[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("app", scope.get("state", {}).get("principal")))

    async def authed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("authed", None))

    stack = ConsoleAccess(authed, app, no_login=no_login)
    asset = {**scope(x_nullspace_console="-"), "method": "GET", "path": "/console/app.js"}
    api = {**scope(), "method": "GET", "path": "/v1/sandboxes"}
    foreign = {**scope(host="evil.example"), "method": "GET", "path": "/v1/sandboxes"}
    for request_scope in (asset, api, foreign):
        await stack(request_scope, None, None)
    assert seen == [("app", None), ("app", ADMIN) if no_login else ("authed", None), ("authed", None)]
