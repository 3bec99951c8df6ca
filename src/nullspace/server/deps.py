"""FastAPI dependencies: the sandbox manager and the calling `Principal`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .._exceptions import AuthenticationError, PermissionDeniedError
from .lifecycle import SandboxManager
from .tenants import Principal


async def get_manager(request: Request) -> SandboxManager:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread."""
    return request.app.state.manager


async def get_principal(request: Request) -> Principal:
    """The caller the auth middleware found (`middleware.ApiKeyAuth`, `LocalAdmin`).

    No principal means the request came in past both: refuse it rather than guess.
    """
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise AuthenticationError("no credentials: this listener has no authentication configured")
    return principal


async def get_admin(caller: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not caller.is_admin:
        raise PermissionDeniedError("this needs an admin key (or the server's unix socket)")
    return caller


Manager = Annotated[SandboxManager, Depends(get_manager)]
Caller = Annotated[Principal, Depends(get_principal)]
Admin = Annotated[Principal, Depends(get_admin)]
