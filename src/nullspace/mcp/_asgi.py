"""An httpx transport that calls an ASGI app in this process and streams its answer.

`httpx.ASGITransport` runs the app to completion and hands back the whole body at once, so an
execute stream's stdout would only arrive when the run ends (no progress), and the app never
sees the client go away. This transport returns the response as soon as the app starts it,
yields body chunks as the app sends them (a small queue gives backpressure), and tells the
app `http.disconnect` when the response is closed early, as a real server would.

The in-process request carries the `state` of the HTTP request that reached the MCP endpoint
(the auth middleware's `principal`), so the API routes see the same caller and scope it in
their one place: the manager methods that take the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

QUEUE_CHUNKS = 16
"""Body chunks buffered between the app and the reader before the app waits."""
CLOSE_GRACE = 5.0
"""Seconds an app may take to finish after its response was closed before it is cancelled."""

_END = object()


class _Channel:
    """Body chunks from the app to the reader: at most `QUEUE_CHUNKS` in flight (the app waits
    for room), end markers always fit, and nothing is kept once the reader closed."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue()
        self.room = asyncio.Semaphore(QUEUE_CHUNKS)
        self.closed = asyncio.Event()

    async def put(self, chunk: bytes) -> None:
        if self.closed.is_set():
            return
        await self.room.acquire()
        if self.closed.is_set():
            self.room.release()  # wake the next waiting sender too
            return
        self.items.put_nowait(chunk)

    def finish(self, item: Any) -> None:
        if not self.closed.is_set():
            self.items.put_nowait(item)

    async def get(self) -> Any:
        item = await self.items.get()
        if isinstance(item, bytes):
            self.room.release()
        return item

    def close(self) -> None:
        self.closed.set()
        self.room.release()


class _Body(httpx.AsyncByteStream):
    def __init__(self, channel: _Channel, task: asyncio.Task[None]) -> None:
        self._channel, self._task = channel, task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._channel.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"in-process app failed: {item!r}") from item
            if item:
                yield item

    async def aclose(self) -> None:
        self._channel.close()
        if not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_GRACE)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # noqa: S110 - already reported through the body
                pass


class InProcessTransport(httpx.AsyncBaseTransport):
    """Send httpx requests to `app` in this process, streaming both ways.

    Args:
        app: The ASGI app (the FastAPI app, without the TCP auth middleware in front).
        state: The `scope["state"]` every request gets (copied per request): the caller's
            principal as the auth middleware resolved it for the MCP request.
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.state = dict(state or {})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "server": (request.url.host, request.url.port or 80),
            "client": ("127.0.0.1", 0),
            "state": dict(self.state),
        }
        body = request.stream.__aiter__()
        request_done = False
        channel = _Channel()
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def receive() -> Message:
            nonlocal request_done
            if not request_done:
                try:
                    chunk = await body.__anext__()
                except StopAsyncIteration:
                    request_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.request", "body": chunk, "more_body": True}
            await channel.closed.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                await channel.put(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    channel.finish(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
                else:
                    channel.finish(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if not started.done():
                    started.set_exception(RuntimeError("the app returned without a response"))
            finally:
                channel.finish(_END)

        task = asyncio.create_task(run())
        try:
            start = await started
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_Body(channel, task),
            request=request,
        )
