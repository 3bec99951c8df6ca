"""envd (port 49983) for E2B's SDKs: the interface the front door (../door.py) calls.

The door has already routed the request here (``E2b-Sandbox-Port: 49983``) and checked it: the
sandbox is running and the request carries one of its access tokens. Everything the app needs
is in ``scope["state"]`` (``request.state`` in Starlette):

* ``e2b_sandbox``: the `LiveSandbox` (server/lifecycle.py) the request is for;
* ``principal``: the caller to pass to manager methods (the sandbox's owner);
* ``manager``: the `SandboxManager`.

Request bodies arrive unbounded (file uploads stream): bound them here.

`ENVD_VERSION` is what the control plane reports as ``envdVersion``; the SDK gates features on
it (§7.1 of the protocol notes), so it must name only what this app implements.

This module is a stub (``GET /health`` only) until the envd work lands.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ENVD_VERSION = "0.4.0"


async def health(request: Request) -> Response:
    return Response(status_code=204)


def create_app() -> Starlette:
    return Starlette(routes=[Route("/health", health, methods=["GET"])])
