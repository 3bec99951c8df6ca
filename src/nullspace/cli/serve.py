"""`nullspace serve`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer


def serve(
    data_dir: Annotated[Path | None, typer.Option(help="State, templates and sandboxes [env NULLSPACE_HOME]")] = None,
    socket: Annotated[Path | None, typer.Option(help="Unix socket path [default: DATA_DIR/nullspace.sock]")] = None,
    host: Annotated[str | None, typer.Option(help="Also listen on TCP at this address (API keys required)")] = None,
    port: Annotated[int, typer.Option(help="TCP port")] = 49982,
    pool: Annotated[
        list[str] | None,
        typer.Option(help="Warm pool size per template, TEMPLATE=N (repeatable; default code-interpreter=2)"),
    ] = None,
) -> None:
    """Run the server (as root: it creates cgroups, mounts and per-sandbox users)."""
    from ..server.serve import serve as run
    from ..server.settings import DEFAULT_POOL_SIZES, Settings, default_data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per agent call is noise
    sizes = dict(DEFAULT_POOL_SIZES)
    for item in pool or []:
        name, _, size = item.partition("=")
        if not size.isdigit():
            raise typer.BadParameter(f"--pool takes TEMPLATE=N, got {item!r}")
        sizes[name] = int(size)
    settings = Settings(
        data_dir=data_dir or default_data_dir(), socket_path=socket, host=host, port=port, pool_sizes=sizes
    )
    asyncio.run(run(settings))
