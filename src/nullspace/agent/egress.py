"""``POST /egress``: give the sandbox its way out, when the server grants it network access.

The sandbox has no network interface but ``lo``. The server binds its egress proxy's unix
socket into the sandbox; this agent listens on 127.0.0.1:PORT (the sandbox's own network
namespace) and forwards each connection to that socket, byte for byte. The proxy on the trusted
side decides everything; this forwarder is as untrusted as the rest of the sandbox. The request
also carries the sandbox CA's certificate (public), written next to the system's CAs into the
bundle that SSL_CERT_FILE and friends name, and the proxy variables for kernels and commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .configure import apply_envs
from .contexts import AgentError, validate_envs
from .web import json_body

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_forwarder: asyncio.Server | None = None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 18):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof() if writer.can_write_eof() else writer.close()


def _forward(socket_path: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    return handle


def _write_bundle(path: str, ca_pem: str) -> None:
    try:
        with open(SYSTEM_BUNDLE) as f:
            system = f.read()
    except OSError:
        system = ""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(system.rstrip("\n") + "\n" + ca_pem)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


async def egress(request: Request) -> Response:
    global _forwarder
    from .app import _registry

    body = await json_body(request)
    socket_path, port, ca_pem, ca_path = (body.get(k) for k in ("socket", "port", "ca_pem", "ca_path"))
    if not (isinstance(socket_path, str) and isinstance(port, int) and isinstance(ca_pem, str) and isinstance(ca_path, str)):
        raise AgentError(400, "invalid_argument", "egress needs socket, port, ca_pem and ca_path")
    envs = validate_envs(body.get("envs"))
    _write_bundle(ca_path, ca_pem)
    if _forwarder is None:
        _forwarder = await asyncio.start_server(_forward(socket_path), "127.0.0.1", port, limit=1 << 16)
    await apply_envs(_registry(request), envs)
    return JSONResponse({"status": "ok"})


routes = [Route("/egress", egress, methods=["POST"])]
