"""How the MCP tools reach nullspace for the caller of one tool call, and the session sandbox.

Every tool talks to the server through the SDK (`AsyncSandbox`); only where the SDK connects
differs:

* stdio (`nullspace mcp`): the SDK's usual resolution: the local unix socket, or
  `NULLSPACE_API_URL` + `NULLSPACE_API_KEY`. One client per process, so one session sandbox.
* HTTP (`/mcp` on the server): an in-process transport to the API app that carries the MCP
  request's auth state, so the API scopes every call to the caller's tenant in its one place.
  One session sandbox per MCP session (`Mcp-Session-Id`), killed when the session ends.

A tool called without `sandbox_id` uses the session sandbox: created on first use, its life
pushed `SESSION_IDLE` seconds ahead on every use, killed when the session ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from .._exceptions import SandboxNotFoundError
from ..client._async.sandbox import AsyncSandbox
from ._asgi import ASGIApp, InProcessTransport

SESSION_TEMPLATE = "code-interpreter"
SESSION_IDLE = 1800
"""Seconds a session sandbox lives after its last use (each use pushes its end this far)."""
SESSION_METADATA = {"created_by": "mcp", "mcp_sandbox": "session"}
IN_PROCESS_URL = "http://nullspace.in-process"


class SessionSandbox:
    """The implicit sandbox of one MCP session (created lazily; one creation at a time)."""

    def __init__(self, template: str = SESSION_TEMPLATE) -> None:
        self.template = template
        self.sandbox_id: str | None = None
        self.options: dict[str, Any] = {}
        self.lock = asyncio.Lock()

    async def open(self, options: dict[str, Any]) -> tuple[AsyncSandbox, str | None]:
        """The session sandbox, connected; and a note when it had to be (re)created."""
        async with self.lock:
            note = None
            if self.sandbox_id is not None:
                try:
                    sandbox = await AsyncSandbox.connect(self.sandbox_id, **options)
                except SandboxNotFoundError:
                    note = f"(the session's sandbox {self.sandbox_id} had ended; this is a new one)"
                else:
                    try:
                        await sandbox.set_timeout(SESSION_IDLE)
                    except BaseException:
                        await sandbox.close()
                        raise
                    return sandbox, None
            sandbox = await AsyncSandbox.create(
                self.template, timeout=SESSION_IDLE, metadata=SESSION_METADATA, **options
            )
            self.sandbox_id, self.options = sandbox.sandbox_id, options
            return sandbox, note or f"(created the session's sandbox {sandbox.sandbox_id})"

    async def kill(self) -> None:
        """Kill the session sandbox, if there is one."""
        async with self.lock:
            if self.sandbox_id is None:
                return
            sandbox_id, self.sandbox_id = self.sandbox_id, None
            try:
                sandbox = await AsyncSandbox.connect(sandbox_id, **self.options)
            except SandboxNotFoundError:
                return
            try:
                await sandbox.kill()
            finally:
                await sandbox.close()


class Access(Protocol):
    """Where the tools connect for one call, and which session sandbox that call has."""

    def options(self, ctx: Context) -> dict[str, Any]:
        """Connection keyword arguments for `AsyncSandbox.create/connect/list`."""
        ...

    def session(self, ctx: Context) -> SessionSandbox:
        """The calling session's sandbox holder (ToolError when the call has no session)."""
        ...


@asynccontextmanager
async def open_sandbox(
    access: Access, ctx: Context, sandbox_id: str | None
) -> AsyncIterator[tuple[AsyncSandbox, str | None]]:
    """The sandbox a tool call names (or the session's), connected for the call's duration."""
    if sandbox_id is None:
        sandbox, note = await access.session(ctx).open(access.options(ctx))
    else:
        sandbox, note = await AsyncSandbox.connect(sandbox_id, **access.options(ctx)), None
    try:
        yield sandbox, note
    finally:
        await sandbox.close()


class StdioAccess:
    """`nullspace mcp`: the SDK's own connection settings; the process is the session."""

    def __init__(self, template: str = SESSION_TEMPLATE) -> None:
        self._session = SessionSandbox(template)

    def options(self, ctx: Context) -> dict[str, Any]:
        return {}

    def session(self, ctx: Context) -> SessionSandbox:
        return self._session

    async def aclose(self) -> None:
        """Kill the session sandbox (the client went away)."""
        await self._session.kill()


_STATE_KEY = "nullspace.session_sandbox"


class HttpAccess:
    """`/mcp` on the server: in-process calls into `app` with the MCP request's auth state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def options(self, ctx: Context) -> dict[str, Any]:
        request = ctx.request_context.request
        state = getattr(request, "scope", {}).get("state") or {}
        return {"api_url": IN_PROCESS_URL, "transport": InProcessTransport(self.app, state)}

    def session(self, ctx: Context) -> SessionSandbox:
        # The SDK keeps the per-session Connection (its `state` and `exit_stack`) on the request's
        # session object; mcp is pinned, and tests/integration/test_mcp.py checks session end.
        connection = getattr(ctx.request_context.session, "_connection", None)
        if connection is None or connection.session_id is None:
            raise ToolError(
                "this connection has no MCP session (stateless HTTP), so there is no session "
                "sandbox: call create_sandbox and pass its sandbox_id to the other tools"
            )
        holder = connection.state.get(_STATE_KEY)
        if holder is None:
            holder = connection.state[_STATE_KEY] = SessionSandbox()
            connection.exit_stack.push_async_callback(holder.kill)
        return holder
