"""`nullspace mcp`: the MCP server on stdin/stdout for a local agent.

It talks to nullspace through the SDK like any program: the local server's unix socket (started
if needed, as root), or `NULLSPACE_API_URL` + `NULLSPACE_API_KEY`. The session sandbox lives as
long as this process: it is killed when the client closes stdin.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping

import anyio

from ..client._config import ConnectionConfig
from ..client._local import not_root_message
from .access import SESSION_TEMPLATE, StdioAccess
from .tools import build_server

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KILL_WAIT = 30.0
"""Seconds the session sandbox's kill may take on the way out."""


async def serve(template: str = SESSION_TEMPLATE) -> None:
    """Serve MCP on stdio until the client hangs up or signals us, then kill the session sandbox.

    MCP clients close stdin, wait 2 s, then SIGTERM the process group: a signal ends the
    session like EOF does (the sandbox is killed first), not the process on the spot.
    """
    access = StdioAccess(template)
    server = build_server(access, log_level="WARNING")

    async def kill_session_sandbox() -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(KILL_WAIT):
            await access.aclose()

    try:
        async with anyio.create_task_group() as tasks:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                    async for _ in signals:
                        await kill_session_sandbox()
                        # The SDK reads stdin in a worker thread that no cancellation reaches
                        # while the client keeps stdin open: leave without waiting for it.
                        sys.stderr.flush()
                        os._exit(0)

            tasks.start_soon(stop_on_signal)
            await server.run_stdio_async()
            tasks.cancel_scope.cancel()
    finally:
        await kill_session_sandbox()


def unreachable_reason(env: Mapping[str, str] | None = None) -> str | None:
    """Why the tools will not reach a server from here, when that is certain before trying:
    the local unix socket without root (it is root's, mode 0600, and only root may start it)."""
    config = ConnectionConfig.resolve(env=env)
    if config.socket_path is None or os.geteuid() == 0 or os.access(config.socket_path, os.R_OK | os.W_OK):
        return None
    return not_root_message(config.socket_path)


def main(template: str = SESSION_TEMPLATE) -> None:
    """Entry point (stdout is the protocol's: logs go to stderr, which MCP clients show)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    reason = unreachable_reason()
    if reason:  # serve anyway: every tool answers with this, and the client's log shows it now
        logging.getLogger("nullspace.mcp").warning("%s", reason)
    anyio.run(serve, template)
