"""MCP progress notifications for one tool call: every chunk of output as it happens, and a
heartbeat while nothing is printed.

Only sent when the client asked for progress (a `progressToken`). The heartbeat matters: MCP
clients time tool calls out (the TypeScript SDK after 60 s by default) unless progress resets
the clock, so a silent two-minute run would otherwise be abandoned by the agent's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from mcp.server.mcpserver import Context

from ..client._models import OutputMessage
from .content import clip

HEARTBEAT = 10.0
"""Seconds without output after which a tool call reports that it is still running."""
MAX_MESSAGE = 2000
"""Characters of one output chunk put in a progress message."""


class Progress:
    """Progress of one tool call (`progress` counts the notifications sent, so it only grows)."""

    def __init__(self, ctx: Context, what: str) -> None:
        self.ctx, self.what = ctx, what
        self.count = 0
        self.started = self.last = time.monotonic()

    async def report(self, message: str) -> None:
        """Send one notification."""
        self.count += 1
        self.last = time.monotonic()
        await self.ctx.report_progress(self.count, None, message)

    async def output(self, message: OutputMessage) -> None:
        """A stdout/stderr callback for the SDK: each chunk as a notification."""
        prefix = "stderr: " if message.error else ""
        await self.report(prefix + clip(message.line.rstrip("\n"), MAX_MESSAGE))

    async def _beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.last + interval - time.monotonic()))
            if time.monotonic() - self.last >= interval:
                await self.report(f"{self.what}: still running ({time.monotonic() - self.started:.0f} s)")


@contextlib.asynccontextmanager
async def progress(ctx: Context, what: str, interval: float = HEARTBEAT) -> AsyncIterator[Progress]:
    """A `Progress` whose heartbeat runs for the duration of the block."""
    reporter = Progress(ctx, what)
    beat = asyncio.create_task(reporter._beat(interval))
    try:
        yield reporter
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await beat
