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
) -> None:
    """Run the server (as root: it creates cgroups, mounts and per-sandbox users)."""
    from ..server.serve import serve as run
    from ..server.settings import Settings, default_data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(data_dir=data_dir or default_data_dir(), socket_path=socket, host=host, port=port)
    asyncio.run(run(settings))
