"""InProcessTransport: an ASGI app in this process, streamed both ways, with the caller's state."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from nullspace.mcp._asgi import InProcessTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Probe:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cleaned_up = asyncio.Event()

    def app(self) -> Starlette:
        async def stream(request: Request) -> StreamingResponse:
            async def body():  # first chunk, then wait for the reader to have seen it
                try:
                    yield b"first\n"
                    await self.release.wait()
                    yield b"second\n"
                    await asyncio.Event().wait()  # forever, until the client goes away
                finally:
                    self.cleaned_up.set()

            return StreamingResponse(body())

        async def who(request: Request) -> JSONResponse:
            return JSONResponse({"principal": request.state.principal, "query": request.url.query})

        async def echo(request: Request) -> JSONResponse:
            return JSONResponse({"size": len(await request.body())})

        async def boom(request: Request) -> JSONResponse:
            raise RuntimeError("boom")

        return Starlette(routes=[Route("/stream", stream), Route("/who", who), Route("/echo", echo, methods=["POST"]),
                                 Route("/boom", boom)])


def _client(app: Starlette, state: dict[str, object] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=InProcessTransport(app, state), base_url="http://in-process")


async def test_chunks_arrive_as_sent_and_closing_early_disconnects_the_app() -> None:
    probe = Probe()
    async with _client(probe.app()) as client, client.stream("GET", "/stream") as response:
        lines = response.aiter_lines()
        assert await lines.__anext__() == "first"  # the app is still waiting: not buffered
        probe.release.set()
        assert await lines.__anext__() == "second"
    await asyncio.wait_for(probe.cleaned_up.wait(), 5)  # the app saw the reader go away


async def test_the_request_carries_the_given_state_and_query() -> None:
    async with _client(Probe().app(), {"principal": "tenant-a"}) as client:
        response = await client.get("/who", params={"x": "1"})
    assert response.json() == {"principal": "tenant-a", "query": "x=1"}


async def test_request_bodies_stream_in() -> None:
    async def chunks():
        for _ in range(4):
            yield b"x" * 100_000

    async with _client(Probe().app()) as client:
        response = await client.post("/echo", content=chunks())
    assert response.json() == {"size": 400_000}


async def test_an_app_error_is_a_500_or_an_exception_not_a_hang() -> None:
    async with _client(Probe().app()) as client:
        try:
            response = await asyncio.wait_for(client.get("/boom"), 5)
        except RuntimeError as exc:
            assert "boom" in str(exc)
        else:
            assert response.status_code == 500
