"""envd (port 49983) for E2B's SDKs: a translation layer over the sandbox's agent (docs/e2b.md).

The door (../door.py) has already routed the request here (``E2b-Sandbox-Port: 49983``) and
checked it: the sandbox is running and the request carries one of its access tokens. What the
app needs is in ``scope["state"]``: ``e2b_sandbox`` (the `LiveSandbox`), ``principal`` and
``manager``. Every operation goes to that sandbox's agent, the same one ``/v1`` drives: the same
isolation, limits and path resolution.

* Plain HTTP (§5.1): ``GET /health``, ``GET /envs``, ``GET``/``POST /files`` (files.py).
* Connect RPC, JSON codec (§5.3, connect.py): ``process.Process`` (process.py) and
  ``filesystem.Filesystem`` (filesystem.py).

`ENVD_VERSION` is what the control plane reports as ``envdVersion``; the SDK gates features on
it (§7.1) and every one up to 0.6.4 is implemented: the default user (no Basic auth needed),
``close_stdin``, octet-stream uploads, file metadata (``X-Metadata-*``, kept as ``user.e2b.*``
extended attributes), watch events with their entry, and ``allow_network_mounts`` (accepted: a
sandbox has no network mounts).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import files, filesystem, process, rpc

ENVD_VERSION = "0.6.4"
SERVICES = {"process.Process": process.METHODS, "filesystem.Filesystem": filesystem.METHODS}


async def health(request: Request) -> Response:
    return Response(status_code=204)


async def envs(request: Request) -> Response:
    """The sandbox's own environment variables (those given at create), as envd's ``/envs``."""
    live = request.state.e2b_sandbox
    try:
        reply = await live.agent.request("GET", "/envs")
    except Exception as exc:  # noqa: BLE001 - every failure is a JSON error
        return files.error_response(exc)
    keys = set(live.record.env_keys)
    values = reply if isinstance(reply, dict) else {}
    return JSONResponse({k: v for k, v in values.items() if k in keys and isinstance(v, str)})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"code": exc.status_code, "message": f"{request.method} {request.url.path}: {exc.detail}"},
                        status_code=exc.status_code)  # fmt: skip


async def call(request: Request) -> Response:
    methods = SERVICES.get(request.path_params["service"])
    return await rpc.dispatch(request, methods or {})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/envs", envs, methods=["GET"]),
            Route("/files", files.download, methods=["GET"]),
            Route("/files", files.upload, methods=["POST"]),
            Route("/{service}/{method}", call, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
