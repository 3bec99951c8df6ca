"""FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .lifecycle import SandboxManager


async def get_manager(request: Request) -> SandboxManager:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread."""
    return request.app.state.manager


Manager = Annotated[SandboxManager, Depends(get_manager)]
