"""What the operator permits and limits, from the ``[egress]`` table of a TOML file
(``nullspace serve --egress-config FILE``)::

    [egress]
    open = false                                   # may a sandbox ask for the open internet?
    ceiling = ["pypi.org", "files.pythonhosted.org", "*.githubusercontent.com"]  # omit: any name
    dns = "9.9.9.9"                                # the proxy's resolver (default: the system's)
    allow_private = []                             # private networks sandboxes may reach anyway
    upstream_ca_file = "/etc/ssl/extra.pem"        # more CAs the proxy trusts for upstream TLS
    rate_bytes = 10_485_760                        # per sandbox, bytes/s (both directions)
    max_bytes = 1_073_741_824                      # per sandbox, in total
    max_connections = 64                           # per sandbox, at once
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .addresses import Network, parse_networks
from .rules import Rule

MiB = 1 << 20


@dataclass(frozen=True)
class EgressSettings:
    open: bool = False
    ceiling: tuple[str, ...] | None = None
    dns: str | None = None
    allow_private: tuple[str, ...] = ()
    upstream_ca_file: Path | None = None
    rate_bytes: int = 10 * MiB
    max_bytes: int = 1024 * MiB
    max_connections: int = 64
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0

    @classmethod
    def load(cls, path: Path) -> EgressSettings:
        with open(path, "rb") as f:
            table: dict[str, Any] = tomllib.load(f).get("egress", {})
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"{path}: unknown [egress] settings {sorted(unknown)}; known: {sorted(known)}")
        for key in ("ceiling", "allow_private"):
            if table.get(key) is not None:
                table[key] = tuple(table[key])
        if table.get("upstream_ca_file"):
            table["upstream_ca_file"] = Path(table["upstream_ca_file"])
        settings = cls(**table)
        settings.ceiling_rules()  # fail at start, not at the first create
        settings.private_networks()
        return settings

    def ceiling_rules(self) -> tuple[Rule, ...] | None:
        return None if self.ceiling is None else tuple(Rule.parse(item) for item in self.ceiling)

    def private_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.allow_private)
