"""HTTP over a sandbox's agent socket. The agent is hostile: every reply is bounded and checked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .._exceptions import (
    APIError,
    ConflictError,
    ContextNotFoundError,
    DiskFullError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    ServerError,
)
from .._protocol import ndjson

MAX_REPLY_BYTES = 1 << 20
MAX_EVENT_BYTES = 64 << 20       # one NDJSON line (a big PNG is a few MB)
DRAIN_SECONDS = 1.0              # for the end of a body after its final event
HEALTH_LONG_POLL = 10.0          # seconds one /health?wait= request may wait for the boot
# Deadlines of the server's own (the agent is hostile and may be stopped by code in its sandbox):
CHECK_INTERVAL = 1.0             # while a request is silent this long, ask the kernel how the agent is
FIRST_BYTE_SECONDS = 75.0        # a stream's response head (a run may first start a kernel: 60 s at most)
SILENCE_SECONDS = 15.0           # a stream with no byte for this long (the agent sends keepalives every 5 s)
NO_DEADLINE = float("inf")       # an upload: as long as bytes move and the agent runs
# Plain HTTP over a unix socket: without this, httpx loads the CA bundle for every sandbox (~20 ms
# of the event loop). No CA is loaded, so TLS, were it ever attempted, would fail closed.
_NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_JSON_HEADERS = {"content-type": "application/json"}
_STREAM_TIMEOUT = {"connect": 5.0, "read": None, "write": None, "pool": None}  # runs may be long
_TRUSTED_CODES = {
    "invalid_argument": InvalidArgumentError,
    "context_not_found": ContextNotFoundError,
    "not_found": NotFoundError,  # a file or command of the sandbox
    "conflict": ConflictError,
    "disk_full": DiskFullError,
    "integrity_error": IntegrityError,
}


T = TypeVar("T")


class AgentError(ServerError):
    """The agent broke the protocol or went away."""

    event_name = "AgentError"  # the error event of a run it broke


class AgentUnresponsive(AgentError):
    """The agent did not answer within a deadline, or its process is stopped or gone."""

    status_code = 504
    default_code = "sandbox_unresponsive"
    event_name = "SandboxUnresponsive"


class AgentClient:
    """`check()`: None while the agent's process runs, else why it cannot answer (asked of the
    kernel: `runtime.agent_watch`); consulted once a second while a request is silent."""

    def __init__(self, socket_path: Path, check: Callable[[], str | None] | None = None) -> None:
        self._check = check
        self._transport = httpx.AsyncHTTPTransport(uds=str(socket_path), verify=_NO_TLS)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            base_url="http://agent",
            timeout=httpx.Timeout(60.0, connect=5.0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def wait_ready(self, timeout: float, exited: asyncio.Future[int]) -> None:
        """Wait until the agent says its default kernel is ready.

        ``/health?wait=S`` answers when the agent's boot ends, so one request usually does: the
        listening socket exists before the agent, and the connection waits in its backlog. A boot
        that failed is reported at once, with the agent's reason.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            wait = min(left, HEALTH_LONG_POLL)
            ask = asyncio.ensure_future(self.request("GET", f"/health?wait={wait:.3f}", timeout=wait + 5.0))
            await asyncio.wait({ask, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not ask.done():
                ask.cancel()
                with contextlib.suppress(BaseException):
                    await ask
            if exited.done():
                raise AgentError(f"the sandbox exited during start (code {exited.result()})")
            try:
                health = ask.result()
            except (AgentError, APIError):
                await asyncio.sleep(0.05)  # not answering yet, or a broken reply: ask again
                continue
            if isinstance(health, dict) and health.get("ready") is True:
                return
            if isinstance(health, dict) and isinstance(health.get("error"), str):
                raise AgentError(f"the sandbox's default kernel did not start: {health['error'][:2000]}")
        raise AgentError(f"the sandbox agent was not ready within {timeout:.0f} s")

    async def request(self, method: str, path: str, *, json_body: Any = None, timeout: float = 60.0) -> Any:
        """One JSON request, answered within `timeout` seconds in all (or AgentUnresponsive)."""

        async def ask() -> tuple[int, bytes]:
            async with self._client.stream(method, path, json=json_body, timeout=timeout) as resp:
                return resp.status_code, await _bounded(resp)

        try:
            status, raw = await self._within(ask(), timeout, f"{method} {path.split('?')[0]}")
        except httpx.HTTPError as exc:
            raise AgentError(f"sandbox agent unreachable: {type(exc).__name__}") from exc
        body = _parse(raw)
        if status >= 400:
            raise _agent_error(status, body)
        return body

    async def _within(self, step: Awaitable[T], seconds: float, what: str) -> T:
        """Await `step`, at most `seconds`; while it is silent, check the agent once a second, so
        a stopped agent fails the request in about a second instead of a deadline's wait."""
        task = asyncio.ensure_future(step)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=min(CHECK_INTERVAL, max(0.0, end - loop.time())))
                if done:
                    return task.result()
                reason = self._check() if self._check is not None else None
                if reason is None and loop.time() >= end:
                    reason = f"no answer within {seconds:.0f} s"
                if reason is not None:
                    raise AgentUnresponsive(f"sandbox agent unresponsive ({what}): {reason}")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _chunks(self, resp: httpx.Response, what: str) -> AsyncIterator[bytes]:
        """The response's raw bytes, each within SILENCE_SECONDS of the last."""
        raw = resp.aiter_raw()
        while True:
            try:
                chunk = await self._within(anext(raw), SILENCE_SECONDS, what)
            except StopAsyncIteration:
                return
            yield chunk

    @contextlib.asynccontextmanager
    async def _open_stream(self, method: str, path: str, json_body: Any) -> AsyncIterator[httpx.Response]:
        """A streamed request sent straight through the transport (same connection pool). The
        client's per-request work (URL merging, cookies, auth, redirects) costs ~0.4 ms, a tenth
        of a warm run (measured), and buys nothing on a private unix socket."""
        request = httpx.Request(
            method, f"http://agent{path}", content=json.dumps(json_body).encode(),
            headers=_JSON_HEADERS, extensions={"timeout": _STREAM_TIMEOUT},
        )  # fmt: skip
        response = await self._within(self._transport.handle_async_request(request), FIRST_BYTE_SECONDS, path)
        try:
            yield response
        finally:
            await response.aclose()

    async def execute(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield the agent's events one by one; raise AgentError if the stream breaks."""
        try:
            async with self._open_stream("POST", "/execute", body) as resp:
                if resp.status_code >= 400:
                    raise _agent_error(resp.status_code, _parse(await _bounded(resp)))
                async for event in _events(self._chunks(resp, "a run")):
                    yield event
        except httpx.HTTPError as exc:
            raise AgentError(f"lost the sandbox agent mid-run: {type(exc).__name__}") from exc

    # -- commands and files (server/routes/commands.py, files.py) ---------------------------

    async def stream(self, method: str, path: str, json_body: Any = None) -> AsyncIterator[dict[str, Any]]:
        """Like `execute` for any NDJSON endpoint: events with a string ``type``, nothing else."""
        try:
            async with self._open_stream(method, path, json_body) as resp:
                if resp.status_code >= 400:
                    raise _agent_error(resp.status_code, _parse(await _bounded(resp)))
                async for event in _events(self._chunks(resp, path)):
                    yield event
        except httpx.HTTPError as exc:
            raise AgentError(f"lost the sandbox agent mid-stream: {type(exc).__name__}") from exc

    @contextlib.asynccontextmanager
    async def download(self, params: dict[str, str]) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """``GET /files``: (size the agent announced, its bytes). Never more than that size, and
        a short body is an error, so the caller may pass the size on as Content-Length."""
        try:
            request = self._client.build_request("GET", "/files", params=params, timeout=httpx.Timeout(60.0, connect=5.0))
            resp = await self._within(self._client.send(request, stream=True), FIRST_BYTE_SECONDS, "GET /files")
            async with contextlib.AsyncExitStack() as stack:
                stack.push_async_callback(resp.aclose)
                if resp.status_code >= 400:
                    raise _agent_error(resp.status_code, _parse(await _bounded(resp)))
                length = resp.headers.get("content-length", "")
                if resp.status_code != 200 or not length.isdigit() or len(length) > 18:
                    raise AgentError("the sandbox agent sent a file without a valid Content-Length")
                size = int(length)

                async def body() -> AsyncIterator[bytes]:
                    sent = 0
                    try:
                        async for chunk in self._chunks(resp, "a download"):
                            sent += len(chunk)
                            if sent > size:
                                raise AgentError("the sandbox agent sent more than it announced")
                            yield chunk
                    except httpx.HTTPError as exc:
                        raise AgentError(f"lost the sandbox agent mid-download: {type(exc).__name__}") from exc
                    if sent != size:
                        raise AgentError(f"the sandbox agent sent {sent} of {size} bytes")

                yield size, body()
        except httpx.HTTPError as exc:
            raise AgentError(f"sandbox agent unreachable: {type(exc).__name__}") from exc

    async def upload(self, params: dict[str, str], content: AsyncIterator[bytes], headers: dict[str, str]) -> Any:
        """``PUT /files`` with a streamed body; the agent's (bounded) JSON answer."""
        timeout = httpx.Timeout(120.0, connect=5.0)

        async def send() -> tuple[int, bytes]:
            async with self._client.stream("PUT", "/files", params=params, content=content, headers=headers,
                                           timeout=timeout) as resp:
                return resp.status_code, await _bounded(resp)

        try:
            status, raw = await self._within(send(), NO_DEADLINE, "an upload")
        except httpx.HTTPError as exc:
            raise AgentError(f"lost the sandbox agent mid-upload: {type(exc).__name__}") from exc
        body = _parse(raw)
        if status >= 400:
            raise _agent_error(status, body)
        return body


async def _bounded(resp: httpx.Response) -> bytes:
    raw = bytearray()
    async for chunk in resp.aiter_raw():
        raw += chunk
        if len(raw) > MAX_REPLY_BYTES:
            raise AgentError("agent reply too large")
    return bytes(raw)


async def _events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The NDJSON events of a response: objects with a string ``type``, nothing else.

    A final event is yielded only after the rest of the body was read, so the connection goes
    back to the pool. The agent sends that end with the event: this costs no wait. An agent that
    stalls or sends more only loses the connection (bounded by time and size).
    """
    lines = _lines(chunks)
    async for line in lines:
        event = _parse(line)
        if not (isinstance(event, dict) and isinstance(event.get("type"), str)):
            continue
        if event["type"] in ndjson.FINAL_TYPES:
            await _drain(lines)
            yield event
            return
        yield event


async def _drain(lines: AsyncIterator[bytes]) -> None:
    read = 0
    with contextlib.suppress(TimeoutError, AgentError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for line in lines:
                read += len(line)
                if read > MAX_REPLY_BYTES:
                    return


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for chunk in chunks:
        start = len(buf)
        buf += chunk
        while (i := buf.find(b"\n", start)) >= 0:
            yield bytes(buf[:i])
            del buf[: i + 1]
            start = 0
        if len(buf) > MAX_EVENT_BYTES:
            raise AgentError("agent sent an oversized event")
    if buf.strip():
        yield bytes(buf)


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def _agent_error(status: int, body: Any) -> APIError:
    if isinstance(body, dict) and body.get("code") in _TRUSTED_CODES:
        message = str(body.get("message", ""))[:2000]
        return _TRUSTED_CODES[body["code"]](message)
    return AgentError(f"sandbox agent error (HTTP {status})")
