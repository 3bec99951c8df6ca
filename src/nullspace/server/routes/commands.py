"""/v1/sandboxes/{id}/commands: processes in the sandbox (docs/api.md, "Commands").

The agent runs the processes; this side validates requests, checks every event the agent sends
(only known types and fields pass), and explains a ``SIGKILL`` the memory limit caused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from ..._exceptions import InvalidArgumentError, NotFoundError
from ..._protocol import ndjson
from ..agent_client import AgentError
from ..deps import Caller, Manager
from ..lifecycle import LiveSandbox, SandboxManager
from ..models import Envs, ErrorBody, Strict, _check_envs

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 500)}
router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/commands", tags=["commands"], responses=ERRORS)
COMMAND_ID = re.compile(r"^cmd_[0-9a-f]{1,64}$")
BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
STATUSES = {"exited", "killed", "timeout"}
MAX_ERROR = 2000
STREAM = {200: {"content": {ndjson.MEDIA_TYPE: {}}, "description": "NDJSON event stream (docs/api.md)"}}


class PtySize(Strict):
    rows: int = Field(..., ge=1, le=1000)
    cols: int = Field(..., ge=1, le=1000)


class RunCommand(Strict):
    cmd: str | list[str] = Field(..., description="a shell command (run by /bin/bash -c) or an argv list")
    cwd: str | None = Field(None, max_length=4096)
    envs: Envs | None = None
    timeout: float | None = Field(None, gt=0, le=7 * 86400, description="seconds; then the whole process tree is killed")
    stdin: str | None = Field(None, max_length=8 << 20, description="text written to stdin")
    stdin_base64: str | None = Field(None, max_length=12 << 20)
    background: bool = False
    pty: PtySize | None = Field(
        None,
        description="run on a pseudo-terminal of this size: output is one raw byte stream "
        "(`pty` events, base64), stdin writes go to the terminal, `/resize` changes its size",
    )

    _envs = field_validator("envs")(_check_envs)

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            if not value.strip() or len(value) > 1 << 20:
                raise ValueError("cmd must be a non-empty string of at most 1 MiB")
        elif not value or len(value) > 4096 or not value[0] or sum(len(a) for a in value) > 1 << 20:
            raise ValueError("cmd must be a non-empty argv list")
        return value


class StdinInput(Strict):
    data: str | None = Field(None, max_length=8 << 20)
    data_base64: str | None = Field(None, max_length=12 << 20)
    eof: bool = False


class KillCommand(Strict):
    signal: Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] = "SIGKILL"


class CommandInfo(BaseModel):
    id: str = Field(..., pattern=COMMAND_ID.pattern)
    pid: int
    cmd: str = Field(..., max_length=1 << 20)
    cwd: str = Field(..., max_length=4096)
    background: bool
    started_at: str = Field(..., max_length=64)
    running: bool
    exit_code: int | None = None
    status: Literal["running", "exited", "killed", "timeout"]
    pty: PtySize | None = Field(None, description="the terminal's size, for a command on a pseudo-terminal")


class KillResult(BaseModel):
    killed: bool


def clean(event: Any) -> dict[str, Any] | None:
    """The agent is untrusted: rebuild each event from the fields we know, drop anything else."""
    kind = event.get("type")
    if kind in ("stdout", "stderr") and isinstance(event.get("text"), str):
        ts = event.get("timestamp")
        return {"type": kind, "text": event["text"], "timestamp": ts if isinstance(ts, str) and len(ts) < 64 else None}
    if kind == "start" and isinstance(event.get("id"), str) and COMMAND_ID.match(event["id"]) and _int(event.get("pid")):
        return {"type": "start", "id": event["id"], "pid": event["pid"]}
    if kind == "end" and _int(event.get("exit_code")):
        sig, error = event.get("signal"), event.get("error")
        return {
            "type": "end",
            "exit_code": event["exit_code"],
            "signal": sig if _int(sig) else None,
            "status": event.get("status") if event.get("status") in STATUSES else "exited",
            "error": error[:MAX_ERROR] if isinstance(error, str) else None,
        }
    if kind == "pty" and isinstance(event.get("data"), str) and BASE64.match(event["data"]):
        return {"type": "pty", "data": event["data"]}
    if kind == "keepalive":
        return {"type": "keepalive"}
    return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 31) <= value < (1 << 31)


def _safe(command_id: str) -> str:
    if not COMMAND_ID.match(command_id):
        raise NotFoundError(f"command {command_id!r} does not exist")
    return command_id


async def _why_lost(manager: SandboxManager, sandbox_id: str, exc: Exception) -> str:
    await asyncio.sleep(0.05)  # let a concurrent kill record why
    record = await manager.store.get_sandbox(sandbox_id)
    if record is not None and record.state != "running":
        return record.end_reason or f"the sandbox is {record.state}"
    return str(exc)


async def _events(manager: SandboxManager, live: LiveSandbox, method: str, path: str,
                  body: Any = None) -> AsyncIterator[bytes]:
    """The agent's events as NDJSON lines; the first one is awaited before the response starts,
    so errors before the command runs become a 4xx. Ends with an ``end`` event, always."""
    sandbox_id = live.record.id
    cgroup = live.running.cgroup
    before = await asyncio.to_thread(cgroup.stats)
    events = live.agent.stream(method, path, body)
    try:
        first = clean(await anext(events))  # raises the agent's 4xx as our 4xx
    except StopAsyncIteration:
        raise AgentError("the sandbox agent sent an empty command stream") from None

    async def stream() -> AsyncIterator[bytes]:
        ended = False
        try:
            if first is not None:
                yield ndjson.encode(first)
            async for raw in events:
                event = clean(raw)
                if event is None:
                    continue
                if event["type"] == "end":
                    ended = True
                    if event["signal"] == 9 and event["status"] == "exited":
                        after = await asyncio.to_thread(cgroup.stats)
                        if after.oom_kills > before.oom_kills:
                            event["error"] = (f"killed by the out-of-memory killer: the sandbox reached its "
                                              f"memory limit of {live.record.memory_mb} MiB")
                yield ndjson.encode(event)
                if ended:
                    return
            reason = "the command stream ended without an end event"
        except AgentError as exc:
            reason = await _why_lost(manager, sandbox_id, exc)
        finally:
            await events.aclose()
        if not ended:
            yield ndjson.encode({"type": "end", "exit_code": -1, "signal": None, "status": "lost", "error": reason})

    return stream()


@router.post("", responses={**STREAM, 201: {"model": CommandInfo, "description": "a background command"}})
async def run_command(sandbox_id: str, body: RunCommand, manager: Manager, caller: Caller) -> Response:
    """Run a command. Foreground: an NDJSON stream (`start`, `stdout`/`stderr`, `end`); leaving
    the stream kills the command. Background: `201` with its info at once."""
    if body.stdin is not None and body.stdin_base64 is not None:
        raise InvalidArgumentError("give stdin or stdin_base64, not both")
    if body.pty is not None and (body.stdin is not None or body.stdin_base64 is not None):
        raise InvalidArgumentError("a terminal command takes its input later (POST .../stdin), not as stdin")
    live = await manager.require_live(sandbox_id, caller)
    payload = body.model_dump(exclude_none=True)
    if body.background:
        async with manager.agent_errors(live):
            reply = await live.agent.request("POST", "/commands", json_body=payload)
        info = CommandInfo.model_validate(reply)
        return JSONResponse(info.model_dump(), status_code=201)
    stream = await _events(manager, live, "POST", "/commands", payload)
    return StreamingResponse(stream, media_type=ndjson.MEDIA_TYPE, headers={"Cache-Control": "no-store"})


@router.get("", response_model=list[CommandInfo])
async def list_commands(sandbox_id: str, manager: Manager, caller: Caller) -> Any:
    """The commands still running, foreground and background."""
    reply = await manager.agent_request(sandbox_id, "GET", "/commands", None, caller)
    return [CommandInfo.model_validate(c) for c in reply] if isinstance(reply, list) else []


@router.get("/{command_id}", response_model=CommandInfo)
async def get_command(sandbox_id: str, command_id: str, manager: Manager, caller: Caller) -> Any:
    return CommandInfo.model_validate(await manager.agent_request(sandbox_id, "GET", f"/commands/{_safe(command_id)}", None, caller))


@router.get("/{command_id}/events", responses=STREAM)
async def command_events(sandbox_id: str, command_id: str, manager: Manager, caller: Caller) -> StreamingResponse:
    """Re-attach: the command's whole output from the start, then live, until `end`. Leaving
    this stream does not kill the command."""
    live = await manager.require_live(sandbox_id, caller)
    stream = await _events(manager, live, "GET", f"/commands/{_safe(command_id)}/events")
    return StreamingResponse(stream, media_type=ndjson.MEDIA_TYPE, headers={"Cache-Control": "no-store"})


@router.post("/{command_id}/stdin", status_code=204)
async def send_stdin(sandbox_id: str, command_id: str, body: StdinInput, manager: Manager, caller: Caller) -> Response:
    if body.data is not None and body.data_base64 is not None:
        raise InvalidArgumentError("give data or data_base64, not both")
    path = f"/commands/{_safe(command_id)}/stdin"
    await manager.agent_request(sandbox_id, "POST", path, body.model_dump(exclude_none=True), caller)
    return Response(status_code=204)


@router.post("/{command_id}/kill", response_model=KillResult)
async def kill_command(sandbox_id: str, command_id: str, manager: Manager, caller: Caller, body: KillCommand | None = None) -> Any:
    """Signal the command's process tree (SIGKILL: every process of it). `killed` is false when
    it had already ended."""
    payload = (body or KillCommand()).model_dump()
    return KillResult.model_validate(
        await manager.agent_request(sandbox_id, "POST", f"/commands/{_safe(command_id)}/kill", payload, caller)
    )


@router.post("/{command_id}/resize", status_code=204)
async def resize_command(sandbox_id: str, command_id: str, body: PtySize, manager: Manager, caller: Caller) -> Response:
    """Change the size of a command's terminal (it gets SIGWINCH). `409` if it has none."""
    await manager.agent_request(sandbox_id, "POST", f"/commands/{_safe(command_id)}/resize", body.model_dump(), caller)
    return Response(status_code=204)
