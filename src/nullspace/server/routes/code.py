"""/v1/sandboxes/{id}/execute (NDJSON stream) and /contexts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ..._exceptions import ContextNotFoundError, InvalidArgumentError
from ..._protocol import ndjson
from ..deps import Caller, Manager
from ..models import ContextInfo, CreateContext, ErrorBody, Execute
from ..streaming import NDJSONEvents

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 500)}
router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}", tags=["code"], responses=ERRORS)


@router.post(
    "/execute",
    status_code=200,  # for the OpenAPI document (NDJSONEvents takes no status_code)
    response_class=NDJSONEvents,
    responses={200: {"content": {ndjson.MEDIA_TYPE: {}}, "description": "NDJSON event stream (docs/api.md)"}},
)
async def execute(sandbox_id: str, body: Execute, manager: Manager, caller: Caller) -> NDJSONEvents:
    if body.language and body.context_id:
        raise InvalidArgumentError("give either language or context_id, not both")
    events = manager.execute(sandbox_id, body.model_dump(exclude_none=True), caller)
    first = await anext(events)  # errors before the run starts become a 4xx, not a broken stream
    return NDJSONEvents(events, first)


@router.post("/contexts", status_code=201, response_model=ContextInfo)
async def create_context(sandbox_id: str, body: CreateContext, manager: Manager, caller: Caller) -> Any:
    return _context(await manager.agent_request(sandbox_id, "POST", "/contexts", body.model_dump(exclude_none=True), caller))


@router.get("/contexts", response_model=list[ContextInfo])
async def list_contexts(sandbox_id: str, manager: Manager, caller: Caller) -> Any:
    reply = await manager.agent_request(sandbox_id, "GET", "/contexts", None, caller)
    return [_context(c) for c in reply] if isinstance(reply, list) else []


@router.post("/contexts/{context_id}/restart", response_model=ContextInfo)
async def restart_context(sandbox_id: str, context_id: str, manager: Manager, caller: Caller) -> Any:
    return _context(await manager.agent_request(sandbox_id, "POST", f"/contexts/{_safe(context_id)}/restart", None, caller))


@router.post(
    "/contexts/{context_id}/fork", status_code=201, response_model=ContextInfo, responses={409: {"model": ErrorBody}}
)
async def fork_context(sandbox_id: str, context_id: str, manager: Manager, caller: Caller) -> Any:
    """A new context whose Python kernel is a copy-on-write fork of this one (docs/pause.md)."""
    return _context(await manager.agent_request(sandbox_id, "POST", f"/contexts/{_safe(context_id)}/fork", None, caller))


@router.delete("/contexts/{context_id}", status_code=204)
async def remove_context(sandbox_id: str, context_id: str, manager: Manager, caller: Caller) -> Response:
    await manager.agent_request(sandbox_id, "DELETE", f"/contexts/{_safe(context_id)}", None, caller)
    return Response(status_code=204)


def _safe(context_id: str) -> str:
    if not context_id.replace("-", "").replace("_", "").isalnum() or len(context_id) > 128:
        raise ContextNotFoundError(f"context {context_id!r} does not exist")
    return context_id


def _context(value: Any) -> ContextInfo:
    """The agent is untrusted: validate what it says a context is."""
    return ContextInfo.model_validate(value)
