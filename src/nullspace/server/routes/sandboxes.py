"""/v1/sandboxes: create, get, list, kill, set timeout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..._exceptions import InvalidArgumentError
from ..deps import Caller, Manager
from ..models import CreateSandbox, ErrorBody, Pause, PauseInfo, Resume, SandboxInfo, SetTimeout

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 500, 503)}
router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"], responses=ERRORS)


@router.post("", status_code=201, response_model=SandboxInfo)
async def create_sandbox(body: CreateSandbox, manager: Manager, caller: Caller) -> SandboxInfo:
    return SandboxInfo.of(await manager.create(body, caller))


@router.get("", response_model=list[SandboxInfo])
async def list_sandboxes(
    request: Request, manager: Manager, caller: Caller, state: str | None = None
) -> list[SandboxInfo]:
    """Filter with `?metadata.KEY=VALUE` (repeatable; all must match) and `?state=running`."""
    metadata = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata."):
            metadata[key.removeprefix("metadata.")] = value
        elif key != "state":
            raise InvalidArgumentError(f"unknown query parameter {key!r}; use metadata.KEY=VALUE or state")
    return [SandboxInfo.of(r) for r in await manager.list(metadata, state, caller)]


@router.get("/{sandbox_id}", response_model=SandboxInfo)
async def get_sandbox(sandbox_id: str, manager: Manager, caller: Caller) -> SandboxInfo:
    return SandboxInfo.of(await manager.get(sandbox_id, caller))


@router.delete("/{sandbox_id}", status_code=204)
async def kill_sandbox(sandbox_id: str, manager: Manager, caller: Caller) -> Response:
    await manager.kill(sandbox_id, "killed", f"sandbox {sandbox_id} was killed", caller=caller)
    return Response(status_code=204)


@router.post("/{sandbox_id}/timeout", response_model=SandboxInfo)
async def set_timeout(sandbox_id: str, body: SetTimeout, manager: Manager, caller: Caller) -> SandboxInfo:
    return SandboxInfo.of(await manager.set_timeout(sandbox_id, body.timeout, caller))


@router.post("/{sandbox_id}/pause", response_model=PauseInfo)
async def pause_sandbox(sandbox_id: str, manager: Manager, caller: Caller, body: Pause | None = None) -> PauseInfo:
    """Freeze the sandbox and push its memory to swap; its lifetime stops (docs/pause.md)."""
    record, paused = await manager.pause(sandbox_id, body.timeout if body else None, caller)
    return PauseInfo(**SandboxInfo.of(record).model_dump(), memory_before_bytes=paused.memory_before,
                     memory_after_bytes=paused.memory_after)


@router.post("/{sandbox_id}/resume", response_model=SandboxInfo)
async def resume_sandbox(sandbox_id: str, manager: Manager, caller: Caller, body: Resume | None = None) -> SandboxInfo:
    return SandboxInfo.of(await manager.resume(sandbox_id, body.timeout if body else None, caller))
