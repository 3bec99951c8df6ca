"""Name resolution on the trusted side: the sandbox never resolves names for the proxy.

The system resolver by default; a given DNS server (``egress.dns`` in the server's settings:
``IP`` or ``IP:PORT``) through dnspython otherwise, with its TTL-bounded cache. Caching cannot
weaken the address checks: the proxy checks the addresses of every connection it makes, wherever
they came from.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from .addresses import IPAddress

LIFETIME = 5.0


class ResolveError(Exception):
    """The name does not resolve (the message says why)."""


class Resolver:
    def __init__(self, server: str | None = None) -> None:
        self._dns = None
        if server:
            import dns.asyncresolver
            import dns.resolver

            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host or server]
            resolver.port = int(port or 53)
            resolver.lifetime = LIFETIME
            resolver.cache = dns.resolver.Cache()
            self._dns = resolver

    async def resolve(self, host: str) -> list[IPAddress]:
        if self._dns is None:
            return await self._system(host)
        import dns.exception
        import dns.resolver

        async def query(kind: str) -> list[IPAddress]:
            try:
                answer = await self._dns.resolve(host, kind, search=False)  # type: ignore[union-attr]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                return []
            return [ipaddress.ip_address(r.address) for r in answer]

        try:
            found = [a for batch in await asyncio.gather(query("A"), query("AAAA")) for a in batch]
        except dns.exception.DNSException as exc:
            raise ResolveError(f"{host} could not be resolved ({type(exc).__name__})") from None
        if not found:
            raise ResolveError(f"{host} does not resolve")
        return found

    async def _system(self, host: str) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(LIFETIME):
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise ResolveError(f"{host} does not resolve ({exc})") from None
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
