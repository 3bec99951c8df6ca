"""Progress of a tool call: each output chunk, a heartbeat while silent, a count that only grows."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from nullspace.client._models import OutputMessage
from nullspace.mcp.progress import progress

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeContext:
    def __init__(self) -> None:
        self.sent: list[tuple[float, float | None, str | None]] = []
        self.changed = asyncio.Event()

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        self.sent.append((progress, total, message))
        self.changed.set()


async def test_output_chunks_then_heartbeats_while_silent_then_nothing_after_the_block() -> None:
    ctx = FakeContext()
    async with progress(cast(Any, ctx), "run_code", interval=0.01) as report:
        await report.output(OutputMessage("hello\n"))
        await report.output(OutputMessage("oops\n", error=True))
        async with asyncio.timeout(10):
            while sum("still running" in (m or "") for _, _, m in ctx.sent) < 2:
                ctx.changed.clear()
                await ctx.changed.wait()
    after = len(ctx.sent)
    await asyncio.sleep(0.05)
    assert len(ctx.sent) == after  # the heartbeat stopped with the block
    assert [m for _, _, m in ctx.sent[:2]] == ["hello", "stderr: oops"]
    assert ctx.sent[2][2].startswith("run_code: still running (")
    counts = [p for p, _, _ in ctx.sent]
    assert counts == sorted(set(counts)) and counts[0] == 1


async def test_a_long_chunk_is_cut_in_its_message() -> None:
    ctx = FakeContext()
    async with progress(cast(Any, ctx), "run_command", interval=60) as report:
        await report.output(OutputMessage("x" * 5000))
    assert "more characters not shown" in ctx.sent[0][2] and len(ctx.sent[0][2]) < 2100
