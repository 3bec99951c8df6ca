"""NDJSON event responses that end with their final event and notice a client going away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._protocol import ndjson


class NDJSONEvents(Response):
    """Streams events as NDJSON lines, one write each, as they come.

    A final event (``ndjson.FINAL_TYPES``) goes out in the same write as the end of the body, so
    the client sees the response complete with it and can reuse its connection at once. A client
    that disconnects cancels the iteration, which closes the event source (for a run: the agent
    stream, and the agent then interrupts the kernel).
    """

    media_type = ndjson.MEDIA_TYPE

    def __init__(self, events: AsyncGenerator[dict[str, Any], None], first: dict[str, Any] | None = None) -> None:
        """`first`: an event already taken from `events` (to answer errors before it as a 4xx)."""
        self.events = events
        self.first = first
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.create_task(self._stream(send))
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await asyncio.wait({stream, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stream.cancel()  # a no-op once it is done
            watcher.cancel()
            outcome, _ = await asyncio.gather(stream, watcher, return_exceptions=True)
            await self.events.aclose()  # for a run: closes the agent stream, ending an abandoned run
        if isinstance(outcome, Exception):
            raise outcome

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.first is not None and await self._send(send, self.first):
            return
        async for event in self.events:
            if await self._send(send, event):
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _send(send: Send, event: dict[str, Any]) -> bool:
        """Send one event; True when it was the final one (and the body is complete)."""
        final = event.get("type") in ndjson.FINAL_TYPES
        await send({"type": "http.response.body", "body": ndjson.encode(event), "more_body": not final})
        return final
