"""E2B's control plane (§2 of the protocol notes) over the SandboxManager.

The door (door.py) has checked the API key and put the caller in ``scope["state"]``. Bodies are
parsed here, not by FastAPI, so that every error, a malformed body included, has E2B's shape
``{"code": <status>, "message", "error_code"}``; success statuses are E2B's exactly (the SDK
checks them: a create answered 200 instead of 201 is an error for it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import os
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..._exceptions import APIError, ConflictError, InvalidArgumentError, NotFoundError, SandboxNotFoundError
from ...runtime.mounts import SandboxFilesystem
from ..lifecycle import LiveSandbox, SandboxManager
from ..models import CreateSandbox
from ..settings import MiB
from ..store import ALIVE, SandboxRecord
from ..tenants import Principal
from . import envd, tokens, wire

log = logging.getLogger(__name__)

CLIENT_ID = "nullspace"
DEFAULT_TEMPLATE = "code-interpreter"
TEMPLATE_ALIASES = {"code-interpreter-v1": DEFAULT_TEMPLATE, "base": DEFAULT_TEMPLATE}
"""E2B's default template names (code-interpreter SDK, base SDK) → ours."""
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


class NotSupportedError(APIError):
    status_code = 400
    default_code = "not_supported"


# -- helpers ----------------------------------------------------------------------------------------


def _manager(request: Request) -> SandboxManager:
    return request.state.manager


def _caller(request: Request) -> Principal:
    return request.state.principal


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _template(name: Any) -> str:
    if name is None:
        return DEFAULT_TEMPLATE
    if not isinstance(name, str):
        raise InvalidArgumentError("templateID must be a string")
    return TEMPLATE_ALIASES.get(name, name)


def _int(body: dict[str, Any], key: str, *, minimum: int = 0) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise InvalidArgumentError(f"{key} must be a whole number of seconds")
    if value < minimum:
        raise InvalidArgumentError(f"{key} must be at least {minimum}")
    return int(value)


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgumentError(f"{key} must map strings to strings")
    return value


def _refuse_unsupported(body: dict[str, Any]) -> None:
    """Options of E2B's create this server cannot honour: a clear 400 rather than ignoring them."""
    if body.get("autoPause") is True:
        raise NotSupportedError("autoPause: this server kills sandboxes at their timeout; pause them "
                                "explicitly (pause()) and they keep until resumed")
    for key in ("mcp", "volumeMounts", "iam"):
        if body.get(key) not in (None, [], {}):
            raise NotSupportedError(f"{key} is not supported by this server")


def _network(body: dict[str, Any]) -> dict[str, Any] | None:
    """E2B's network options → our egress policy (docs/egress.md): `allow_internet_access: true`
    is mode `open` (if the operator permits it), `network.allowOut` an allow-list of names;
    `denyOut` only narrows what is already denied. Without either the sandbox has no network
    (E2B's default is open)."""
    spec: dict[str, Any] | None = None
    internet = body.get("allow_internet_access")
    if internet is not None:
        if not isinstance(internet, bool):
            raise InvalidArgumentError("allow_internet_access must be a boolean")
        spec = {"mode": "open" if internet else "none"}
    network = body.get("network")
    if network is None:
        return spec
    if not isinstance(network, dict):
        raise InvalidArgumentError("network must be an object")
    unsupported = sorted(k for k, v in network.items()
                         if v not in (None, False, [], {}) and k not in ("allowPublicTraffic", "allowOut", "denyOut"))  # fmt: skip
    if unsupported:
        raise NotSupportedError(f"network.{unsupported[0]} is not supported by this server")
    allow = network.get("allowOut")
    if allow:
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise InvalidArgumentError("network.allowOut must be a list of strings")
        spec = {"mode": "allow", "allow": allow}
    return spec


def _sandbox(record: SandboxRecord, token: str) -> dict[str, Any]:
    """E2B's `Sandbox` (create and connect answers)."""
    return {
        "sandboxID": record.id,
        "templateID": record.template,
        "alias": record.template,
        "clientID": CLIENT_ID,
        "envdVersion": envd.ENVD_VERSION,
        "envdAccessToken": token,
        "trafficAccessToken": token,
    }


def _auto_resume(body: dict[str, Any]) -> bool:
    value = body.get("autoResume")
    if value is None:
        return False
    if not isinstance(value, dict) or not isinstance(value.get("enabled", False), bool):
        raise InvalidArgumentError("autoResume must be {\"enabled\": true|false}")
    return bool(value.get("enabled"))


def _detail(live: LiveSandbox) -> dict[str, Any]:
    """E2B's `SandboxDetail` / `ListedSandbox`."""
    record = live.record
    return {
        "templateID": record.template,
        "alias": record.template,
        "sandboxID": record.id,
        "clientID": CLIENT_ID,
        "startedAt": _iso(record.created_at),
        "endAt": _iso(record.end_at),
        "envdVersion": envd.ENVD_VERSION,
        "cpuCount": max(1, math.ceil(record.cpu)),
        "memoryMB": record.memory_mb,
        "diskSizeMB": record.disk_mb,
        "state": "paused" if live.paused is not None else "running",
        "metadata": record.metadata,
        "lifecycle": {"onTimeout": "kill", "autoResume": live.auto_resume},
    }


async def _live(request: Request, sandbox_id: str) -> LiveSandbox:
    """The sandbox, running or paused, or E2B's 404 (killed, timed out, never existed or not the
    caller's)."""
    manager = _manager(request)
    try:
        record = await manager.get(sandbox_id, _caller(request))
    except SandboxNotFoundError:
        record = None
    live = manager.live.get(sandbox_id) if record is not None and record.state in ALIVE else None
    if live is None or live.stopping:
        raise NotFoundError(f"sandbox {sandbox_id} not found")
    return live


# -- endpoints ----------------------------------------------------------------------------------------


async def create(request: Request) -> Response:
    body = await wire.json_object(request)
    _refuse_unsupported(body)
    try:
        req = CreateSandbox(
            template=_template(body.get("templateID")),
            timeout=_int(body, "timeout", minimum=1),
            envs=_str_map(body, "envVars") or None,
            metadata=_str_map(body, "metadata") or None,
            auto_resume=_auto_resume(body),
            network=_network(body),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = {"template": "templateID", "envs": "envVars", "network": "network.allowOut"}.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else "body"
        raise InvalidArgumentError(f"{where}: {err['msg']}") from None
    manager = _manager(request)
    record = await manager.create(req, _caller(request))
    live = manager.live.get(record.id)  # the caller's: it was just made for them
    if live is None or live.stopping:
        raise APIError(f"sandbox {record.id} ended while it was created")
    return JSONResponse(_sandbox(record, tokens.mint(live)), status_code=201)


async def get_info(request: Request) -> Response:
    live = await _live(request, request.path_params["sandbox_id"])
    return JSONResponse(_detail(live))


async def kill(request: Request) -> Response:
    sandbox_id = request.path_params["sandbox_id"]
    await _live(request, sandbox_id)
    try:
        await _manager(request).kill(sandbox_id, "killed", f"sandbox {sandbox_id} was killed", caller=_caller(request))
    except SandboxNotFoundError:
        raise NotFoundError(f"sandbox {sandbox_id} not found") from None
    return Response(status_code=204)


async def set_timeout(request: Request) -> Response:
    sandbox_id = request.path_params["sandbox_id"]
    body = await wire.json_object(request)
    timeout = _int(body, "timeout", minimum=1)
    if timeout is None:
        raise InvalidArgumentError("timeout is required")
    await _live(request, sandbox_id)
    try:
        await _manager(request).set_timeout(sandbox_id, timeout, _caller(request))
    except SandboxNotFoundError:
        raise NotFoundError(f"sandbox {sandbox_id} not found") from None
    return Response(status_code=204)


async def connect(request: Request) -> Response:
    """Connect: a new access token. A paused sandbox is resumed (201, with `timeout` or the
    lifetime it had left); for a running one `timeout` only ever extends its life (200)."""
    sandbox_id = request.path_params["sandbox_id"]
    body = await wire.json_object(request)
    timeout = _int(body, "timeout", minimum=1)
    live = await _live(request, sandbox_id)
    manager = _manager(request)
    try:
        if live.paused is not None:
            await manager.resume(sandbox_id, timeout, _caller(request))
            return JSONResponse(_sandbox(live.record, tokens.mint(live)), status_code=201)
        if timeout is not None and time.time() + timeout > live.record.end_at:
            await manager.set_timeout(sandbox_id, timeout, _caller(request))
    except SandboxNotFoundError:
        raise NotFoundError(f"sandbox {sandbox_id} not found") from None
    return JSONResponse(_sandbox(live.record, tokens.mint(live)), status_code=200)


async def metrics(request: Request) -> Response:
    """E2B's metrics: one sample, taken now (CPU is the average since the sandbox started)."""
    live = await _live(request, request.path_params["sandbox_id"])
    record, now = live.record, time.time()
    stats = await asyncio.to_thread(live.running.cgroup.stats)
    disk = await asyncio.to_thread(os.statvfs, SandboxFilesystem(live.running.base).storage)
    cpus = max(1, math.ceil(record.cpu))
    busy = stats.cpu_usage_usec / 1e6 / max(now - record.created_at, 1e-3) / record.cpu * 100
    return JSONResponse([{
        "timestamp": _iso(now), "timestampUnix": int(now), "cpuCount": cpus,
        "cpuUsedPct": round(min(busy, 100.0), 2),
        "memUsed": stats.memory_current, "memTotal": stats.memory_limit if stats.memory_limit > 0 else record.memory_mb * MiB,
        "memCache": 0,
        "diskUsed": (disk.f_blocks - disk.f_bfree) * disk.f_frsize, "diskTotal": disk.f_blocks * disk.f_frsize,
    }])  # fmt: skip


async def pause(request: Request) -> Response:
    """Pause (docs/pause.md): 204, or 409 when it already is (the SDK then returns False)."""
    sandbox_id = request.path_params["sandbox_id"]
    await wire.json_object(request)  # E2B's `memory` / `requireHealthyGuest`: every pause keeps memory here
    live = await _live(request, sandbox_id)
    if live.paused is not None:
        raise ConflictError(f"sandbox {sandbox_id} is already paused")
    try:
        await _manager(request).pause(sandbox_id, None, _caller(request))
    except SandboxNotFoundError:
        raise NotFoundError(f"sandbox {sandbox_id} not found") from None
    return Response(status_code=204)


async def resume(request: Request) -> Response:
    """The legacy resume (SDKs before connect resumed): 201 Sandbox, 409 when it is running."""
    sandbox_id = request.path_params["sandbox_id"]
    timeout = _int(await wire.json_object(request), "timeout", minimum=1)
    live = await _live(request, sandbox_id)
    if live.paused is None:
        raise ConflictError(f"sandbox {sandbox_id} is already running")
    try:
        await _manager(request).resume(sandbox_id, timeout, _caller(request))
    except SandboxNotFoundError:
        raise NotFoundError(f"sandbox {sandbox_id} not found") from None
    return JSONResponse(_sandbox(live.record, tokens.mint(live)), status_code=201)


def _list_filters(request: Request) -> tuple[dict[str, str], set[str], str | None, float | None]:
    q = request.query_params
    metadata: dict[str, str] = {}
    if q.get("metadata"):
        # The SDK quotes keys and values, then URL-encodes the pairs: "k=v%20w" arrives as "k=v%2520w".
        for key, value in urllib.parse.parse_qsl(q["metadata"], keep_blank_values=True, strict_parsing=False):
            metadata[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    states = {s.strip() for s in q.get("state", "").split(",") if s.strip()}
    if states - {"running", "paused"}:
        raise InvalidArgumentError(f"state: unknown state(s) {sorted(states - {'running', 'paused'})}; use running, paused")
    started_after = None
    if q.get("startedAfter"):
        try:
            parsed = datetime.fromisoformat(q["startedAfter"].replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgumentError("startedAfter must be an RFC 3339 time") from None
        started_after = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    template = q.get("template")
    return metadata, states or {"running", "paused"}, _template(template) if template else None, started_after


def _cursor(record: SandboxRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps([record.created_at, record.id]).encode()).decode()


def _after_cursor(token: str) -> tuple[float, str]:
    try:
        created_at, sandbox_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created_at), str(sandbox_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgumentError("nextToken is not a token this server gave out") from None


async def _alive(request: Request, states: set[str]) -> list[LiveSandbox]:
    """The caller's sandboxes that exist (running or paused), in `states`."""
    manager = _manager(request)
    found = []
    for state in ALIVE:
        for record in await manager.list({}, state, _caller(request)):
            live = manager.live.get(record.id)
            if live is not None and not live.stopping and ("paused" if live.paused else "running") in states:
                found.append(live)
    return found


async def list_v2(request: Request) -> Response:
    metadata, states, template, started_after = _list_filters(request)
    q = request.query_params
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidArgumentError("order must be asc or desc")
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise InvalidArgumentError("limit must be a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIMIT}")
    found = [
        live for live in await _alive(request, states)
        if all(live.record.metadata.get(k) == v for k, v in metadata.items())
        and (template is None or live.record.template == template)
        and (started_after is None or live.record.created_at >= started_after)
    ]  # fmt: skip
    found.sort(key=lambda live: (live.record.created_at, live.record.id), reverse=order == "desc")
    if q.get("nextToken"):
        mark = _after_cursor(q["nextToken"])
        found = [x for x in found if ((x.record.created_at, x.record.id) < mark if order == "desc"
                                      else (x.record.created_at, x.record.id) > mark)]  # fmt: skip
    page = found[:limit]
    headers = {"x-next-token": _cursor(page[-1].record)} if len(found) > limit else {}
    return JSONResponse([_detail(x) for x in page], headers=headers)


async def list_v1(request: Request) -> Response:
    """The legacy list (SDKs before 2.x): `metadata` filter, no pages."""
    metadata, states, _, _ = _list_filters(request)
    found = [x for x in await _alive(request, states) if all(x.record.metadata.get(k) == v for k, v in metadata.items())]
    return JSONResponse([_detail(x) for x in found])


# -- app ------------------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    # The SDK retries a 429/503 without `Should-Retry`: a quota stays exceeded, a full server may not
    headers = {"should-retry": "false"} if exc.status_code == 429 else None
    return JSONResponse(wire.error_body(exc.status_code, exc.message, exc.code), status_code=exc.status_code,
                        headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such endpoint: {request.method} {request.url.path}",
               405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
    return JSONResponse(wire.error_body(exc.status_code, message), status_code=exc.status_code)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("E2B control plane: unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(wire.error_body(500, f"internal error: {type(exc).__name__}", "internal"), status_code=500)


def create_app() -> Starlette:
    sid = "/sandboxes/{sandbox_id}"
    return Starlette(
        routes=[
            Route("/v2/sandboxes", create, methods=["POST"]),
            Route("/sandboxes", create, methods=["POST"]),
            Route("/v2/sandboxes", list_v2, methods=["GET"]),
            Route("/sandboxes", list_v1, methods=["GET"]),
            Route(sid, get_info, methods=["GET"]),
            Route(sid, kill, methods=["DELETE"]),
            Route(sid + "/timeout", set_timeout, methods=["POST"]),
            Route("/v2" + sid + "/connect", connect, methods=["POST"]),
            Route(sid + "/connect", connect, methods=["POST"]),
            Route(sid + "/metrics", metrics, methods=["GET"]),
            Route(sid + "/pause", pause, methods=["POST"]),
            Route(sid + "/resume", resume, methods=["POST"]),
        ],
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _internal},
    )
