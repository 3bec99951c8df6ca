"""Secrets the sandbox never sees: placeholders inside, real values swapped in by the proxy.

Each secret gets a random placeholder of exactly the real value's length (so bodies keep their
Content-Length when the proxy swaps one for the other; the length is the one thing the sandbox
learns). The proxy puts the real value in place of the placeholder only in HTTPS requests to the
secret's hosts (URL, headers, body), turns the real value back into the placeholder in those
hosts' answers, and refuses any request that carries a placeholder anywhere else.

Values live in this process's memory only: never in the database, logs, results or the sandbox.
"""

from __future__ import annotations

import secrets as _random
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .rules import Rule

MIN_VALUE = 12
MAX_VALUE = 8192
MAX_SECRETS = 64
_ALPHABET = string.ascii_letters + string.digits


class SecretError(ValueError):
    """A secret that cannot be used; the message says why."""


@dataclass(frozen=True)
class Secret:
    name: str
    value: bytes
    placeholder: bytes
    hosts: tuple[Rule, ...]

    def allowed_for(self, host: str) -> bool:
        return any(rule.matches_name(host) for rule in self.hosts)

    def __repr__(self) -> str:  # never the value
        return f"Secret({self.name!r}, hosts={[str(h) for h in self.hosts]})"


def make_secrets(spec: Mapping[str, tuple[str, Iterable[str]]]) -> dict[str, Secret]:
    """{name: (value, hosts)} → {name: Secret} with fresh placeholders."""
    if len(spec) > MAX_SECRETS:
        raise SecretError(f"at most {MAX_SECRETS} secrets")
    made = {}
    for name, (value, hosts) in spec.items():
        raw = value.encode()
        if not MIN_VALUE <= len(raw) <= MAX_VALUE:
            raise SecretError(f"secret {name!r}: the value must be {MIN_VALUE}-{MAX_VALUE} bytes long")
        if any(c in raw for c in b"\r\n\0"):
            raise SecretError(f"secret {name!r}: the value must not contain CR, LF or NUL")
        rules = tuple(Rule.parse(h) for h in hosts)
        if not rules:
            raise SecretError(f"secret {name!r}: give the hosts it may be sent to")
        placeholder = "".join(_random.choice(_ALPHABET) for _ in range(len(raw))).encode()
        made[name] = Secret(name, raw, placeholder, rules)
    return made


class SecretSet:
    """The secrets of one sandbox, with the byte-level operations the proxy needs."""

    def __init__(self, items: Mapping[str, Secret] | None = None) -> None:
        self.items = dict(items or {})
        self.longest = max((len(s.value) for s in self.items.values()), default=0)

    def __bool__(self) -> bool:
        return bool(self.items)

    def found(self, data: bytes) -> list[Secret]:
        """Secrets whose placeholder occurs in `data`."""
        return [s for s in self.items.values() if s.placeholder in data]

    def outbound(self, host: str, tls: bool) -> tuple[list[tuple[bytes, bytes]], list[Secret]]:
        """(placeholder → value swaps for a request to `host`, secrets that must not go there)."""
        swaps, forbidden = [], []
        for secret in self.items.values():
            if tls and secret.allowed_for(host):
                swaps.append((secret.placeholder, secret.value))
            else:
                forbidden.append(secret)
        return swaps, forbidden

    def inbound(self, host: str) -> list[tuple[bytes, bytes]]:
        """value → placeholder swaps for an answer from `host` (it must not echo the value back)."""
        return [(s.value, s.placeholder) for s in self.items.values() if s.allowed_for(host)]


def swap(data: bytes, pairs: list[tuple[bytes, bytes]]) -> bytes:
    for old, new in pairs:
        data = data.replace(old, new)
    return data


class StreamSwapper:
    """Replace equal-length byte strings in a stream cut into arbitrary chunks; also reports
    which of `watch` (placeholders that must not pass) appeared."""

    def __init__(self, pairs: list[tuple[bytes, bytes]], watch: list[Secret] = ()) -> None:  # type: ignore[assignment]
        self.pairs = pairs
        self.watch = list(watch)
        self.keep = max([len(a) for a, _ in pairs] + [len(s.placeholder) for s in self.watch] + [1]) - 1
        self.tail = b""

    def feed(self, chunk: bytes) -> tuple[bytes, list[Secret]]:
        if not self.pairs and not self.watch:
            return chunk, []
        data = self.tail + chunk
        seen = [s for s in self.watch if s.placeholder in data]
        data = swap(data, self.pairs)
        cut = max(len(data) - self.keep, 0)
        self.tail = data[cut:]
        return data[:cut], seen

    def flush(self) -> bytes:
        tail, self.tail = self.tail, b""
        return tail
