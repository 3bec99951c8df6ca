"""/v1/pools: the warm pools' state (target size, ready, starting, claimed) per template."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Caller, Manager

router = APIRouter(prefix="/v1/pools", tags=["pools"])


@router.get("")
async def pools(manager: Manager, caller: Caller) -> dict[str, dict[str, int | float]]:
    return manager.pool.status() if manager.pool else {}
