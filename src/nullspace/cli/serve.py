"""`nullspace serve`."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .._paths import DEFAULT_PORT


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def serve(
    data_dir: Annotated[Path | None, typer.Option(help="State, templates and sandboxes [env NULLSPACE_HOME]")] = None,
    socket: Annotated[Path | None, typer.Option(help="Unix socket path [default: DATA_DIR/nullspace.sock]")] = None,
    host: Annotated[str | None, typer.Option(help="Also listen on TCP at this address (API keys required)")] = None,
    port: Annotated[int, typer.Option(help="TCP port")] = DEFAULT_PORT,
    pool: Annotated[
        list[str] | None,
        typer.Option(help="Warm pool per template: TEMPLATE=N (fixed) or TEMPLATE=MIN:MAX (follows demand); "
                          "repeatable; default code-interpreter=2:8"),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(envvar="NULLSPACE_LOG_FORMAT", help="text (readable) or json (one object per line)"),
    ] = LogFormat.text,
    log_level: Annotated[
        str, typer.Option(envvar="NULLSPACE_LOG_LEVEL", help="debug, info, warning or error")
    ] = "info",
    egress_config: Annotated[
        Path | None, typer.Option(help="TOML file with an [egress] table: what sandboxes' network may reach (docs/egress.md)")
    ] = None,
    console_no_login: Annotated[
        bool,
        typer.Option(help="Let a browser on this machine use /console without an API key "
                          "(TCP on loopback only; default --host 127.0.0.1)"),
    ] = False,
) -> None:
    """Run the server (as root: it creates cgroups, mounts and per-sandbox users).

    Logs go to stderr; lines about a sandbox carry its id (docs/operations.md).
    """
    from ..egress.settings import EgressSettings
    from ..server import logs
    from ..server.pool_policy import PoolBounds
    from ..server.serve import serve as run
    from ..server.settings import DEFAULT_POOL_SIZES, Settings, default_data_dir

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"--log-level takes debug, info, warning or error, not {log_level!r}")
    logs.configure(log_format.value, log_level)
    sizes = dict(DEFAULT_POOL_SIZES)
    for item in pool or []:
        name, _, size = item.partition("=")
        try:
            sizes[name] = PoolBounds.parse(size)
        except ValueError as exc:
            raise typer.BadParameter(f"--pool takes TEMPLATE=N or TEMPLATE=MIN:MAX, got {item!r}: {exc}") from None
    if console_no_login:
        from ..console.access import is_loopback

        host = host or "127.0.0.1"
        if not is_loopback(host):
            raise typer.BadParameter(f"--console-no-login listens on loopback only, not on {host}")
    settings = Settings(
        data_dir=data_dir or default_data_dir(), socket_path=socket, host=host, port=port, pool_sizes=sizes,
        egress=EgressSettings.load(egress_config) if egress_config else EgressSettings(),
        console_no_login=console_no_login,
    )
    asyncio.run(run(settings))
