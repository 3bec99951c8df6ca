"""Warm pools: per template, sandboxes fully started (isolation, agent, Python kernel) ahead of need.

`create` claims one (`SandboxManager._claim_warm` then applies the caller's limits, disk size
and envs) and a background filler starts its replacement once the claims quiet down. A pool's
size follows demand within the operator's bounds, and its refills speed up when the host's cores
are idle and back off when running sandboxes need them (pool_policy.py).
A template's ``preload`` modules are imported by a pooled sandbox's Python kernel before it
counts as ready (a first plot then skips ~550 ms of imports); cold starts never wait for them.
A pooled sandbox is claimed once and never returned: nothing carries over between users. A
template rebuilt since a sandbox was warmed makes that sandbox stale: it is discarded at claim.
An empty pool is not an error: `create` falls back to a cold start.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..runtime.cgroups import Limits
from ..runtime.local import RunningSandbox
from .agent_client import AgentClient
from .logs import bind_sandbox
from .pool_policy import Demand, PoolBounds, refill_plan, target
from .settings import MiB

if TYPE_CHECKING:
    from .lifecycle import SandboxManager

log = logging.getLogger(__name__)

RETRY_DELAY = 5.0
TRIM_EVERY = 10.0     # seconds between checks for ready sandboxes beyond a shrunken target
# Claims go first: a claimer's first requests follow its create at once, and starting a sandbox
# holds the event loop for ~20 ms (cgroup and mount setup) and then takes its share of the CPU
# (measured: 100 creates from a pool of 100 got their first results in 1.1 s with refills held
# back, 1.8 s without, 1.4-1.5 s with these values). So a refill waits until no claim came for
# REFILL_QUIET s, but at most REFILL_MAX_WAIT s, so that a steady stream of creates still gets
# its pool refilled.
REFILL_QUIET = 0.5
REFILL_MAX_WAIT = 1.0
PRELOAD_ENV = "NULLSPACE_PRELOAD"  # tells the agent which modules to import before it is ready


@dataclass
class WarmSandbox:
    sid: str
    uid: int
    digest: str
    disk_mb: int
    memory_bytes: int
    running: RunningSandbox
    agent: AgentClient


class BusyCores:
    """Cores the claimed (running) sandboxes used since the last look, from their cgroups."""

    def __init__(self, manager: SandboxManager) -> None:
        self.manager = manager
        self._last: tuple[float, int] | None = None

    def sample(self, now: float) -> float:
        used = 0
        for live in list(self.manager.live.values()):
            try:
                used += live.running.cgroup.cpu_usage_usec()
            except OSError:
                pass  # ended meanwhile
        last, self._last = self._last, (now, used)
        if last is None or now <= last[0]:
            return 0.0
        return max(used - last[1], 0) / 1e6 / (now - last[0])


class WarmPool:
    def __init__(self, manager: SandboxManager, bounds: dict[str, PoolBounds]) -> None:
        self.manager = manager
        self.bounds = {name: b for name, b in bounds.items() if b.max > 0}
        self.demand = {name: Demand() for name in self.bounds}
        self.ready: dict[str, collections.deque[WarmSandbox]] = collections.defaultdict(collections.deque)
        self.starting: collections.Counter[str] = collections.Counter()
        self.claimed: collections.Counter[str] = collections.Counter()
        self.missed: collections.Counter[str] = collections.Counter()
        self._fillers: dict[str, asyncio.Task[None]] = {}
        self._trimmer: asyncio.Task[None] | None = None
        self._busy = BusyCores(manager)
        self._cores = float(os.cpu_count() or 1)
        self._closing = False
        self._claimed_at = float("-inf")  # loop time of the last claim

    def start(self) -> None:
        for template in self.bounds:
            self._kick(template)
        if any(b.min < b.max for b in self.bounds.values()):
            self._trimmer = asyncio.create_task(self._trim(), name="pool-trim")

    def target(self, template: str) -> int:
        bounds = self.bounds.get(template)
        if bounds is None:
            return 0
        demand = self.demand[template]
        return target(bounds, demand.rate(asyncio.get_running_loop().time()), demand.boot_seconds)

    def status(self) -> dict[str, dict[str, int | float]]:
        now = asyncio.get_running_loop().time()
        return {
            t: {
                "target": self.target(t), "min": b.min, "max": b.max,
                "ready": len(self.ready[t]), "starting": self.starting[t],
                "claimed": self.claimed[t], "missed": self.missed[t],
                "claims_per_minute": round(self.demand[t].rate(now) * 60, 1),
                "warm_start_seconds": round(self.demand[t].boot_seconds, 3),
            }
            for t, b in self.bounds.items()
        }

    def claim(self, template: str, digest: str) -> WarmSandbox | None:
        queue = self.ready.get(template)
        found = None
        while queue and found is None:
            warm = queue.popleft()
            if warm.digest == digest and not warm.running.exited.done():
                found = warm
            else:
                asyncio.ensure_future(self.manager.discard(warm.running, warm.agent, warm.uid))
        now = asyncio.get_running_loop().time()
        if found:
            self._claimed_at = now
            bind_sandbox(found.sid)
        self.manager.metrics.pool_claimed(template, hit=found is not None, pooled=template in self.bounds)
        if template in self.bounds:
            self.demand[template].record(now)
            if found:
                self.claimed[template] += 1
            else:
                self.missed[template] += 1
            self._kick(template)
        return found

    def give_back(self, template: str, warm: WarmSandbox) -> None:
        """Undo a `claim` whose caller could not use the sandbox (it stays ready for others)."""
        self.ready[template].appendleft(warm)
        if self.claimed[template] > 0:
            self.claimed[template] -= 1

    def _kick(self, template: str) -> None:
        task = self._fillers.get(template)
        if not self._closing and (task is None or task.done()):
            self._fillers[template] = asyncio.create_task(self._fill(template), name=f"pool-{template}")

    async def _fill(self, template: str) -> None:
        while not self._closing:
            deficit = self.target(template) - len(self.ready[template]) - self.starting[template]
            if deficit <= 0:
                return
            if self.ready[template]:  # an empty pool refills at once; otherwise claims go first
                await self._after_claims()
            loop = asyncio.get_running_loop()
            plan = refill_plan(self._cores, self._busy.sample(loop.time()))
            batch = min(plan.parallel, deficit, self.manager.settings.max_sandboxes - len(self.manager.uids))
            if self._closing or batch <= 0:
                return
            results = await asyncio.gather(*(self._warm_one(template, plan.cpu) for _ in range(batch)))
            if not any(results):
                await asyncio.sleep(RETRY_DELAY)

    async def _warm_one(self, template: str, cpu: float) -> bool:
        """Start one pooled sandbox with a `cpu` quota; False if it failed (logged)."""
        from .lifecycle import new_sandbox_id

        manager, defaults = self.manager, self.manager.settings.defaults
        uid = manager._allocate_uid()
        self.starting[template] += 1
        started = asyncio.get_running_loop().time()
        try:
            image = await manager.templates.resolve(template)
            limits = Limits(memory_bytes=defaults.memory_mb * MiB, cpu=cpu, pids=defaults.pids)
            sid = new_sandbox_id()
            warm_env = {PRELOAD_ENV: ",".join(image.spec.preload)} if image.spec.preload else {}
            running, agent = await manager.boot(image, sid, uid, limits, defaults.disk_mb, warm_env)
        except asyncio.CancelledError:
            manager.uids.discard(uid)
            raise
        except Exception:
            manager.uids.discard(uid)
            log.exception("pool %s: could not start a sandbox; retrying in %.0f s", template, RETRY_DELAY)
            return False
        finally:
            self.starting[template] -= 1
        if self._closing:
            await manager.discard(running, agent, uid)
            return True
        self.demand[template].observe_boot(asyncio.get_running_loop().time() - started)
        self.ready[template].append(WarmSandbox(sid, uid, image.digest, defaults.disk_mb, limits.memory_bytes, running, agent))
        return True

    async def _trim(self) -> None:
        """Let a pool that grew for a burst shrink back once demand falls (oldest first)."""
        while not self._closing:
            await asyncio.sleep(TRIM_EVERY)
            for template in self.bounds:
                queue = self.ready[template]
                while len(queue) > self.target(template):
                    warm = queue.popleft()
                    await self.manager.discard(warm.running, warm.agent, warm.uid)

    async def _after_claims(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + REFILL_MAX_WAIT
        while (wait := min(self._claimed_at + REFILL_QUIET, give_up) - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._fillers.values(), *([self._trimmer] if self._trimmer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        warm = [w for queue in self.ready.values() for w in queue]
        self.ready.clear()
        await asyncio.gather(
            *(self.manager.discard(w.running, w.agent, w.uid) for w in warm), return_exceptions=True
        )
