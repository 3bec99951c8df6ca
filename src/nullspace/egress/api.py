"""The HTTP side of egress: request fields, the ``/network`` routes, and the hooks the sandbox
manager calls at create, run and kill."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .._exceptions import InvalidArgumentError
from .rules import NetworkPolicy, RuleError
from .secrets import SecretError, SecretSet, make_secrets
from .service import EgressService

if TYPE_CHECKING:
    from ..server.agent_client import AgentClient
    from ..server.models import CreateSandbox


class NetworkSpec(BaseModel):
    """``none`` (default), ``allow`` with an allow-list, or ``open`` if the server permits it."""

    model_config = ConfigDict(extra="forbid")
    mode: str | None = Field(None, description="none | allow | open (default: allow if `allow` is given, else none)")
    allow: list[str] | None = Field(None, description="NAME[:PORTS] entries: pypi.org, *.example.com:443,8443")


class SecretSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(..., repr=False, description="never stored, logged or shown to the sandbox")
    hosts: list[str] = Field(..., min_length=1, description="names the value may be sent to (HTTPS only)")


class NetworkInfo(BaseModel):
    mode: str
    allow: list[str]
    secrets: dict[str, dict[str, list[str]]]
    stats: dict[str, int]
    limits: dict[str, int]
    refusals: list[dict[str, Any]]


def parse_create(service: EgressService | None, req: CreateSandbox) -> tuple[NetworkPolicy, SecretSet]:
    """The create request's `network` and `secrets` → policy + secrets, or a 400 before anything starts."""
    network: NetworkSpec | None = getattr(req, "network", None)
    specs: dict[str, SecretSpec] | None = getattr(req, "secrets", None)
    if service is None:
        if (network and (network.mode or "allow") != "none") or specs:
            raise InvalidArgumentError("this server has no egress proxy")
        return NetworkPolicy(), SecretSet()
    try:
        policy = service.parse_policy(network.mode, network.allow) if network else NetworkPolicy()
        secrets = SecretSet(make_secrets({k: (v.value, v.hosts) for k, v in (specs or {}).items()}))
    except (RuleError, SecretError) as exc:
        raise InvalidArgumentError(str(exc)) from None
    clash = set(secrets.items) & set(req.envs or {})
    if clash:
        raise InvalidArgumentError(f"{sorted(clash)} given both as envs and as secrets")
    if secrets and policy.mode == "none":
        raise InvalidArgumentError("secrets need network access: give `network` an allow-list with their hosts")
    return policy, secrets


def placeholder_envs(secrets: SecretSet) -> dict[str, str]:
    return {s.name: s.placeholder.decode() for s in secrets.items.values()}


async def apply(service: EgressService, sandbox_id: str, agent: AgentClient,
                policy: NetworkPolicy, secrets: SecretSet | None = None) -> None:
    """Give a running sandbox `policy`; starts the in-sandbox forwarder the first time."""
    setup = service.configure(sandbox_id, policy, secrets)
    if setup is not None:
        await agent.request("POST", "/egress", json_body=setup)


def refusal_events(service: EgressService | None, sandbox_id: str, since: int) -> list[dict[str, Any]]:
    """`network_refused` events for what the proxy refused since refusal number `since`."""
    sb = service.get(sandbox_id) if service else None
    if sb is None:
        return []
    return [
        {"type": "network_refused", "host": r["host"], "port": r["port"], "reason": r["reason"]}
        for r in sb.refusals_since(since)
    ]


def refusal_mark(service: EgressService | None, sandbox_id: str) -> int:
    sb = service.get(sandbox_id) if service else None
    return sb.stats.refusals if sb else 0
