"""RunBus: runs published to watchers, bounded and drop-oldest, never waiting on a watcher."""

from __future__ import annotations

import asyncio

import pytest

from nullspace.server.bus import RunBus

pytestmark = pytest.mark.anyio


async def test_a_watcher_sees_runs_in_order_and_joins_runs_in_progress() -> None:
    bus = RunBus()
    early = bus.start_run("sb_1", {"code": "print(1)", "language": "python"}, key_id="key_a")
    watcher = bus.subscribe("sb_1")
    bus.event("sb_1", early, {"type": "stdout", "text": "1\n"})
    bus.end_run("sb_1", early)
    other = bus.start_run("sb_2", {"code": "x"})  # another sandbox: not seen
    bus.event("sb_2", other, {"type": "stdout", "text": "no"})
    events = await watcher.get()
    assert [(e["type"], e.get("run")) for e in events] == [("run_start", early), ("stdout", early)]
    assert events[0]["joined_late"] and events[0]["code"] == "print(1)" and events[0]["key_id"] == "key_a"
    bus.unsubscribe("sb_1", watcher)
    assert bus._watchers == {}


async def test_a_slow_watcher_loses_the_oldest_events_and_is_told() -> None:
    bus = RunBus(queue_size=8)
    watcher = bus.subscribe("sb_1")
    run = bus.start_run("sb_1", {"code": "loop"})
    for i in range(1000):  # nobody reads: publishing must neither block nor grow
        bus.event("sb_1", run, {"type": "stdout", "text": f"{i}\n"})
    assert len(watcher.queue) == 8
    events = await asyncio.wait_for(watcher.get(), 1)
    assert events[0] == {"type": "dropped", "count": 993}
    assert [e["text"] for e in events[1:]] == [f"{i}\n" for i in range(992, 1000)]


async def test_an_abandoned_run_is_ended_for_watchers() -> None:
    bus = RunBus()
    watcher = bus.subscribe("sb_1")
    run = bus.start_run("sb_1", {"code": "x" * 100_000})
    bus.end_run("sb_1", run, {"type": "end_of_execution", "status": "abandoned"})
    start, end = await watcher.get()
    assert start["code_truncated"] and len(start["code"]) == 64 << 10
    assert end == {"type": "end_of_execution", "status": "abandoned", "run": run}
    assert bus._active == {}  # a later watcher is not told of it
