"""Monitor: CPU and memory of running sandboxes over time, sampled only while someone watches.

The numbers are the cgroup counters the runtime already keeps (`Cgroup.stats()`); CPU use is the
change of the cgroup's CPU time between two samples, in cores. Sampling runs while at least one
watcher (a console page) holds `monitor.watching()`, one batch of cgroupfs reads per interval in
a worker thread, and keeps the last `HISTORY` samples per sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..runtime.cgroups import Cgroup, CgroupStats

if TYPE_CHECKING:
    from .lifecycle import SandboxManager

log = logging.getLogger(__name__)
INTERVAL = 1.0
HISTORY = 300  # 5 minutes at one sample a second


@dataclass(frozen=True)
class Sample:
    at: float
    cpu: float | None  # cores used since the previous sample (None for the first)
    memory: int  # bytes
    pids: int

    def as_list(self) -> list[Any]:
        return [round(self.at, 3), None if self.cpu is None else round(self.cpu, 4), self.memory, self.pids]


def usage(cpu_limit: float, stats: CgroupStats, sample: Sample | None) -> dict[str, Any]:
    """One sandbox's use against its limits (the JSON the API answers)."""
    return {
        "cpu_used": sample.cpu if sample else None,
        "cpu_limit": cpu_limit,
        "cpu_time_usec": stats.cpu_usage_usec,
        "memory_used": stats.memory_current,
        "memory_peak": stats.memory_peak,
        "memory_limit": stats.memory_limit,
        "pids": stats.pids_current,
        "pids_limit": stats.pids_limit,
    }


class Monitor:
    def __init__(self, manager: SandboxManager, interval: float = INTERVAL, history: int = HISTORY) -> None:
        self.manager = manager
        self.interval = interval
        self.size = history
        self.history: dict[str, deque[Sample]] = {}
        self.stats: dict[str, CgroupStats] = {}
        self._cpu: dict[str, tuple[float, int]] = {}  # sandbox → (time, CPU µs) of the last read
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Keep sampling while the caller is inside."""
        self._watchers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        try:
            yield
        finally:
            self._watchers -= 1

    async def next_tick(self) -> None:
        """Wait for the next batch of samples."""
        await self._tick.wait()

    def latest(self, sandbox_id: str) -> Sample | None:
        samples = self.history.get(sandbox_id)
        return samples[-1] if samples else None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while self._watchers > 0:
            lives = [live for live in self.manager.live.values() if not live.stopping]
            read = await asyncio.to_thread(_read_all, [(live.record.id, live.running.cgroup) for live in lives])
            self._record(read)
            self._tick.set()
            self._tick = asyncio.Event()
            await asyncio.sleep(self.interval)
        self._task = None
        self._cpu.clear()  # CPU use is per interval: the next sample after a gap starts afresh

    def _record(self, read: list[tuple[str, float, CgroupStats]]) -> None:
        seen = set()
        for sid, at, stats in read:
            seen.add(sid)
            cpu = None
            last = self._cpu.get(sid)
            if last is not None and at > last[0]:
                cpu = max(0.0, (stats.cpu_usage_usec - last[1]) / 1e6 / (at - last[0]))
            self._cpu[sid] = (at, stats.cpu_usage_usec)
            self.stats[sid] = stats
            self.history.setdefault(sid, deque(maxlen=self.size)).append(
                Sample(at, cpu, stats.memory_current, stats.pids_current)
            )
        for gone in set(self.history) - seen:
            self.history.pop(gone, None)
            self.stats.pop(gone, None)
            self._cpu.pop(gone, None)


def _read_all(cgroups: list[tuple[str, Cgroup]]) -> list[tuple[str, float, CgroupStats]]:
    out = []
    for sid, cgroup in cgroups:
        try:
            out.append((sid, time.time(), cgroup.stats()))
        except OSError:  # the sandbox ended while we read
            continue
    return out
