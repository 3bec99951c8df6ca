"""Network policy and secrets in the SDK: request bodies and the `NetworkInfo` answer (sans-I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidArgumentError

Network = str | Sequence[str] | None
"""``None`` / ``"none"``: no network (the default); ``"open"``: the internet, if the server
permits it; a list of names: an allow-list (``["pypi.org", "*.githubusercontent.com:443"]``)."""


@dataclass(frozen=True)
class Secret:
    """A value the sandbox never sees: its env var holds a placeholder that the server's egress
    proxy swaps for `value` only in HTTPS requests to `hosts` (names or ``*.`` wildcards)::

        Sandbox.create(network=["api.openai.com"],
                       secrets={"OPENAI_API_KEY": Secret(key, hosts=["api.openai.com"])})
    """

    value: str = field(repr=False)
    hosts: Sequence[str] = ()

    def to_body(self) -> dict[str, Any]:
        return {"value": self.value, "hosts": list(self.hosts)}


@dataclass
class NetworkInfo:
    """A sandbox's network policy as the server holds it.

    Attributes:
        mode: ``none``, ``allow`` or ``open``.
        allow: The allow-list (``NAME[:PORTS]``), for mode ``allow``.
        secrets: Secret name → {"hosts": [...]} (never values).
        stats: bytes_out, bytes_in, connections, active, refusals.
        limits: rate_bytes (per second), max_bytes, max_connections.
        refusals: The latest refused destinations: host, port, reason, time.
    """

    mode: str
    allow: list[str] = field(default_factory=list)
    secrets: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkInfo:
        return cls(
            mode=str(data.get("mode", "none")), allow=list(data.get("allow") or []),
            secrets=dict(data.get("secrets") or {}), stats=dict(data.get("stats") or {}),
            limits=dict(data.get("limits") or {}), refusals=list(data.get("refusals") or []),
        )


def network_body(network: Network) -> dict[str, Any]:
    if network is None or network == "none":
        return {"mode": "none"}
    if network == "open":
        return {"mode": "open"}
    if isinstance(network, str):
        raise InvalidArgumentError(f"network must be 'none', 'open' or a list of names, not {network!r}")
    return {"mode": "allow", "allow": list(network)}


def secrets_body(secrets: Mapping[str, Secret]) -> dict[str, Any]:
    body = {}
    for name, secret in secrets.items():
        if not isinstance(secret, Secret):
            raise InvalidArgumentError(f"secret {name!r}: give a nullspace.Secret(value, hosts=[...])")
        body[name] = secret.to_body()
    return body
