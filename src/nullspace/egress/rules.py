"""Network policies as data: which names and ports a sandbox may reach (pure; no I/O).

A policy is one of three modes:

* ``none`` — no network (the default; exactly what a sandbox had before egress existed);
* ``allow`` — an allow-list of rules ``NAME[:PORTS]``: ``pypi.org``, ``*.githubusercontent.com``,
  ``example.com:8443``, ``api.example.com:443,8443``. A name without ports means ports 80 and 443.
  ``*.example.com`` matches every name under example.com (any depth), not example.com itself;
* ``open`` — any public name and port, where the operator's settings permit it.

Whatever the mode, names that resolve to private, loopback, link-local or the host's own
addresses are refused by the proxy (`addresses.py`); the rules only ever add names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DEFAULT_PORTS = (80, 443)
MAX_RULES = 256
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MODES = ("none", "allow", "open")


class RuleError(ValueError):
    """A rule or policy that cannot be parsed; the message says what is wrong."""


def normalize_host(name: str) -> str | None:
    """Lower-case DNS name without a trailing dot, or None if it is not a valid host name
    (IP literals are not host names: `is_ip_literal`)."""
    host = name.strip().lower().rstrip(".")
    if not host or len(host) > 253 or is_ip_literal(host):
        return None
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return host


def is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Rule:
    """One allow-list entry: `host` is a name, or the suffix after ``*.`` when `wildcard`."""

    host: str
    wildcard: bool = False
    ports: tuple[int, ...] = DEFAULT_PORTS

    @classmethod
    def parse(cls, text: str) -> Rule:
        if not isinstance(text, str) or not text.strip():
            raise RuleError("an allow-list entry must be a non-empty string like 'pypi.org' or '*.example.com:443'")
        raw = text.strip()
        name, sep, port_text = raw.partition(":") if raw.count(":") == 1 else (raw, "", "")
        ports = DEFAULT_PORTS
        if sep:
            try:
                ports = tuple(sorted({int(p) for p in port_text.split(",")}))
            except ValueError:
                raise RuleError(f"{raw!r}: ports must be numbers, like 'example.com:443,8443'") from None
            if not ports or not all(0 < p < 65536 for p in ports):
                raise RuleError(f"{raw!r}: ports must be between 1 and 65535")
        wildcard = name.startswith("*.")
        host = normalize_host(name[2:] if wildcard else name)
        if host is None:
            if is_ip_literal(name):
                raise RuleError(f"{raw!r}: IP addresses are not allowed, only names (the proxy resolves them itself)")
            raise RuleError(f"{raw!r}: not a host name (letters, digits, '-', at least two labels; '*.' prefix for a wildcard)")
        return cls(host, wildcard, ports)

    def matches_name(self, host: str) -> bool:
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host

    def matches(self, host: str, port: int) -> bool:
        return port in self.ports and self.matches_name(host)

    def covers(self, other: Rule) -> bool:
        """Whether everything `other` allows is allowed by this rule (for the operator ceiling)."""
        if not set(other.ports) <= set(self.ports):
            return False
        if other.wildcard:
            return self.wildcard and (other.host == self.host or other.host.endswith("." + self.host))
        return self.matches_name(other.host)

    def __str__(self) -> str:
        name = ("*." if self.wildcard else "") + self.host
        return name if self.ports == DEFAULT_PORTS else f"{name}:{','.join(map(str, self.ports))}"


@dataclass(frozen=True)
class NetworkPolicy:
    mode: str = "none"
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, mode: str | None, allow: Sequence[str] | None) -> NetworkPolicy:
        """From the API's fields. `allow` given without a mode means mode ``allow``."""
        mode = mode or ("allow" if allow else "none")
        if mode not in MODES:
            raise RuleError(f"network mode must be one of {', '.join(MODES)}, not {mode!r}")
        allow = list(allow or [])
        if mode != "allow" and allow:
            raise RuleError(f"an allow-list goes with mode 'allow', not {mode!r}")
        if len(allow) > MAX_RULES:
            raise RuleError(f"at most {MAX_RULES} allow-list entries")
        return cls(mode, tuple(dict.fromkeys(Rule.parse(item) for item in allow)))

    def permits(self, host: str, port: int) -> bool:
        if self.mode == "open":
            return True
        return self.mode == "allow" and any(rule.matches(host, port) for rule in self.rules)

    def name_listed(self, host: str) -> bool:
        """The name is on the list for some port (to say "wrong port" rather than "not listed")."""
        return self.mode == "open" or any(rule.matches_name(host) for rule in self.rules)

    def describe(self) -> str:
        if self.mode == "allow":
            return "allow " + ", ".join(map(str, self.rules))
        return self.mode

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "allow": [str(rule) for rule in self.rules]}


def check_ceiling(policy: NetworkPolicy, ceiling: Iterable[Rule] | None, open_permitted: bool) -> None:
    """Raise RuleError if `policy` asks for more than the operator permits."""
    if policy.mode == "open" and not open_permitted:
        raise RuleError("this server does not permit open internet access (network mode 'open'); use an allow-list")
    if policy.mode != "allow" or ceiling is None:
        return
    ceiling = list(ceiling)
    for rule in policy.rules:
        if not any(limit.covers(rule) for limit in ceiling):
            allowed = ", ".join(map(str, ceiling)) or "nothing"
            raise RuleError(f"allow-list entry {str(rule)!r} is outside what this server permits ({allowed})")


def host_port(target: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` (a CONNECT target or a URL's authority) → (host, port); ValueError if bad."""
    if target.startswith("["):  # an IPv6 literal
        end = target.find("]")
        rest = target[end + 1:] if end > 0 else "x"
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {target!r}")
        host, port_text = target[1:end], rest[1:]
    elif target.count(":") == 1:
        host, port_text = target.split(":")
    else:
        host, port_text = target, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"{target!r} has no port")
        return host.lower().rstrip("."), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {target!r}")
    return host.lower().rstrip("."), int(port_text)
