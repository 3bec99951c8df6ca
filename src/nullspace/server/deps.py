"""FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .lifecycle import SandboxManager


def get_manager(request: Request) -> SandboxManager:
    return request.app.state.manager


Manager = Annotated[SandboxManager, Depends(get_manager)]
