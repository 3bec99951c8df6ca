"""One proxied connection from a sandbox: HTTP proxy requests and CONNECT tunnels.

What arrives on a sandbox's egress socket is hostile. The proxy reads it with h11 (bounded),
takes the name from the ``CONNECT`` target or the absolute URL, checks it against the sandbox's
policy, resolves it itself, refuses non-public addresses, and connects to the address it checked.
TLS inside a tunnel is terminated with a certificate from the sandbox's own CA (the SNI must name
the tunnel's host), and every request inside is read like a plain one: its ``Host`` must be the
tunnel's host, secrets are swapped in for their hosts only, and answers are relayed with h11.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11

from .addresses import forbidden_reason
from .resolver import ResolveError
from .rules import host_port, is_ip_literal, normalize_host
from .secrets import StreamSwapper, swap

if TYPE_CHECKING:
    from .service import EgressService, SandboxEgress

log = logging.getLogger(__name__)

MAX_HEAD = 64 << 10
READ = 256 << 10
HOP_BY_HOP = {b"proxy-connection", b"proxy-authorization", b"proxy-authenticate", b"upgrade", b"keep-alive", b"te"}


class Refused(Exception):
    """The policy refuses this destination; the message names the policy."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(reason)
        self.host, self.port, self.reason = host, port, reason


class UpstreamError(Exception):
    """The destination was allowed but could not be reached (502)."""


class Pipe:
    """One side of a relay; counts bytes against the sandbox's limits (upstream side only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 sb: SandboxEgress | None, idle: float) -> None:
        self.reader, self.writer, self.sb, self.idle = reader, writer, sb, idle

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout(self.idle):
                data = await self.reader.read(READ)
        except TimeoutError:
            return b""
        if self.sb is not None and data:
            await self.sb.account(len(data), inbound=True)
        return data

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self.sb is not None:
            await self.sb.account(len(data), inbound=False)
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


async def next_event(conn: h11.Connection, pipe: Pipe) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await pipe.read())


async def send(conn: h11.Connection, pipe: Pipe, event: object) -> None:
    if isinstance(event, h11.Data) and not event.data:
        return
    data = conn.send(event)
    if data:
        await pipe.write(data)


@dataclass
class Upstream:
    host: str
    port: int
    pipe: Pipe
    conn: h11.Connection

    def reusable(self, host: str, port: int) -> bool:
        return (self.host, self.port) == (host, port) and self.conn.our_state is h11.IDLE


class ProxyConnection:
    def __init__(self, service: EgressService, sb: SandboxEgress,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.service, self.sb = service, sb
        self.client = Pipe(reader, writer, None, service.settings.idle_timeout)
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.upstream: Upstream | None = None
        self.tunnel: tuple[str, int] | None = None  # (host, port) of a CONNECT, TLS terminated here

    async def run(self) -> None:
        try:
            event = await next_event(self.conn, self.client)
            if not isinstance(event, h11.Request):
                return
            if self.sb.policy.mode == "none":
                target = event.target.decode("latin-1")
                host = target if event.method == b"CONNECT" else (urlsplit(target).netloc or target)
                raise Refused(host[:255], 0, "this sandbox has no network access (network policy 'none')")
            if event.method == b"CONNECT":
                await self._connect(event)
            else:
                await self._requests(event)
        except Refused as refusal:
            self.sb.refused(refusal.host, refusal.port, refusal.reason)
            await self._answer(403, f"Refused by nullspace egress policy: {refusal.reason}")
        except UpstreamError as exc:
            await self._answer(502, f"nullspace egress: {exc}")
        except h11.RemoteProtocolError as exc:
            await self._answer(400, f"nullspace egress: bad request ({exc})")
        except (ConnectionError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        finally:
            if self.upstream:
                self.upstream.pipe.close()
            self.client.close()

    async def _answer(self, status: int, message: str) -> None:
        """An error answer, if the client is still waiting for one; else the connection just ends."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE) or self.conn.their_state is h11.ERROR:
            return
        text = message.encode("ascii", "replace").replace(b"\r", b" ").replace(b"\n", b" ")[:400]
        body = text + b"\n"
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"x-nullspace-egress", b"refused" if status == 403 else b"error")]
        with contextlib.suppress(Exception):
            await send(self.conn, self.client, h11.Response(status_code=status, headers=headers, reason=text))
            await send(self.conn, self.client, h11.Data(data=body))
            await send(self.conn, self.client, h11.EndOfMessage())

    # -- checks and connections ------------------------------------------------------------------

    async def _admit(self, host: str, port: int) -> tuple[str, list[str]]:
        """Policy + resolution + address checks; the addresses to connect to."""
        sb, policy = self.sb, self.sb.policy
        sb.check_allowance(host, port)
        if is_ip_literal(host):
            raise Refused(host, port, f"{host} is an IP address; only names on the allow-list are reachable")
        name = normalize_host(host)
        if name is None:
            raise Refused(host, port, f"{host!r} is not a valid host name")
        if not policy.permits(name, port):
            if policy.name_listed(name):
                raise Refused(name, port, f"port {port} is not allowed for {name} (policy: {policy.describe()})")
            raise Refused(name, port, f"{name} is not on this sandbox's allow-list (policy: {policy.describe()})")
        try:
            addresses = await self.service.resolver.resolve(name)
        except ResolveError as exc:
            raise Refused(name, port, str(exc)) from None
        for address in addresses:
            reason = forbidden_reason(address, self.service.private_networks)
            if reason:
                raise Refused(name, port, f"{name} resolves to {reason}")
        return name, [str(a) for a in addresses]

    async def _open(self, host: str, port: int, tls: bool) -> Upstream:
        name, addresses = await self._admit(host, port)
        context = self.service.upstream_tls if tls else None
        last: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(self.service.settings.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        address, port, ssl=context, server_hostname=name if tls else None, limit=READ
                    )
                break
            except ssl.SSLCertVerificationError as exc:
                raise UpstreamError(f"{name}:{port} has no valid certificate ({exc.verify_message})") from None
            except (OSError, TimeoutError) as exc:
                last = exc
        else:
            raise UpstreamError(f"could not connect to {name}:{port} ({last or 'no address'})")
        self.sb.stats.connections += 1
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        return Upstream(name, port, Pipe(reader, writer, self.sb, self.service.settings.idle_timeout), conn)

    async def _connect(self, request: h11.Request) -> None:
        try:
            host, port = host_port(request.target.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise h11.RemoteProtocolError("CONNECT needs a host:port target") from None
        self.upstream = await self._open(host, port, tls=True)
        host = self.upstream.host
        if self.conn.trailing_data[0]:
            raise h11.RemoteProtocolError("data sent before the tunnel was established")
        await send(self.conn, self.client, h11.Response(status_code=200, headers=[], reason=b"Connection established"))
        # From here the client speaks TLS to us; we answer as `host` with the sandbox's CA.
        context = self.sb.ca().server_context(host)
        sni: list[str | None] = []
        context.sni_callback = lambda obj, name, ctx: sni.append(name)  # type: ignore[assignment,misc,return-value]
        await self.client.writer.start_tls(context)
        if sni and sni[0] is not None and sni[0].lower().rstrip(".") != host:
            raise Refused(sni[0], port, f"the TLS server name {sni[0]} is not the tunnel's host {host}")
        self.tunnel = (host, port)
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        event = await next_event(self.conn, self.client)
        if isinstance(event, h11.Request):
            await self._requests(event)

    # -- requests ----------------------------------------------------------------------------------

    async def _requests(self, request: h11.Request) -> None:
        while True:
            await self._exchange(request)
            if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()
            event = await next_event(self.conn, self.client)
            if not isinstance(event, h11.Request):
                return
            request = event

    def _destination(self, request: h11.Request) -> tuple[str, int, bytes]:
        """(host, port, origin-form target) of a request, in a tunnel or as an absolute URL."""
        if self.tunnel:
            host, port = self.tunnel
            target = request.target
            if not target.startswith(b"/"):  # absolute-form inside a tunnel: it must name the tunnel
                url = urlsplit(target.decode("latin-1"))
                if host_port(url.netloc.rpartition("@")[2] or "-", 443) != (host, port):
                    shown = target.decode("latin-1")[:100]
                    raise Refused(host, port, f"the request for {shown} is not for the tunnel's host {host}:{port}")
                target = (url.path or "/").encode("latin-1") + (b"?" + url.query.encode("latin-1") if url.query else b"")
        else:
            url = urlsplit(request.target.decode("latin-1"))
            if url.scheme != "http" or not url.netloc:
                raise h11.RemoteProtocolError(
                    "send an absolute http:// URL, or CONNECT for https (HTTP_PROXY/HTTPS_PROXY do this)"
                )
            host, port = host_port(url.netloc.rpartition("@")[2], 80)
            target = (url.path or "/").encode("latin-1") + (b"?" + url.query.encode("latin-1") if url.query else b"")
        for name, value in request.headers:
            if name == b"host":
                try:
                    named = host_port(value.decode("ascii"), port)
                except (ValueError, UnicodeDecodeError):
                    named = ("", 0)
                if named != (host, port):
                    shown = value.decode("ascii", "replace")[:100]
                    raise Refused(shown, port, f"the Host header {shown!r} is not the destination {host}:{port}")
        return host, port, target

    async def _exchange(self, request: h11.Request) -> None:
        host, port, target = self._destination(request)
        tls = self.tunnel is not None
        swaps, forbidden = self.sb.secrets.outbound(host, tls)
        head = target + b"".join(value for _, value in request.headers)
        leaked = [s for s in forbidden if s.placeholder in head]
        if leaked:
            raise Refused(host, port, self._leak_reason(leaked[0], host, tls))
        headers = [(n, swap(v, swaps)) for n, v in request.headers if n not in HOP_BY_HOP]
        if not any(n == b"host" for n, _ in headers):
            headers.insert(0, (b"host", host.encode() if port in (80, 443) else f"{host}:{port}".encode()))
        if swaps:  # answers are scanned for the real values: no compression
            headers = [(n, v) for n, v in headers if n != b"accept-encoding"] + [(b"accept-encoding", b"identity")]
        if self.upstream is None or not self.upstream.reusable(host, port):
            if tls:
                raise Refused(host, port, "the tunnel's connection to its host has closed")
            if self.upstream:
                self.upstream.pipe.close()
            self.upstream = await self._open(host, port, tls=False)
        up = self.upstream
        await send(up.conn, up.pipe, h11.Request(method=request.method, target=swap(target, swaps), headers=headers))
        body = StreamSwapper(swaps, forbidden)
        while True:
            event = await next_event(self.conn, self.client)
            if isinstance(event, h11.Data):
                data, seen = body.feed(event.data)
                if seen:
                    raise Refused(host, port, self._leak_reason(seen[0], host, tls))
                await send(up.conn, up.pipe, h11.Data(data=data))
            elif isinstance(event, h11.EndOfMessage):
                await send(up.conn, up.pipe, h11.Data(data=body.flush()))
                await send(up.conn, up.pipe, h11.EndOfMessage())
                break
            else:
                raise h11.RemoteProtocolError("the request ended early")
        await self._relay_answer(up, self.sb.secrets.inbound(host) if tls else [])
        if up.conn.our_state is h11.DONE and up.conn.their_state is h11.DONE:
            up.conn.start_next_cycle()

    async def _relay_answer(self, up: Upstream, scrub: list[tuple[bytes, bytes]]) -> None:
        body = StreamSwapper(scrub)
        while True:
            event = await next_event(up.conn, up.pipe)
            if isinstance(event, h11.InformationalResponse):
                await send(self.conn, self.client, event)
            elif isinstance(event, h11.Response):
                headers = [(n, swap(v, scrub)) for n, v in event.headers if n not in HOP_BY_HOP]
                await send(self.conn, self.client, h11.Response(
                    status_code=event.status_code, headers=headers, reason=event.reason))
            elif isinstance(event, h11.Data):
                data, _ = body.feed(event.data)
                await send(self.conn, self.client, h11.Data(data=data))
            elif isinstance(event, h11.EndOfMessage):
                await send(self.conn, self.client, h11.Data(data=body.flush()))
                await send(self.conn, self.client, h11.EndOfMessage())
                return
            else:  # ConnectionClosed before the end: the client sees a truncated answer
                raise ConnectionError("the upstream closed mid-answer")

    def _leak_reason(self, secret: object, host: str, tls: bool) -> str:
        name = getattr(secret, "name", "?")
        hosts = ", ".join(str(h) for h in getattr(secret, "hosts", ()))
        if not tls and getattr(secret, "allowed_for")(host):  # noqa: B009
            return f"secret {name} is only sent over HTTPS, and this request to {host} is plain HTTP"
        return f"the request carries the placeholder of secret {name}, which may only be sent to {hosts}, not {host}"
