"""/v1/sandboxes/{id}/packages: install packages into a running sandbox (server/packages.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..deps import Caller, Manager
from ..models import ErrorBody, Strict
from ..packages import PackageInstaller

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422, 500)}
router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}", tags=["packages"], responses=ERRORS)


class InstallPackages(Strict):
    packages: list[str] = Field(..., min_length=1, max_length=64, description="e.g. ['humanize==4.9.0']")
    language: Literal["python", "javascript"] = "python"
    timeout: float | None = Field(
        None, gt=0, le=1800, description="seconds for resolving, fetching and installing"
    )


class InstalledPackage(BaseModel):
    name: str
    version: str


class InstallResult(BaseModel):
    installed: list[InstalledPackage]
    log: str


def get_installer(request: Request) -> PackageInstaller:
    installer = getattr(request.app.state, "packages", None)
    if installer is None:  # created on first use: needs only the manager's data dir and reaper
        manager = request.app.state.manager
        installer = request.app.state.packages = PackageInstaller(
            manager.settings.data_dir, manager.runtime.reaper
        )
    return installer


@router.post("/packages", response_model=InstallResult)
async def install_packages(
    sandbox_id: str, body: InstallPackages, manager: Manager, caller: Caller, request: Request
) -> InstallResult:
    """Resolve and download on the host, install in the sandbox; importable in running contexts.

    Errors: `invalid_argument` (a malformed requirement), `package_install_failed` (422: it does
    not exist, does not resolve, or failed to install; the message is pip's or npm's).
    """
    live = await manager.require_live(sandbox_id, caller)
    with manager.metrics.installing(body.language):
        outcome = await get_installer(request).install(live, body.packages, body.language, body.timeout)
    return InstallResult(installed=[InstalledPackage(**item) for item in outcome.installed], log=outcome.log)
