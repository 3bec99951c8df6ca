"""RunBus: every run in a sandbox, published to whoever watches that sandbox (the console).

`SandboxManager.execute` publishes each run's start and events here, whoever made the run (an
agent through the SDK, the E2B door, the console itself). Publishing never waits and never
fails: each watcher has a bounded queue, and a watcher that falls behind loses its *oldest*
events (and is told how many), so a slow browser can never slow a run. With nobody watching a
sandbox, a publish is one dict lookup.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

QUEUE_EVENTS = 512
"""Events a watcher may fall behind by before the oldest are dropped."""
CODE_CHARS = 64 << 10
"""A run's code is shown to watchers up to this many characters."""


class Watcher:
    """One subscriber's bounded, drop-oldest queue."""

    def __init__(self, size: int) -> None:
        self.queue: deque[dict[str, Any]] = deque(maxlen=size)
        self.dropped = 0
        self.ready = asyncio.Event()

    def put(self, event: dict[str, Any]) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest on append
        self.queue.append(event)
        self.ready.set()

    async def get(self) -> list[dict[str, Any]]:
        """Wait for events; returns what is queued (after a `dropped` notice if any were lost)."""
        await self.ready.wait()
        self.ready.clear()
        events = list(self.queue)
        self.queue.clear()
        if self.dropped:
            events.insert(0, {"type": "dropped", "count": self.dropped})
            self.dropped = 0
        return events


class RunBus:
    def __init__(self, queue_size: int = QUEUE_EVENTS) -> None:
        self.queue_size = queue_size
        self._watchers: dict[str, set[Watcher]] = {}
        self._active: dict[str, dict[str, dict[str, Any]]] = {}  # sandbox → run id → start event
        self._ids = itertools.count(1)

    def start_run(self, sandbox_id: str, body: dict[str, Any], key_id: str | None = None) -> str:
        """Announce a run; returns its id (unique in this server)."""
        run_id = f"run_{next(self._ids)}"
        code = str(body.get("code", ""))
        start = {
            "type": "run_start", "run": run_id, "at": time.time(),
            "code": code[:CODE_CHARS], "code_truncated": len(code) > CODE_CHARS,
            "language": body.get("language"), "context_id": body.get("context_id"), "key_id": key_id,
        }  # fmt: skip
        self._active.setdefault(sandbox_id, {})[run_id] = start
        self._publish(sandbox_id, start)
        return run_id

    def event(self, sandbox_id: str, run_id: str, event: dict[str, Any]) -> None:
        if sandbox_id in self._watchers:
            self._publish(sandbox_id, {**event, "run": run_id})

    def end_run(self, sandbox_id: str, run_id: str, event: dict[str, Any] | None = None) -> None:
        """The run is over; `event`: the final event, if the run did not deliver its own."""
        runs = self._active.get(sandbox_id)
        if runs is not None:
            runs.pop(run_id, None)
            if not runs:
                del self._active[sandbox_id]
        if event is not None:
            self.event(sandbox_id, run_id, event)

    def publish(self, sandbox_id: str, event: dict[str, Any]) -> None:
        """A sandbox-level event (e.g. it ended)."""
        self._publish(sandbox_id, event)

    def _publish(self, sandbox_id: str, event: dict[str, Any]) -> None:
        for watcher in self._watchers.get(sandbox_id, ()):
            watcher.put(event)

    def subscribe(self, sandbox_id: str) -> Watcher:
        """A watcher of one sandbox, subscribed at once, holding the runs in progress; pair
        with `unsubscribe`."""
        watcher = Watcher(self.queue_size)
        for start in self._active.get(sandbox_id, {}).values():
            watcher.put({**start, "joined_late": True})
        self._watchers.setdefault(sandbox_id, set()).add(watcher)
        return watcher

    def unsubscribe(self, sandbox_id: str, watcher: Watcher) -> None:
        watchers = self._watchers.get(sandbox_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[sandbox_id]
