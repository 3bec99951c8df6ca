"""Run the server: a unix socket (file permissions are the auth) and optionally TCP (API keys)."""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn

from ..console.access import ConsoleAccess, is_loopback
from .app import create_app
from .e2b import E2BDoor
from .http_protocol import PROTOCOL
from .metrics import instrument
from .middleware import ApiKeyAuth, BodyLimit, LocalAdmin
from .settings import Settings
from .tenants import Principal


def _unix_listener(path: os.PathLike[str] | str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(1024)
    return sock


async def serve(settings: Settings) -> None:
    if settings.console_no_login and not (settings.host and is_loopback(settings.host)):
        raise ValueError("console_no_login needs a loopback TCP host (127.0.0.1, ::1 or localhost)")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o711)  # sandboxes reach their own dirs through it; nobody lists it
    try:  # whoever started us may have created the log with their umask
        os.chmod(settings.data_dir / "server.log", 0o600)
    except FileNotFoundError:
        pass
    app = create_app(settings)
    # The E2B door takes its own traffic (sandbox traffic carries a per-sandbox token, no API key)
    local_app = E2BDoor(BodyLimit(LocalAdmin(app), settings.max_body_bytes), app,
                        max_body_bytes=settings.max_body_bytes, authenticate=None)
    listener = _unix_listener(settings.unix_socket)
    pid_file = settings.data_dir / "server.pid"
    pid_file.write_text(str(os.getpid()))
    local_app = instrument(local_app, app.state.metrics)  # logs' sandbox id + request metrics
    servers = [(uvicorn.Server(uvicorn.Config(local_app, http=PROTOCOL, lifespan="on", log_config=None, timeout_keep_alive=60)), [listener])]
    if settings.host:
        async def resolve(key: str) -> Principal | None:
            return await app.state.store.principal_for_key(key)

        tcp_app = E2BDoor(BodyLimit(ConsoleAccess(ApiKeyAuth(app, resolve), app, settings.console_no_login),
                                    settings.max_body_bytes), app,
                          max_body_bytes=settings.max_body_bytes, authenticate=resolve)
        tcp_app = instrument(tcp_app, app.state.metrics)
        config = uvicorn.Config(tcp_app, http=PROTOCOL, host=settings.host, port=settings.port, lifespan="off",
                                log_config=None, timeout_keep_alive=60)
        servers.append((uvicorn.Server(config), None))
    main = asyncio.create_task(servers[0][0].serve(sockets=servers[0][1]))
    while not servers[0][0].started and not main.done():
        await asyncio.sleep(0.05)  # the TCP side needs the lifespan's state
    others = [asyncio.create_task(s.serve(sockets=socks)) for s, socks in servers[1:]]
    await asyncio.wait([main, *others], return_when=asyncio.FIRST_COMPLETED)
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(main, *others, return_exceptions=True)
    for path in (settings.unix_socket, pid_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
