"""SandboxManager: create, find, time out and kill sandboxes; proxy runs to their agents."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from .._exceptions import (
    CapacityError,
    InvalidArgumentError,
    QuotaExceededError,
    SandboxNotFoundError,
    SandboxPausedError,
)
from ..egress import api as egress_api
from ..egress.service import EgressService
from ..runtime import agent_watch, mounts
from ..runtime.cgroups import LimitEvents, Limits
from ..runtime.local import LocalRuntime, RunningSandbox, SandboxRequest
from ..templates import TemplateImage
from .agent_client import AgentClient, AgentError
from .bus import RunBus
from .logs import bind_sandbox
from .metrics import Metrics, observe_create, observe_run
from .models import CreateSandbox
from .monitor import Monitor
from .pool import WarmPool
from .settings import MiB, Settings
from .store import PAUSED, RUNNING, SandboxRecord, Store
from .template_resolver import TemplateResolver
from .tenants import ADMIN, Principal, Quotas

log = logging.getLogger(__name__)

UID_COUNT = 65_536
TEARDOWN_RETRY = 30.0    # seconds between retries of a teardown that left something behind
RECORD_RETRY = 2.0       # seconds between retries of writing the end of a sandbox
POOL_MEMORY_MARGIN = 32 * MiB  # a pooled sandbox is claimed only if its usage fits under the limit by this


MEMORY_ENV = "NULLSPACE_MEMORY_MB"  # tells the agent the memory limit (no /sys inside)
MAX_CONTEXTS_ENV = "NULLSPACE_MAX_CONTEXTS"  # the agent refuses contexts beyond it (409)


def new_sandbox_id() -> str:
    return "sb_" + secrets.token_hex(8)


@dataclass(frozen=True)
class Paused:
    """A frozen sandbox: when, how much lifetime it had left, and the memory it gave back."""

    at: float
    remaining: float
    memory_before: int
    memory_after: int


@dataclass
class LiveSandbox:
    record: SandboxRecord
    running: RunningSandbox
    agent: AgentClient
    timer: asyncio.TimerHandle | None = None
    stopping: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)
    paused: Paused | None = None
    auto_resume: bool = False
    pausing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


class SandboxManager:
    def __init__(
        self, settings: Settings, store: Store, runtime: LocalRuntime, templates: TemplateResolver,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.store = store
        self.runtime = runtime
        self.templates = templates
        self.live: dict[str, LiveSandbox] = {}
        self.uids: set[int] = set()  # host uids of every sandbox we run or are starting
        self.pool: WarmPool | None = None
        self.egress: EgressService | None = None  # set by the app (nullspace.egress)
        self._tokens = itertools.count()
        self.creating: dict[int, tuple[str | None, float, int]] = {}  # token → (tenant, cpu, memory_mb)
        self.bus = RunBus()  # every run, for watchers (the console); never slows a run
        self.monitor = Monitor(self)  # CPU/memory over time, sampled while someone watches
        self.unrecorded: dict[str, SandboxRecord] = {}  # ended sandboxes whose end is not yet stored
        self._recorder: asyncio.Task[None] | None = None
        self._leftovers: dict[str, asyncio.Task[None]] = {}  # teardowns being retried

    # -- lifecycle of the manager ---------------------------------------------------------
    async def startup(self) -> None:
        """Sandboxes of an earlier server are gone (bwrap dies with its parent): mark and clean."""
        dead = await self.store.mark_all_running_dead("the server restarted")
        removed = await asyncio.to_thread(self.runtime.cleanup_leftovers)
        if dead or removed:
            log.info("recovery: %d sandboxes marked dead, %d leftovers removed", len(dead), len(removed))
        self.pool = WarmPool(self, self.settings.pool_sizes)
        self.pool.start()

    async def shutdown(self) -> None:
        await self.monitor.close()
        if self.pool:
            await self.pool.close()
        await asyncio.gather(
            *(self.kill(sid, "dead", "the server stopped", caller=ADMIN) for sid in list(self.live)),
            return_exceptions=True,
        )
        # what is still unrecorded or not torn down is marked dead and removed at the next start
        for task in [*self._leftovers.values(), *([self._recorder] if self._recorder else [])]:
            task.cancel()

    # -- create / find / kill -------------------------------------------------------------
    @observe_create
    async def create(self, req: CreateSandbox, caller: Principal) -> SandboxRecord:
        """Start a sandbox owned by `caller`'s tenant; every step completes or is undone."""
        s, d = self.settings, self.settings.defaults
        timeout = req.timeout or d.timeout
        if timeout > s.max_timeout:
            raise InvalidArgumentError(f"timeout {timeout} s is over the maximum of {s.max_timeout} s")
        memory_mb = req.memory_mb or d.memory_mb
        if memory_mb > s.max_memory_mb:
            raise InvalidArgumentError(f"memory_mb {memory_mb} is over the maximum of {s.max_memory_mb}")
        cpu = req.cpu or d.cpu
        if cpu > s.max_cpu:
            raise InvalidArgumentError(f"cpu {cpu} is over the {s.max_cpu:g} cores of this host")
        if cpu < s.min_cpu:
            raise InvalidArgumentError(f"cpu {cpu:g} is below the minimum of {s.min_cpu:g} cores a sandbox can run on")
        disk_mb = req.disk_mb or d.disk_mb
        if disk_mb > s.max_disk_mb:
            raise InvalidArgumentError(f"disk_mb {disk_mb} is over the maximum of {s.max_disk_mb}")
        if len(self.uids) >= s.max_sandboxes:
            raise CapacityError(f"this server runs at most {s.max_sandboxes} sandboxes")
        quotas = Quotas() if caller.is_admin else await self.store.tenant_quotas(caller.tenant_id or "")
        self._check_quotas(caller, quotas, cpu, memory_mb, timeout)
        token = next(self._tokens)
        self.creating[token] = (caller.tenant_id, cpu, memory_mb)  # counts against quotas from now on
        try:
            return await self._create(req, caller, timeout, memory_mb, cpu)
        finally:
            del self.creating[token]

    def _check_quotas(self, caller: Principal, quotas: Quotas, cpu: float, memory_mb: int, timeout: int) -> None:
        """Refuse (429, naming the quota) what would take the tenant over its operator's limits."""
        if caller.is_admin or quotas == Quotas():
            return
        tenant = caller.tenant_id
        if quotas.max_lifetime is not None and timeout > quotas.max_lifetime:
            raise QuotaExceededError(f"quota max_lifetime: tenant {tenant!r} may keep a sandbox at most "
                                     f"{quotas.max_lifetime} s; asked for {timeout} s")
        used = [(c, m) for t, c, m in self._usage() if t == tenant]
        if quotas.max_sandboxes is not None and len(used) + 1 > quotas.max_sandboxes:
            raise QuotaExceededError(f"quota max_sandboxes: tenant {tenant!r} may run at most "
                                     f"{quotas.max_sandboxes} sandboxes at once; it runs {len(used)}")
        used_cpu = sum(c for c, _ in used)
        if quotas.max_cpu is not None and used_cpu + cpu > quotas.max_cpu + 1e-9:
            raise QuotaExceededError(f"quota max_cpu: tenant {tenant!r} may use at most {quotas.max_cpu:g} CPU "
                                     f"cores in total; its sandboxes use {used_cpu:g} and this one asks for {cpu:g}")
        used_mb = sum(m for _, m in used)
        if quotas.max_memory_mb is not None and used_mb + memory_mb > quotas.max_memory_mb:
            raise QuotaExceededError(f"quota max_memory_mb: tenant {tenant!r} may use at most "
                                     f"{quotas.max_memory_mb} MiB of memory in total; its sandboxes use "
                                     f"{used_mb} MiB and this one asks for {memory_mb} MiB")

    def _usage(self) -> list[tuple[str | None, float, int]]:
        """(tenant, cpu, memory_mb) of every sandbox running or being created."""
        running = [(lv.record.tenant_id, lv.record.cpu, lv.record.memory_mb) for lv in self.live.values() if not lv.stopping]
        return running + list(self.creating.values())

    async def _create(self, req: CreateSandbox, caller: Principal, timeout: int, memory_mb: int, cpu: float) -> SandboxRecord:
        s, d = self.settings, self.settings.defaults
        image = await self.templates.resolve(req.template)
        limits = Limits(memory_bytes=memory_mb * MiB, cpu=cpu, pids=d.pids)
        disk_mb = req.disk_mb or d.disk_mb
        network, secrets = egress_api.parse_create(self.egress, req)
        envs = {**(req.envs or {}), **egress_api.placeholder_envs(secrets)}
        booted = await self._claim_warm(req.template, image.digest, limits, disk_mb, envs)
        if booted is None:
            sid = new_sandbox_id()
            uid = self._allocate_uid()
            running, agent = await self.boot(image, sid, uid, limits, disk_mb, envs, boot_cpu=s.max_cpu)
        else:
            sid, uid, running, agent = booted
        if self.egress is not None and network.mode != "none":
            try:
                await egress_api.apply(self.egress, sid, agent, network, secrets)
            except BaseException:
                await self.discard(running, agent, uid)
                raise
        now = time.time()
        record = SandboxRecord(
            id=sid, template=req.template, digest=image.digest, state=RUNNING,
            created_at=now, end_at=now + timeout, metadata=req.metadata or {},
            env_keys=sorted(envs), cpu=cpu, memory_mb=memory_mb, disk_mb=disk_mb, host_uid=uid,
            tenant_id=caller.tenant_id,
        )
        try:
            await self.store.insert_sandbox(record)
        except BaseException:
            await self.discard(running, agent, uid)  # nobody could find or kill it otherwise
            raise
        live = LiveSandbox(record, running, agent, auto_resume=req.auto_resume)
        self.live[sid] = live
        self._schedule_end(live, record.end_at)
        live.watcher = asyncio.create_task(self._watch(live))
        return record

    async def boot(
        self,
        image: TemplateImage,
        sid: str,
        uid: int,
        limits: Limits,
        disk_mb: int,
        envs: dict[str, str],
        *,
        boot_cpu: float | None = None,
    ) -> tuple[RunningSandbox, AgentClient]:
        """Start a sandbox and wait until its agent's default kernel answers; the uid is taken.

        `boot_cpu`: the CPU quota while it starts, if more than `limits.cpu`. The agent and the
        kernel start side by side (~200 ms of CPU each, measured): under a 1-core quota they
        queue behind each other. No user code has run before `limits` apply.
        """
        bind_sandbox(sid)  # log lines from here on (and of tasks started here) name it
        start_limits = limits if boot_cpu is None or boot_cpu <= limits.cpu else replace(limits, cpu=boot_cpu)
        request = SandboxRequest(
            sandbox_id=sid, rootfs=image.rootfs, layers=image.layers, host_uid=uid, limits=start_limits,
            disk_bytes=disk_mb * MiB, workdir=image.spec.workdir,
            env={**image.spec.env, MEMORY_ENV: str(limits.memory_bytes // MiB),
                 MAX_CONTEXTS_ENV: str(self.settings.max_contexts), **envs},
        )
        try:
            running = await self.runtime.start(request)
        except BaseException:
            self.uids.discard(uid)
            raise
        agent = AgentClient(running.agent_socket, agent_watch.checker(running.process.pid, running.cgroup.pids))
        try:
            if self.egress is not None and running.egress is not None:
                await self.egress.attach(sid, running.egress)
            await agent.wait_ready(self.settings.agent_ready_timeout, running.exited)
            if start_limits is not limits:
                running.cgroup.set_limits(limits)  # ~0.1 ms of cgroupfs writes
        except BaseException as exc:
            tail = running.output_tail()[-2000:]
            await self.discard(running, agent, uid)
            if isinstance(exc, AgentError):
                raise AgentError(f"{exc}; agent output: {tail}") from None
            raise
        return running, agent

    async def discard(self, running: RunningSandbox, agent: AgentClient, uid: int) -> None:
        """Tear down a sandbox's processes, cgroup, mounts and files; never raises.

        Each step runs whatever the one before did, and the runtime retries. The host uid is
        freed only once nothing of the sandbox is left: after a teardown that failed, the uid
        stays taken and the teardown is retried in the background until it succeeds.
        """
        for step in (self._detach_egress(running), agent.aclose()):
            try:
                await step
            except Exception:  # noqa: BLE001 - the kill below matters more
                log.warning("sandbox %s: a teardown step failed", running.sandbox_id, exc_info=True)
        try:
            await self.runtime.stop(running)
        except Exception as exc:  # noqa: BLE001
            log.error("%s; its uid %d stays taken, retrying every %.0f s", exc, uid, TEARDOWN_RETRY)
            self._leftovers[running.sandbox_id] = asyncio.create_task(self._retry_teardown(running, uid))
            return
        self.uids.discard(uid)

    async def _detach_egress(self, running: RunningSandbox) -> None:
        if self.egress is not None:
            await self.egress.detach(running.sandbox_id)

    async def _retry_teardown(self, running: RunningSandbox, uid: int) -> None:
        try:
            while True:
                await asyncio.sleep(TEARDOWN_RETRY)
                try:
                    await self.runtime.stop(running)
                except Exception as exc:  # noqa: BLE001
                    log.warning("%s; retrying", exc)
                    continue
                self.uids.discard(uid)
                log.info("sandbox %s: torn down at last; uid %d is free", running.sandbox_id, uid)
                return
        finally:
            self._leftovers.pop(running.sandbox_id, None)

    async def _claim_warm(
        self, template: str, digest: str, limits: Limits, disk_mb: int, envs: dict[str, str]
    ) -> tuple[str, int, RunningSandbox, AgentClient] | None:
        """Take a pre-warmed sandbox and give it the caller's limits and envs, or None."""
        warm = self.pool.claim(template, digest) if self.pool else None
        if warm is None:
            return None
        used = warm.running.cgroup.stats().memory_current
        if used + POOL_MEMORY_MARGIN > limits.memory_bytes:  # it would not fit: leave it to others
            assert self.pool is not None
            self.pool.give_back(template, warm)
            log.info("pooled sandboxes use %d MiB; a %d MiB sandbox starts cold",
                     used // MiB, limits.memory_bytes // MiB)
            return None
        try:
            warm.running.cgroup.set_limits(limits)  # ~0.1 ms of cgroupfs writes
            if disk_mb != warm.disk_mb:
                mounts.resize(warm.running.base, disk_mb * MiB)
            if limits.memory_bytes != warm.memory_bytes:  # the agent sizes kernel prestart by it
                envs = {**envs, MEMORY_ENV: str(limits.memory_bytes // MiB)}
            if envs:
                await warm.agent.request("POST", "/configure", json_body={"envs": envs})
        except Exception:
            log.exception("could not configure pooled sandbox %s; starting cold", warm.sid)
            await self.discard(warm.running, warm.agent, warm.uid)
            return None
        return warm.sid, warm.uid, warm.running, warm.agent

    def _allocate_uid(self) -> int:
        base = self.settings.uid_base
        for uid in range(base, base + UID_COUNT):
            if uid not in self.uids:
                self.uids.add(uid)
                return uid
        raise CapacityError("no free sandbox uid")

    async def get(self, sandbox_id: str, caller: Principal) -> SandboxRecord:
        """The record of a sandbox `caller` may see (also ended ones); another tenant's sandbox
        raises the same SandboxNotFoundError as an unknown id."""
        record = self.unrecorded.get(sandbox_id) or await self.store.get_sandbox(sandbox_id)
        if record is None or not caller.owns(record.tenant_id):
            raise SandboxNotFoundError(f"sandbox {sandbox_id} does not exist")
        return record

    async def require_live(self, sandbox_id: str, caller: Principal) -> LiveSandbox:
        """The running sandbox, for a call that needs it to run: a paused one is resumed when it
        was created with auto_resume, else the call is refused with SandboxPausedError."""
        live = self.live.get(sandbox_id)
        if live is not None and not live.stopping and caller.owns(live.record.tenant_id):
            if live.paused is not None:
                if not live.auto_resume:
                    raise SandboxPausedError(
                        f"sandbox {sandbox_id} is paused: resume it first (or create it with auto_resume)"
                    )
                await self.resume(sandbox_id, None, caller)
            return live
        record = await self.get(sandbox_id, caller)
        raise SandboxNotFoundError(f"sandbox {sandbox_id} is not running: {record.end_reason or record.state}")

    async def list(self, metadata: dict[str, str], state: str | None, caller: Principal) -> list[SandboxRecord]:
        records = [self.unrecorded.get(r.id, r) for r in await self.store.list_sandboxes(state, caller)]
        return [r for r in records if (state is None or r.state == state)
                and all(r.metadata.get(k) == v for k, v in metadata.items())]

    async def kill(self, sandbox_id: str, state: str = "killed", reason: str | None = None, *,
                   caller: Principal) -> None:
        live = self.live.get(sandbox_id)
        if live is None or live.stopping or not caller.owns(live.record.tenant_id):
            await self.require_live(sandbox_id, caller)  # raises the right 404
            return
        live.stopping = True
        if live.timer:
            live.timer.cancel()
        reason = reason or f"sandbox {sandbox_id} was killed"
        live.record.state, live.record.end_reason, live.record.ended_at = state, reason, time.time()
        try:  # a kill always kills: a record that cannot be written (a full disk) is retried
            await self.store.mark_ended(sandbox_id, state, reason)
        except Exception:  # noqa: BLE001
            log.warning("sandbox %s: could not record its end; retrying", sandbox_id, exc_info=True)
            self.unrecorded[sandbox_id] = live.record
            self._kick_recorder()
        self.metrics.sandbox_ended(sandbox_id, live.record.template, state, reason)
        self.bus.publish(sandbox_id, {"type": "sandbox_end", "state": state, "reason": reason})
        try:
            await self.discard(live.running, live.agent, live.record.host_uid)
        finally:
            self.live.pop(sandbox_id, None)
            if live.watcher and live.watcher is not asyncio.current_task():
                live.watcher.cancel()

    def _kick_recorder(self) -> None:
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_ends())

    async def _record_ends(self) -> None:
        """Write the ends of sandboxes whose records could not be written when they ended."""
        while self.unrecorded:
            await asyncio.sleep(RECORD_RETRY)
            for sandbox_id, record in list(self.unrecorded.items()):
                try:
                    await self.store.mark_ended(sandbox_id, record.state, record.end_reason or record.state)
                except Exception:  # noqa: BLE001
                    break  # still failing: wait and retry them all
                self.unrecorded.pop(sandbox_id, None)

    # -- pause / resume ---------------------------------------------------------------------
    def _alive(self, sandbox_id: str, caller: Principal) -> LiveSandbox | None:
        live = self.live.get(sandbox_id)
        return live if live is not None and not live.stopping and caller.owns(live.record.tenant_id) else None

    async def pause(self, sandbox_id: str, timeout: int | None, caller: Principal) -> tuple[SandboxRecord, Paused]:
        """Freeze every process of the sandbox and push its memory out to swap.

        Its lifetime stops; it is killed if not resumed within `timeout` seconds (at most the
        operator's `max_paused_timeout`). Pausing a paused sandbox changes nothing.
        """
        limit = self.settings.max_paused_timeout
        if timeout is not None and timeout > limit:
            raise InvalidArgumentError(f"paused timeout {timeout} s is over the maximum of {limit} s")
        live = self._alive(sandbox_id, caller)
        if live is None:
            await self.require_live(sandbox_id, caller)  # raises the right 404
            raise AssertionError("unreachable")
        async with live.pausing:
            if live.paused is not None:
                return live.record, live.paused
            cgroup = live.running.cgroup
            now = time.time()
            remaining = max(live.record.end_at - now, 1.0)
            before = cgroup.stats().memory_current
            try:
                if not await asyncio.to_thread(cgroup.freeze):
                    raise CapacityError(f"sandbox {sandbox_id} could not be frozen in time; it keeps running")
                await asyncio.to_thread(cgroup.release_memory, self.settings.paused_resident_bytes)
                paused = Paused(now, remaining, before, cgroup.stats().memory_current)
                end_at = now + (timeout or limit)
                await self.store.set_state(sandbox_id, PAUSED, end_at)
            except BaseException:
                await asyncio.to_thread(self._unfreeze, live)
                raise
            live.paused = paused
            live.record.state, live.record.end_at = PAUSED, end_at
            self._schedule_end(live, end_at)
            log.info("sandbox %s paused: %d -> %d bytes resident", sandbox_id, before, paused.memory_after)
            return live.record, paused

    async def resume(self, sandbox_id: str, timeout: int | None, caller: Principal) -> SandboxRecord:
        """Thaw a paused sandbox; it gets the lifetime it had left (or `timeout` seconds)."""
        if timeout is not None and timeout > self.settings.max_timeout:
            raise InvalidArgumentError(f"timeout {timeout} s is over the maximum of {self.settings.max_timeout} s")
        live = self._alive(sandbox_id, caller)
        if live is None:
            await self.require_live(sandbox_id, caller)  # raises the right 404
            raise AssertionError("unreachable")
        async with live.pausing:
            paused = live.paused
            if paused is None:
                return live.record
            end_at = time.time() + (timeout or paused.remaining)
            await self.store.set_state(sandbox_id, RUNNING, end_at)
            await asyncio.to_thread(self._unfreeze, live)
            live.paused = None
            live.record.state, live.record.end_at = RUNNING, end_at
            self._schedule_end(live, end_at)
            return live.record

    @staticmethod
    def _unfreeze(live: LiveSandbox) -> None:
        cgroup = live.running.cgroup
        cgroup.restore_memory(live.record.memory_mb * MiB)
        cgroup.thaw()

    async def set_timeout(self, sandbox_id: str, timeout: int, caller: Principal) -> SandboxRecord:
        if timeout > self.settings.max_timeout:
            raise InvalidArgumentError(f"timeout {timeout} s is over the maximum of {self.settings.max_timeout} s")
        live = await self.require_live(sandbox_id, caller)
        end_at = time.time() + timeout
        if not caller.is_admin:
            quotas = await self.store.tenant_quotas(caller.tenant_id or "")
            lifetime = end_at - live.record.created_at
            if quotas.max_lifetime is not None and lifetime > quotas.max_lifetime:
                raise QuotaExceededError(
                    f"quota max_lifetime: tenant {caller.tenant_id!r} may keep a sandbox at most "
                    f"{quotas.max_lifetime} s from its creation; this would make it {lifetime:.0f} s")
        await self.store.set_end_at(sandbox_id, end_at)
        live.record.end_at = end_at
        self._schedule_end(live, end_at)
        return live.record

    def _schedule_end(self, live: LiveSandbox, end_at: float) -> None:
        if live.timer:
            live.timer.cancel()
        loop = asyncio.get_running_loop()
        seconds = max(0.0, end_at - time.time())
        reason = f"sandbox {live.record.id} timed out (its lifetime ended at {time.strftime('%H:%M:%S', time.gmtime(end_at))} UTC)"
        live.timer = loop.call_later(
            seconds, lambda: asyncio.ensure_future(self._end_quietly(live.record.id, "timed_out", reason))
        )

    async def _end_quietly(self, sandbox_id: str, state: str, reason: str) -> None:
        try:
            await self.kill(sandbox_id, state, reason, caller=ADMIN)
        except SandboxNotFoundError:
            pass
        except Exception:
            log.exception("failed to end sandbox %s", sandbox_id)

    async def _watch(self, live: LiveSandbox) -> None:
        """A sandbox whose agent exits by itself is dead: record why and clean up."""
        code = await asyncio.shield(live.running.exited)
        if not live.stopping:
            await self._end_quietly(live.record.id, "dead", f"the sandbox's agent exited unexpectedly (code {code})")

    # -- code -----------------------------------------------------------------------------
    @observe_run
    async def execute(self, sandbox_id: str, body: dict[str, Any], caller: Principal) -> AsyncIterator[dict[str, Any]]:
        """Events of one run, with the trusted side's knowledge of limits added; each is also
        published on the sandbox's `bus` (the console shows runs others make)."""
        live = await self.require_live(sandbox_id, caller)
        run = self.bus.start_run(sandbox_id, body, caller.key_id)
        final: dict[str, Any] | None = {"type": "end_of_execution", "status": "abandoned"}
        try:
            async for event in self._run(live, sandbox_id, body):
                self.bus.event(sandbox_id, run, event)
                if event.get("type") == "end_of_execution":
                    final = None
                yield event
        except Exception as exc:
            self.bus.event(sandbox_id, run, {"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": ""})
            final = {"type": "end_of_execution", "status": "error"}
            raise
        finally:
            self.bus.end_run(sandbox_id, run, final)

    async def _run(self, live: LiveSandbox, sandbox_id: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        cgroup = live.running.cgroup
        before = cgroup.limit_events()  # two small cgroupfs reads: cheaper than a thread hop
        refusals = egress_api.refusal_mark(self.egress, sandbox_id)
        ended = False
        try:
            async for event in live.agent.execute(body):
                kind = event.get("type")
                if kind == "end_of_execution":
                    ended = True
                    for limit in await self._limits_hit(live, before):
                        yield limit
                    for refusal in egress_api.refusal_events(self.egress, sandbox_id, refusals):
                        yield refusal
                elif kind == "error" and event.get("name") == "KernelDied":
                    event = await self._explain_death(live, before, event)
                yield event
                if ended:
                    return
        except AgentError as exc:
            if not ended:
                yield await self._lost(live, sandbox_id, exc)
                yield {"type": "end_of_execution", "status": "error"}
            return
        if not ended:
            yield await self._lost(live, sandbox_id, AgentError("the run ended without an end event"))
            yield {"type": "end_of_execution", "status": "error"}

    async def _explain_death(self, live: LiveSandbox, before: LimitEvents, event: dict[str, Any]) -> dict[str, Any]:
        if live.running.cgroup.limit_events().oom_kills > before.oom_kills:
            return {
                **event,
                "name": "OutOfMemory",
                "value": (
                    f"the kernel was killed by the out-of-memory killer: the sandbox reached its "
                    f"memory limit of {live.record.memory_mb} MiB. Its state was lost; the context "
                    "has been restarted."
                ),
                "limit": {"resource": "memory", "limit_bytes": live.running.cgroup.stats().memory_limit},
            }
        return event

    async def _limits_hit(self, live: LiveSandbox, before: LimitEvents) -> list[dict[str, Any]]:
        events = live.running.cgroup.limit_events()
        if events == before:
            return []
        after = live.running.cgroup.stats()  # the limits, for the messages: only after a hit
        hits = []
        if after.pids_max_hits > before.pids_max_hits:
            hits.append({
                "type": "limit", "resource": "pids", "limit": after.pids_limit,
                "message": f"process limit reached: the sandbox may run at most {after.pids_limit} "
                           f"processes and threads; {after.pids_max_hits - before.pids_max_hits} forks were refused",
            })
        if after.oom_kills > before.oom_kills:
            hits.append({
                "type": "limit", "resource": "memory", "limit": after.memory_limit,
                "message": f"memory limit of {live.record.memory_mb} MiB reached: "
                           f"{after.oom_kills - before.oom_kills} process(es) were killed",
            })
        return hits

    async def _lost(self, live: LiveSandbox, sandbox_id: str, exc: Exception) -> dict[str, Any]:
        await asyncio.sleep(0.05)  # let a concurrent kill record why
        record = await self.store.get_sandbox(sandbox_id)
        if record and record.state != RUNNING:
            return {"type": "error", "name": "SandboxEnded", "value": record.end_reason or record.state, "traceback": ""}
        return {"type": "error", "name": getattr(exc, "event_name", "AgentError"), "value": str(exc), "traceback": ""}

    async def agent_request(self, sandbox_id: str, method: str, path: str, body: Any, caller: Principal) -> Any:
        live = await self.require_live(sandbox_id, caller)
        async with self.agent_errors(live):
            return await live.agent.request(method, path, json_body=body)

    @contextlib.asynccontextmanager
    async def agent_errors(self, live: LiveSandbox) -> AsyncIterator[None]:
        """An agent that went away because its sandbox ended (killed, timed out, died) during a
        request gives the same 404 SandboxNotFoundError a request after the end gets."""
        try:
            yield
        except AgentError:
            if not (live.stopping or live.running.exited.done()):
                await asyncio.sleep(0.05)  # a kill or the agent's exit may be on its way
            if not (live.stopping or live.running.exited.done()):
                raise
            record = await self.store.get_sandbox(live.record.id)
            reason = record.end_reason if record and record.state != RUNNING and record.end_reason else "it ended"
            raise SandboxNotFoundError(f"sandbox {live.record.id} is not running: {reason}") from None
