"""NDJSON event streams on both server hops: the response to the client (`NDJSONEvents`) and the
agent's response (`agent_client._events`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nullspace.server import agent_client
from nullspace.server.streaming import NDJSONEvents

pytestmark = pytest.mark.anyio


async def _serve(response: NDJSONEvents, messages: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run the response as ASGI; `messages` are what `receive` returns, then it blocks."""
    sent: list[dict[str, Any]] = []
    incoming = list(messages or [])

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await response({"type": "http"}, receive, send)
    return sent


def _bodies(sent: list[dict[str, Any]]) -> list[tuple[Any, bool]]:
    return [(json.loads(m["body"]) if m["body"] else b"", m["more_body"]) for m in sent[1:]]


async def test_final_event_ends_the_body_in_the_same_message() -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"type": "result", "data": {}}
            yield {"type": "end_of_execution", "status": "ok"}
            yield {"type": "stdout", "text": "never sent"}
        finally:
            closed.append(True)

    sent = await _serve(NDJSONEvents(events(), first={"type": "number_of_executions", "execution_count": 1}))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert (b"content-type", b"application/x-ndjson") in sent[0]["headers"]
    assert _bodies(sent) == [
        ({"type": "number_of_executions", "execution_count": 1}, True),
        ({"type": "result", "data": {}}, True),
        ({"type": "end_of_execution", "status": "ok"}, False),
    ]
    assert closed == [True]


async def test_a_stream_without_final_event_still_ends_its_body() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "stdout", "text": "a"}

    sent = await _serve(NDJSONEvents(events()))
    assert _bodies(sent) == [({"type": "stdout", "text": "a"}, True), (b"", False)]


async def test_client_disconnect_closes_the_event_source() -> None:
    started, closed = asyncio.Event(), []

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"type": "stdout", "text": "a"}
            started.set()
            await asyncio.Event().wait()  # a long run with no output
            yield {"type": "end_of_execution", "status": "ok"}
        finally:
            closed.append(True)

    sent: list[dict[str, Any]] = []
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(NDJSONEvents(events())({"type": "http"}, receive, send))
    await started.wait()
    disconnect.set()
    await asyncio.wait_for(task, 5)
    assert closed == [True]
    assert all(m.get("more_body", True) for m in sent)  # the body was never ended


# -- the agent hop ---------------------------------------------------------------------------


def _agent_response(chunks: AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, stream=_Stream(chunks))


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk


async def _collect(resp: httpx.Response) -> list[dict[str, Any]]:
    return [event async for event in agent_client._events(resp.aiter_raw())]


async def test_agent_events_read_the_body_end_before_the_final_event() -> None:
    read_to_end: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type":"number_of_executions"}\n{"type":"end_of_execution","status":"ok"}\n'
        read_to_end.append(True)

    events = await _collect(_agent_response(chunks()))
    assert [e["type"] for e in events] == ["number_of_executions", "end_of_execution"]
    assert read_to_end == [True]


async def test_agent_events_skip_non_events() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'[1]\nnot json\n{"no":"type"}\n{"type":"stdout","text":"a"}\n{"type":"end"}\n'

    assert [e["type"] for e in await _collect(_agent_response(chunks()))] == ["stdout", "end"]


@pytest.mark.parametrize("stall", [True, False])
async def test_a_hostile_agent_after_its_final_event_is_bounded(monkeypatch: pytest.MonkeyPatch, stall: bool) -> None:
    """A stall or a flood after the final event costs at most DRAIN_SECONDS / MAX_REPLY_BYTES."""
    monkeypatch.setattr(agent_client, "DRAIN_SECONDS", 0.05)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type":"end_of_execution","status":"ok"}\n'
        while True:
            if stall:
                await asyncio.sleep(3600)
            yield b'{"type":"stdout","text":"' + b"x" * 65536 + b'"}\n'

    events = await asyncio.wait_for(_collect(_agent_response(chunks())), 5)
    assert [e["type"] for e in events] == ["end_of_execution"]


def test_openapi_describes_execute_as_an_ndjson_stream(tmp_path) -> None:  # noqa: ANN001
    from nullspace.server.app import create_app
    from nullspace.server.settings import Settings

    doc = create_app(Settings(data_dir=tmp_path)).openapi()
    ok = doc["paths"]["/v1/sandboxes/{sandbox_id}/execute"]["post"]["responses"]["200"]
    assert "application/x-ndjson" in ok["content"]
