"""GET /metrics (Prometheus text format) and GET /v1/sandboxes/{id}/logs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from ..deps import Admin, Caller, Manager
from ..models import ErrorBody

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics", response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **{code: {"model": ErrorBody} for code in (401, 403)}},
)
async def metrics(request: Request, _: Admin) -> Response:
    """Prometheus metrics (docs/operations.md): the unix socket and admin keys only (a
    tenant's key gets 403: the numbers cover every tenant)."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


class LogLine(BaseModel):
    ts: float
    level: str
    logger: str
    message: str


class SandboxLogs(BaseModel):
    server: list[LogLine]
    output: str | None


@router.get(
    "/v1/sandboxes/{sandbox_id}/logs", response_model=SandboxLogs,
    responses={code: {"model": ErrorBody} for code in (401, 404)},
)
async def sandbox_logs(sandbox_id: str, manager: Manager, caller: Caller, request: Request) -> Any:
    """The server's log lines about this sandbox (kept in memory, the last 200) and, while it
    runs, the tail of its agent's own stdout/stderr (`output`; null once it ended).

    `output` is written by the sandbox: treat it as untrusted text.
    """
    await manager.get(sandbox_id, caller)  # 404 for an id this caller may not see
    live = manager.live.get(sandbox_id)
    return SandboxLogs(
        server=[LogLine(**line) for line in request.app.state.sandbox_logs.lines(sandbox_id)],
        output=live.running.output_tail() if live is not None else None,
    )
