"""What metrics and sandbox-tagged logs cost a run: the same request through the bare app and
through the instrumented stack, in one process (no sandbox, so the difference is not lost in
the ~5 ms of a real run).

    .venv/bin/python bench/metrics_overhead.py

Each round sends one POST through an ASGI app that streams three NDJSON-like events from an
async generator, like `/execute`: once bare, once wrapped in `SandboxRequests` +
`RequestMetrics` with the generator under `observe_run` (the hooks a real run passes through).
Rounds alternate so machine noise hits both alike; medians and p99 per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _stats import p50_p99_ms

from nullspace.server.logs import SandboxRequests
from nullspace.server.metrics import Metrics, RequestMetrics, observe_run

ROUNDS = 20_000


class Route:
    path = "/v1/sandboxes/{sandbox_id}/execute"


class Manager:
    def __init__(self) -> None:
        self.metrics = Metrics()

    async def execute(self) -> Any:
        yield {"type": "stdout", "text": "2\n"}
        yield {"type": "result", "text": "2"}
        yield {"type": "end_of_execution", "status": "ok"}


INSTRUMENTED = observe_run(Manager.execute)


def app_for(instrumented: bool, manager: Manager) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = Route
        events = INSTRUMENTED(manager) if instrumented else Manager.execute(manager)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        async for event in events:
            await send({"type": "http.response.body", "body": repr(event).encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    if instrumented:
        return SandboxRequests(RequestMetrics(app, manager.metrics))
    return app


async def main() -> None:
    manager = Manager()
    apps = {False: app_for(False, manager), True: app_for(True, manager)}
    times: dict[bool, list[float]] = {False: [], True: []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for i in range(ROUNDS * 2):
        which = bool(i % 2)
        scope = {"type": "http", "method": "POST", "path": "/v1/sandboxes/sb_0123456789abcdef/execute",
                 "headers": []}
        started = time.perf_counter()
        await apps[which](scope, receive, send)
        times[which].append(time.perf_counter() - started)
    bare, inst = p50_p99_ms(times[False]), p50_p99_ms(times[True])
    print(f"bare app:      p50 {bare[0] * 1000:.1f} µs  p99 {bare[1] * 1000:.1f} µs")
    print(f"instrumented:  p50 {inst[0] * 1000:.1f} µs  p99 {inst[1] * 1000:.1f} µs")
    print(f"added per run: {(inst[0] - bare[0]) * 1000:.1f} µs (p50)")


if __name__ == "__main__":
    asyncio.run(main())
