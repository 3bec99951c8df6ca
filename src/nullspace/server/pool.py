"""Warm pools: per template, sandboxes fully started (isolation, agent, Python kernel) ahead of need.

`create` claims one (`SandboxManager._claim_warm` then applies the caller's limits, disk size
and envs) and a background filler starts its replacement once the claims quiet down. Fillers
start one sandbox at a time per template, with a low CPU quota while warming, so refills never
starve running sandboxes.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..runtime.cgroups import Limits
from ..runtime.local import RunningSandbox
from .agent_client import AgentClient
from .logs import bind_sandbox
from .settings import MiB

if TYPE_CHECKING:
    from .lifecycle import SandboxManager

log = logging.getLogger(__name__)

WARMING_CPU = 0.5     # cores a sandbox may use while it warms up in the pool
RETRY_DELAY = 5.0
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


class WarmPool:
    def __init__(self, manager: SandboxManager, sizes: dict[str, int]) -> None:
        self.manager = manager
        self.sizes = {name: size for name, size in sizes.items() if size > 0}
        self.ready: dict[str, collections.deque[WarmSandbox]] = collections.defaultdict(collections.deque)
        self.starting: collections.Counter[str] = collections.Counter()
        self.claimed: collections.Counter[str] = collections.Counter()
        self._fillers: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._claimed_at = float("-inf")  # loop time of the last claim

    def start(self) -> None:
        for template in self.sizes:
            self._kick(template)

    def status(self) -> dict[str, dict[str, int]]:
        return {
            t: {"target": size, "ready": len(self.ready[t]), "starting": self.starting[t], "claimed": self.claimed[t]}
            for t, size in self.sizes.items()
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
        if found:
            self._claimed_at = asyncio.get_running_loop().time()
            bind_sandbox(found.sid)
        self.manager.metrics.pool_claimed(template, hit=found is not None, pooled=template in self.sizes)
        if template in self.sizes:
            if found:
                self.claimed[template] += 1
            self._kick(template)
        return found

    def _kick(self, template: str) -> None:
        task = self._fillers.get(template)
        if not self._closing and (task is None or task.done()):
            self._fillers[template] = asyncio.create_task(self._fill(template), name=f"pool-{template}")

    async def _fill(self, template: str) -> None:
        from .lifecycle import new_sandbox_id

        manager, defaults = self.manager, self.manager.settings.defaults
        while not self._closing and len(self.ready[template]) < self.sizes[template]:
            await self._after_claims()
            if self._closing or len(manager.uids) >= manager.settings.max_sandboxes:
                return
            uid = manager._allocate_uid()
            self.starting[template] += 1
            try:
                image = await manager.templates.resolve(template)
                limits = Limits(memory_bytes=defaults.memory_mb * MiB, cpu=WARMING_CPU, pids=defaults.pids)
                sid = new_sandbox_id()
                warm_env = {PRELOAD_ENV: ",".join(image.spec.preload)} if image.spec.preload else {}
                running, agent = await manager.boot(image, sid, uid, limits, defaults.disk_mb, warm_env)
            except asyncio.CancelledError:
                manager.uids.discard(uid)
                raise
            except Exception:
                manager.uids.discard(uid)
                log.exception("pool %s: could not start a sandbox; retrying in %.0f s", template, RETRY_DELAY)
                await asyncio.sleep(RETRY_DELAY)
                continue
            finally:
                self.starting[template] -= 1
            if self._closing:
                await manager.discard(running, agent, uid)
                return
            self.ready[template].append(WarmSandbox(sid, uid, image.digest, defaults.disk_mb, limits.memory_bytes, running, agent))

    async def _after_claims(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + REFILL_MAX_WAIT
        while (wait := min(self._claimed_at + REFILL_QUIET, give_up) - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def close(self) -> None:
        self._closing = True
        for task in self._fillers.values():
            task.cancel()
        await asyncio.gather(*self._fillers.values(), return_exceptions=True)
        warm = [w for queue in self.ready.values() for w in queue]
        self.ready.clear()
        await asyncio.gather(
            *(self.manager.discard(w.running, w.agent, w.uid) for w in warm), return_exceptions=True
        )
