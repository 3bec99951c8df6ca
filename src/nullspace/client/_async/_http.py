"""AsyncAPIClient: the SDK's only user of httpx (requests, NDJSON streams, local server start)."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..._exceptions import TransportError
from ..._protocol import ndjson
from .._config import HEALTH_TIMEOUT, ConnectionConfig
from .._errors import json_body, map_errors, raise_for_status
from .._execution import NDJSONDecoder
from .._local import Sleep, asleep, start_flow


class AsyncAPIClient:
    """Thin wrapper over an `httpx.AsyncClient` that speaks the nullspace HTTP API.

    Public for the endpoints `AsyncSandbox` does not wrap (warm pools, a sandbox's logs,
    metrics)::

        async with AsyncAPIClient.from_env() as api:
            pools = await api.request("GET", "/v1/pools")

    Args:
        config: Where to connect.
        http_client: A ready client to use instead of building one (not closed by `aclose`).
        transport: An httpx transport for the client built here (e.g. `httpx.MockTransport`).
    """

    def __init__(
        self,
        config: ConnectionConfig,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._owns_client = http_client is None
        # Only an SDK-built socket client may start the embedded server.
        self._may_start_server = config.is_local and http_client is None and transport is None
        if http_client is None:
            if transport is None:
                transport = httpx.AsyncHTTPTransport(uds=config.socket_path, verify=config.tls_verify)
            http_client = httpx.AsyncClient(
                base_url=config.base_url,
                headers=config.headers,
                timeout=config.request_timeout,
                transport=transport,
            )
        self._client = http_client

    @classmethod
    def from_env(
        cls, api_url: str | None = None, api_key: str | None = None, request_timeout: float | None = None
    ) -> AsyncAPIClient:
        """A client for `api_url` (else env `NULLSPACE_API_URL`, else the local unix socket),
        resolved as `AsyncSandbox.create` does. Call `ensure_server()` to start the local server
        when none answers; `request` alone never starts one."""
        return cls(ConnectionConfig.resolve(api_url, api_key, request_timeout))

    async def __aenter__(self) -> AsyncAPIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    def _timeout(self, timeout: float | None) -> float:
        return self.config.request_timeout if timeout is None else timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return its JSON body (None for 204).

        Raises:
            APIError: the server answered non-2xx (the class is chosen from the body's `code`).
            TransportError: the server could not be reached or the connection broke.
        """
        with map_errors(f"{method} {path}"):
            response = await self._client.request(
                method, path, json=json, params=params, timeout=self._timeout(timeout)
            )
        raise_for_status(response)
        return json_body(response)

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request (its body may be streamed) and return the response with its body
        unread; the caller reads it and must `aclose()` it.

        Raises:
            APIError: the server answered non-2xx (the body is read and closed first).
            TransportError: the server could not be reached or the connection broke.
        """
        with map_errors(f"{method} {path}"):
            request = self._client.build_request(
                method,
                path,
                params=params,
                json=json,
                content=content,
                headers=headers,
                timeout=self._timeout(None) if timeout is None else timeout,
            )
            response = await self._client.send(request, stream=True)
            if not response.is_success:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        raise_for_status(response)
        return response

    async def stream_events(
        self, path: str, body: dict[str, Any], timeout: httpx.Timeout
    ) -> AsyncGenerator[dict[str, Any], None]:
        """POST `body` and yield the NDJSON events of the answer as they arrive."""
        decoder = NDJSONDecoder()
        with map_errors(f"POST {path}"):
            async with self._client.stream("POST", path, json=body, timeout=timeout) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_status(response)
                chunks = response.aiter_bytes()
                async for chunk in chunks:
                    for event in decoder.feed(chunk):
                        if event["type"] in ndjson.FINAL_TYPES:
                            # The server ends the body with this event: reading that end (no
                            # wait) leaves the connection reusable when the caller stops here.
                            async for _ in chunks:
                                pass
                        yield event
                for event in decoder.flush():
                    yield event

    async def healthy(self) -> bool:
        """True when `GET /v1/health` answers 200."""
        socket_path = self.config.socket_path
        if socket_path is not None and not os.path.exists(socket_path):
            return False  # (also spares httpcore a connect that leaks its socket on failure)
        try:
            with map_errors("health check"):
                response = await self._client.get("/v1/health", timeout=HEALTH_TIMEOUT)
        except TransportError:
            return False
        return response.status_code == 200

    async def ensure_server(self) -> None:
        """Start the embedded local server if nothing answers on its socket (no-op otherwise)."""
        if not self._may_start_server:
            return
        flow = start_flow(self.config)
        reply: bool | None = None
        try:
            while True:
                try:
                    action = flow.send(reply)
                except StopIteration:
                    return
                if isinstance(action, Sleep):
                    await asleep(action.seconds)
                    reply = None
                else:
                    reply = await self.healthy()
        finally:
            flow.close()
