"""`NDJSONFollow`: the final event of a stream goes out with the end of the body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nullspace.agent.web import NDJSONFollow

pytestmark = pytest.mark.anyio


async def _serve(events: AsyncIterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[bool]]:
    sent: list[dict[str, Any]] = []
    aborted: list[bool] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    response = NDJSONFollow(events, on_abort=lambda: aborted.append(True))
    await response({"type": "http"}, receive, send)
    return sent[1:], aborted


@pytest.mark.parametrize("final", ["end_of_execution", "end"])
async def test_final_event_ends_the_body(final: str) -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "stdout", "text": "a"}
        yield {"type": final, "status": "ok"}

    body, aborted = await _serve(events())
    assert [(json.loads(m["body"])["type"], m["more_body"]) for m in body] == [("stdout", True), (final, False)]
    assert aborted == []  # the run was complete


async def test_a_stream_without_final_event_ends_with_an_empty_body() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "keepalive"}

    body, aborted = await _serve(events())
    assert [(m["body"], m["more_body"]) for m in body] == [(b'{"type":"keepalive"}\n', True), (b"", False)]
    assert aborted == []
