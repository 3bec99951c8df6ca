"""``/v1/sandboxes/{id}/network``: read and change a running sandbox's egress policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .._exceptions import InvalidArgumentError
from ..server.deps import Caller, Manager
from .api import NetworkInfo, NetworkSpec, apply
from .rules import RuleError
from .service import EgressService

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}", tags=["network"])


def _service(manager: Any) -> EgressService:
    service = getattr(manager, "egress", None)
    if service is None:
        raise InvalidArgumentError("this server has no egress proxy")
    return service


@router.get("/network", response_model=NetworkInfo)
async def get_network(sandbox_id: str, manager: Manager, caller: Caller) -> Any:
    """The sandbox's network policy, secret names and hosts (never values), counters, limits
    and the latest refusals."""
    await manager.require_live(sandbox_id, caller)
    sb = _service(manager).get(sandbox_id)
    if sb is None:
        raise InvalidArgumentError(f"sandbox {sandbox_id} has no egress state")
    return sb.info()


@router.put("/network", response_model=NetworkInfo)
async def set_network(sandbox_id: str, body: NetworkSpec, manager: Manager, caller: Caller) -> Any:
    """Change the policy of a running sandbox; its open connections are closed."""
    live = await manager.require_live(sandbox_id, caller)
    service = _service(manager)
    try:
        policy = service.parse_policy(body.mode, body.allow)
    except RuleError as exc:
        raise InvalidArgumentError(str(exc)) from None
    await apply(service, sandbox_id, live.agent, policy)
    sb = service.get(sandbox_id)
    assert sb is not None
    return sb.info()
