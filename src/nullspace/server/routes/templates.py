"""/v1/templates: list, inspect and delete built templates (builds go through the CLI:
`nullspace template build PATH`, see docs/templates.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from ... import templates
from ..._exceptions import ConflictError, TemplateNotFoundError
from ...templates import _store
from ..deps import Admin, Caller, Manager
from ..lifecycle import SandboxManager
from ..models import ErrorBody
from ..tenants import Principal

ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 500)}
router = APIRouter(prefix="/v1/templates", tags=["templates"], responses=ERRORS)


class TemplateStep(BaseModel):
    name: str
    kind: str
    cached: bool
    seconds: float = 0.0


class TemplateInfo(BaseModel):
    name: str
    digest: str
    base: str
    builtin: bool
    built_at: datetime
    size_bytes: int
    layers: int
    kernels: dict[str, str]
    user: str
    workdir: str
    packages: dict[str, list[str]]
    running_sandboxes: int


class TemplateDetail(TemplateInfo):
    env: dict[str, str]
    steps: list[TemplateStep]
    source: str | None = None


def _info(manager: SandboxManager, image: templates.TemplateImage, caller: Principal, detail: bool = False) -> dict[str, Any]:
    spec = image.spec
    data: dict[str, Any] = {
        "name": image.name,
        "digest": image.digest,
        "base": spec.base,
        "builtin": image.name in templates.builtin_names(),
        "built_at": image.built_at,
        "size_bytes": image.size_bytes,
        "layers": len(image.layers),
        "kernels": dict(spec.kernels),
        "user": spec.user,
        "workdir": spec.workdir,
        "packages": {"apt": list(spec.apt), "pip": list(spec.pip), "npm": list(spec.npm)},
        "running_sandboxes": _running(manager, image.name, caller),
    }
    if detail:
        meta = _store.read_meta(manager.settings.data_dir, image.name, image.digest) or {}
        steps = [s for s in meta.get("steps") or [] if isinstance(s, dict)]
        data.update(env=dict(spec.env), steps=steps, source=meta.get("source"))
    return data


def _running(manager: SandboxManager, name: str, caller: Principal) -> int:
    """Sandboxes on template `name` (a tenant counts its own; an admin also the warm pools')."""
    count = sum(1 for live in manager.live.values()
                if live.record.template == name and caller.owns(live.record.tenant_id))
    pool = manager.pool
    if pool is not None and caller.is_admin:
        count += len(pool.ready.get(name, ())) + pool.starting.get(name, 0)
    return count


@router.get("", response_model=list[TemplateInfo])
async def list_templates(manager: Manager, caller: Caller) -> list[dict[str, Any]]:
    """Every built template (its current build)."""
    images = await asyncio.to_thread(templates.list_templates, manager.settings.data_dir)
    return [_info(manager, image, caller) for image in images]


@router.get("/{name}", response_model=TemplateDetail)
async def get_template(name: str, manager: Manager, caller: Caller) -> dict[str, Any]:
    image = await asyncio.to_thread(templates.find_template, name, manager.settings.data_dir)
    if image is None:
        raise TemplateNotFoundError(f"template {name!r} is not built")
    return _info(manager, image, caller, detail=True)


@router.delete("/{name}", status_code=204)
async def delete_template(name: str, manager: Manager, caller: Admin) -> Response:
    """Delete a template's builds and the layers nothing else uses.

    409 while sandboxes (or a warm pool) run on it, while another template is built on it,
    and for built-in templates (the server would only build them again). Admins only (403).
    """
    if templates.find_template(name, manager.settings.data_dir) is None:
        raise TemplateNotFoundError(f"template {name!r} is not built")
    if name in templates.builtin_names():
        raise ConflictError(f"{name!r} is a built-in template; delete it with the CLI if you must")
    running = _running(manager, name, caller)
    if running:
        raise ConflictError(f"{running} sandbox(es) run on template {name!r}; kill them first")
    await asyncio.to_thread(templates.delete_template, name, manager.settings.data_dir)
    return Response(status_code=204)
