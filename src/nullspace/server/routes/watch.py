"""Live views for the console (and anyone else): server-sent event streams and usage.

* `GET /v1/watch/sandboxes` (SSE): the caller's sandboxes with their CPU and memory use, sent
  again whenever something changes (at most once a second). Filters as `GET /v1/sandboxes`.
* `GET /v1/sandboxes/{id}/events` (SSE): every run in the sandbox as it happens, whoever runs it
  (`run_start`, then the run's NDJSON events tagged with `run`), usage samples (`stats`), and
  `sandbox_end` last.
* `GET /v1/sandboxes/{id}/stats`: usage against limits now, and the samples of the last minutes.
* `GET /v1/server/errors`: the server's recent warnings and errors (admins), or the caller's
  sandboxes that died (tenants).

Every stream is scoped like the rest of the API: a sandbox the caller may not see is a 404.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..._exceptions import InvalidArgumentError, SandboxNotFoundError
from ..deps import Caller, Manager
from ..lifecycle import LiveSandbox, SandboxManager
from ..models import ErrorBody, SandboxInfo
from ..monitor import usage
from ..store import RUNNING
from ..tenants import Principal

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404)}
router = APIRouter(prefix="/v1", tags=["watch"], responses=ERRORS)
LIST_LIMIT = 500
KEEPALIVE_S = 15.0
SSE = {200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}}


def _sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _usage(manager: SandboxManager, sandbox_id: str, cpu_limit: float) -> dict[str, Any] | None:
    monitor = manager.monitor
    stats = monitor.stats.get(sandbox_id)
    return None if stats is None else usage(cpu_limit, stats, monitor.latest(sandbox_id))


async def _watchable(manager: SandboxManager, sandbox_id: str, caller: Principal) -> LiveSandbox:
    """The caller's running or paused sandbox, looked at without resuming it."""
    record = await manager.get(sandbox_id, caller)
    live = manager.live.get(sandbox_id)
    if live is None or live.stopping:
        raise SandboxNotFoundError(f"sandbox {sandbox_id} is not running: {record.end_reason or record.state}")
    return live


def _filters(request: Request) -> tuple[dict[str, str], str | None]:
    metadata, state = {}, None
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata."):
            metadata[key.removeprefix("metadata.")] = value
        elif key == "state":
            state = value or None
        else:
            raise InvalidArgumentError(f"unknown query parameter {key!r}; use metadata.KEY=VALUE or state")
    return metadata, state


@router.get("/watch/sandboxes", response_class=StreamingResponse, responses=SSE)
async def watch_sandboxes(request: Request, manager: Manager, caller: Caller) -> StreamingResponse:
    """SSE `sandboxes` events: the full filtered list (newest first, at most 500), each with
    `usage` (running ones); sent when it changes, checked once a second; `: keepalive` comments."""
    metadata, state = _filters(request)
    await manager.list(metadata, state, caller)  # errors (bad filters) as a 4xx before the stream starts
    monitor = manager.monitor

    async def body() -> AsyncIterator[bytes]:
        async with monitor.watching():
            try:  # the first list with fresh usage
                await asyncio.wait_for(monitor.next_tick(), 2 * monitor.interval)
            except TimeoutError:
                pass
            last, quiet = "", 0.0
            while True:
                records = (await manager.list(metadata, state, caller))[-LIST_LIMIT:]
                items = []
                for rec in reversed(records):
                    item = SandboxInfo.of(rec).model_dump(mode="json")
                    item["usage"] = _usage(manager, rec.id, rec.cpu) if rec.state == RUNNING else None
                    items.append(item)
                payload = json.dumps(items, separators=(",", ":"))
                if payload != last:
                    yield f"event: sandboxes\ndata: {payload}\n\n".encode()
                    last, quiet = payload, 0.0
                elif quiet >= KEEPALIVE_S:
                    yield b": keepalive\n\n"
                    quiet = 0.0
                try:
                    await asyncio.wait_for(monitor.next_tick(), 2 * monitor.interval)
                except TimeoutError:
                    pass
                quiet += monitor.interval

    return _stream(body())


@router.get("/sandboxes/{sandbox_id}/stats")
async def sandbox_stats(sandbox_id: str, manager: Manager, caller: Caller) -> dict[str, Any]:
    """Usage against limits now; `history`: `[time, cpu cores, memory bytes, pids]` samples,
    one a second while a console watches (empty otherwise)."""
    live = await _watchable(manager, sandbox_id, caller)
    monitor = manager.monitor
    stats = await asyncio.to_thread(live.running.cgroup.stats)
    return {
        **usage(live.record.cpu, stats, monitor.latest(sandbox_id)),
        "history": [s.as_list() for s in monitor.history.get(sandbox_id, ())],
    }


@router.get("/sandboxes/{sandbox_id}/events", response_class=StreamingResponse, responses=SSE)
async def sandbox_events(sandbox_id: str, manager: Manager, caller: Caller) -> StreamingResponse:
    """SSE: `sandbox` (SandboxInfo + `history`) first; then `run_start`, the runs' events
    (`stdout`, `result`, `error`, `end_of_execution`, ... each with its `run` id), `stats`
    once a second, `dropped` when this watcher fell behind and lost its oldest events, and
    `sandbox_end` last."""
    live = await _watchable(manager, sandbox_id, caller)
    monitor = manager.monitor
    info = SandboxInfo.of(live.record).model_dump(mode="json")
    info["history"] = [s.as_list() for s in monitor.history.get(sandbox_id, ())]

    async def body() -> AsyncIterator[bytes]:
        watcher = manager.bus.subscribe(sandbox_id)  # before the first event: no run is missed
        pending: asyncio.Future[list[dict[str, Any]]] = asyncio.ensure_future(watcher.get())
        tick: asyncio.Future[None] | None = None
        try:
            yield _sse("sandbox", info)
            async with manager.monitor.watching():
                while True:
                    tick = asyncio.ensure_future(asyncio.wait_for(manager.monitor.next_tick(), KEEPALIVE_S))
                    await asyncio.wait({pending, tick}, return_when=asyncio.FIRST_COMPLETED)
                    if pending.done():
                        batch = pending.result()  # one write for all that queued up
                        yield b"".join(_sse(str(event.get("type", "event")), event) for event in batch)
                        if any(event.get("type") == "sandbox_end" for event in batch):
                            return
                        pending = asyncio.ensure_future(watcher.get())
                    if not tick.done():
                        tick.cancel()
                    elif tick.exception() is not None:
                        yield b": keepalive\n\n"
                    else:
                        sample, stats = manager.monitor.latest(sandbox_id), manager.monitor.stats.get(sandbox_id)
                        if sample is not None and stats is not None:
                            yield _sse("stats", {**usage(live.record.cpu, stats, sample), "sample": sample.as_list()})
                        if sandbox_id not in manager.live:  # ended without us seeing it (e.g. before we subscribed)
                            record = await manager.store.get_sandbox(sandbox_id)
                            yield _sse("sandbox_end", {
                                "type": "sandbox_end", "state": record.state if record else "dead",
                                "reason": record.end_reason if record else "ended",
                            })  # fmt: skip
                            return
        finally:
            for future in (pending, tick):
                if future is not None:
                    future.cancel()
            manager.bus.unsubscribe(sandbox_id, watcher)

    return _stream(body())


@router.get("/server/errors")
async def server_errors(request: Request, manager: Manager, caller: Caller) -> dict[str, Any]:
    """Admins: the server's last warnings and errors and the sandboxes that died (`scope:
    "server"`). A tenant: its own sandboxes that died (`scope: "tenant"`); the server's log is
    not theirs to read."""
    dead = (await manager.list({}, "dead", caller))[-50:]
    errors = [
        {"at": r.ended_at, "level": "ERROR", "logger": "sandbox", "message": f"{r.id}: {r.end_reason}"}
        for r in reversed(dead)
    ]
    if not caller.is_admin:
        return {"scope": "tenant", "errors": errors}
    handler = getattr(request.app.state, "recent_errors", None)
    if handler is not None:
        errors = sorted([*handler.recent(), *errors], key=lambda e: e["at"] or 0, reverse=True)
    return {"scope": "server", "errors": errors[:100]}
