"""HTTP over a sandbox's agent socket. The agent is hostile: every reply is bounded and checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from .._exceptions import APIError, ContextNotFoundError, InvalidArgumentError, ServerError

MAX_REPLY_BYTES = 1 << 20
MAX_EVENT_BYTES = 64 << 20       # one NDJSON line (a big PNG is a few MB)
_TRUSTED_CODES = {"invalid_argument": InvalidArgumentError, "context_not_found": ContextNotFoundError}


class AgentError(ServerError):
    """The agent broke the protocol or went away."""


class AgentClient:
    def __init__(self, socket_path: Path) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
            base_url="http://agent",
            timeout=httpx.Timeout(60.0, connect=5.0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def wait_ready(self, timeout: float, exited: asyncio.Future[int]) -> None:
        """Poll /health until the agent says its default kernel is ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if exited.done():
                raise AgentError(f"the sandbox exited during start (code {exited.result()})")
            try:
                health = await self.request("GET", "/health", timeout=2.0)
                if isinstance(health, dict) and health.get("ready") is True:
                    return
            except (AgentError, APIError):
                pass
            await asyncio.sleep(0.01)
        raise AgentError(f"the sandbox agent was not ready within {timeout:.0f} s")

    async def request(self, method: str, path: str, *, json_body: Any = None, timeout: float = 60.0) -> Any:
        try:
            async with self._client.stream(method, path, json=json_body, timeout=timeout) as resp:
                raw = bytearray()
                async for chunk in resp.aiter_raw():
                    raw += chunk
                    if len(raw) > MAX_REPLY_BYTES:
                        raise AgentError("agent reply too large")
        except httpx.HTTPError as exc:
            raise AgentError(f"sandbox agent unreachable: {type(exc).__name__}") from exc
        body = _parse(bytes(raw))
        if resp.status_code >= 400:
            raise _agent_error(resp.status_code, body)
        return body

    async def execute(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield the agent's events one by one; raise AgentError if the stream breaks."""
        try:
            async with self._client.stream("POST", "/execute", json=body, timeout=httpx.Timeout(None, connect=5.0)) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    raise _agent_error(resp.status_code, _parse(raw[:MAX_REPLY_BYTES]))
                async for line in _lines(resp):
                    event = _parse(line)
                    if isinstance(event, dict) and isinstance(event.get("type"), str):
                        yield event
        except httpx.HTTPError as exc:
            raise AgentError(f"lost the sandbox agent mid-run: {type(exc).__name__}") from exc


async def _lines(resp: httpx.Response) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for chunk in resp.aiter_raw():
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
