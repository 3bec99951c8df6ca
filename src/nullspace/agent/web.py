"""HTTP pieces every agent route shares: JSON request bodies and NDJSON responses that notice a
client going away (runs and commands both stream this way)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from . import messages
from .contexts import AgentError
from .messages import Event

NDJSON = "application/x-ndjson"
# Event types after which a stream always ends. The last event goes out in the same write as the
# end of the body, so the reader sees the response complete and can reuse its connection at once.
FINAL_TYPES = frozenset({"end_of_execution", "end"})


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 400 when it is not a JSON object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AgentError(400, "invalid_argument", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AgentError(400, "invalid_argument", "the body must be a JSON object")
    return data


class NDJSONFollow(Response):
    """Streams events; when the client goes away before the end, calls `on_abort`."""

    def __init__(
        self,
        events: AsyncIterator[Event],
        on_abort: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", NDJSON.encode()), (b"cache-control", b"no-store")]
        self.events = events
        self.on_abort = on_abort
        self.on_close = on_close
        self.done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.create_task(self._stream(send))
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await asyncio.wait({stream, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, watcher):
                task.cancel()
            for task in (stream, watcher):
                with contextlib.suppress(BaseException):
                    await task
            if not self.done and self.on_abort is not None:
                self.on_abort()
            if self.on_close is not None:
                self.on_close()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for event in self.events:
            final = event["type"] in FINAL_TYPES
            await send({"type": "http.response.body", "body": messages.encode(event), "more_body": not final})
            if final:
                self.done = True
                return
        self.done = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
