"""Streaming: `run_code_stream` (sync `for`, async `async for`) yields stdout, stderr, result, error
and end events as they happen; the print → callback delay is measured and reported."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from nullspace import AsyncSandbox, EndOfExecution, ExecutionError, OutputMessage, Result, Sandbox

CODE = (
    "import sys, time\n"
    "print('out', flush=True)\n"
    "print('err', file=sys.stderr, flush=True)\n"
    "display('shown')\n"
    "time.sleep(2)\n"
    "1 / 0"
)


def kinds(items: list[tuple[float, Any]]) -> list[str]:
    names = []
    for _, item in items:
        if isinstance(item, OutputMessage):
            names.append("stderr" if item.error else "stdout")
        elif isinstance(item, Result):
            names.append("result")
        elif isinstance(item, ExecutionError):
            names.append("error")
        elif isinstance(item, EndOfExecution):
            names.append("end")
    return names


def check_live(items: list[tuple[float, Any]]) -> None:
    assert kinds(items) == ["stdout", "stderr", "result", "error", "end"]
    arrived = {kind: t for kind, (t, _) in zip(kinds(items), items, strict=True)}
    # The first three came during the 2 s sleep, long before the error and the end.
    assert arrived["result"] < arrived["error"] - 1.5, items
    end = items[-1][1]
    assert end.status == "error" and end.execution.error.name == "ZeroDivisionError"
    assert end.execution.logs.stdout == ["out\n"] and end.execution.logs.stderr == ["err\n"]


def test_sync_iterator_yields_events_as_they_happen(sandbox: Sandbox) -> None:
    start = time.monotonic()
    items = [(time.monotonic() - start, item) for item in sandbox.run_code_stream(CODE)]
    check_live(items)


def test_async_iterator_yields_events_as_they_happen(sandbox: Sandbox) -> None:
    async def main() -> list[tuple[float, Any]]:
        sbx = await AsyncSandbox.connect(sandbox.sandbox_id)
        try:
            start = time.monotonic()
            return [(time.monotonic() - start, item) async for item in sbx.run_code_stream(CODE)]
        finally:
            await sbx.close()

    check_live(asyncio.run(main()))


def test_breaking_out_of_the_iterator_interrupts_the_run(sandbox: Sandbox) -> None:
    sandbox.run_code("state = 'kept'")
    start = time.monotonic()
    for item in sandbox.run_code_stream("import time\nprint('go', flush=True)\ntime.sleep(600)"):
        assert isinstance(item, OutputMessage)
        break
    assert sandbox.run_code("state", timeout=30).text == "kept"  # interrupted, not stuck
    assert time.monotonic() - start < 30


def _delays(on_text: list[float]) -> Callable[[OutputMessage], None]:
    def on_stdout(msg: OutputMessage) -> None:
        now = time.time()  # the sandbox shares the host's clock
        on_text.extend(now - float(line) for line in msg.line.splitlines() if line.strip())

    return on_stdout


def test_print_to_callback_delay_is_measured(sandbox: Sandbox, record_property: Any) -> None:
    """Measured, not asserted as a timing: the numbers go to the report (bench/stream_delay.py
    compares them with raw jupyter_client)."""
    delays: list[float] = []
    sandbox.run_code("1")  # a warm kernel
    execution = sandbox.run_code(
        "import time\nfor i in range(100):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.01)",
        on_stdout=_delays(delays),
    )
    assert execution.error is None and len(delays) == 100
    ordered = sorted(delays)
    median, p99 = statistics.median(ordered), ordered[98]
    assert all(d > -0.01 for d in ordered)  # arrivals follow the prints (one clock)
    record_property("stream_delay_median_ms", round(median * 1000, 2))
    record_property("stream_delay_p99_ms", round(p99 * 1000, 2))
    print(f"\nprint → on_stdout delay: median {median * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")


@pytest.mark.parametrize("use_callback", [True, False], ids=["callbacks", "iterator"])
def test_callbacks_and_iterator_see_the_same_events(sandbox: Sandbox, use_callback: bool) -> None:
    seen: list[str] = []
    code = "print('a')\nimport sys; print('b', file=sys.stderr)\ndisplay(1)\n2"
    if use_callback:
        sandbox.run_code(
            code,
            on_stdout=lambda m: seen.append("stdout:" + m.line),
            on_stderr=lambda m: seen.append("stderr:" + m.line),
            on_result=lambda r: seen.append("result:" + r.text),
        )
    else:
        for item in sandbox.run_code_stream(code):
            if isinstance(item, OutputMessage):
                seen.append(("stderr:" if item.error else "stdout:") + item.line)
            elif isinstance(item, Result):
                seen.append("result:" + item.text)
    assert sorted(seen) == ["result:1", "result:2", "stderr:b\n", "stdout:a\n"]
