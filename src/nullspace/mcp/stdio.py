"""`nullspace mcp`: the MCP server on stdin/stdout for a local agent.

It talks to nullspace through the SDK like any program: the local server's unix socket (started
if needed, as root), or `NULLSPACE_API_URL` + `NULLSPACE_API_KEY`. The session sandbox lives as
long as this process: it is killed when the client closes stdin.
"""

from __future__ import annotations

import logging
import sys

import anyio

from .access import StdioAccess
from .tools import build_server


async def serve() -> None:
    """Serve MCP on stdio until the client hangs up, then kill the session sandbox."""
    access = StdioAccess()
    server = build_server(access, log_level="WARNING")
    try:
        await server.run_stdio_async()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            await access.aclose()


def main() -> None:
    """Entry point (stdout is the protocol's: logs go to stderr)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    anyio.run(serve)
