"""Where a nullspace server keeps its state, and where clients find it: the one place for these
defaults (the SDK, the server, the CLI and the template store all read them from here)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/nullspace")
DEFAULT_PORT = 49982
SOCKET_NAME = "nullspace.sock"
STATE_DB = "state.db"


def default_data_dir() -> Path:
    """`$NULLSPACE_HOME`, or `/var/lib/nullspace`."""
    return Path(os.environ.get("NULLSPACE_HOME") or DEFAULT_DATA_DIR)


def state_db(data_dir: Path) -> Path:
    """The server's database (sandboxes, tenants, API keys) in `data_dir`."""
    return data_dir / STATE_DB
