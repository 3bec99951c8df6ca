"""Where the SDK connects to, and with which timeouts (no I/O here).

Resolution order:

1. `api_url` argument, else env `NULLSPACE_API_URL` → TCP, with `api_key` or env
   `NULLSPACE_API_KEY` sent as `X-API-Key`.
2. Otherwise the embedded default: a unix socket at env `NULLSPACE_SOCKET`, else
   `<data dir>/nullspace.sock`, where the data dir is env `NULLSPACE_HOME` or `/var/lib/nullspace`.
   The SDK starts a local server on that socket when none answers (see `_local.py`).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from .._paths import DEFAULT_DATA_DIR, SOCKET_NAME
from .._version import __version__

LOCAL_BASE_URL = "http://nullspace"

DEFAULT_REQUEST_TIMEOUT = 60.0
"""Seconds for ordinary requests (get_info, kill, contexts...)."""

CREATE_REQUEST_TIMEOUT = 600.0
"""Seconds for `Sandbox.create`: the first create of a template may build it."""

STREAM_MARGIN = 30.0
"""Extra seconds the HTTP read timeout of `run_code` allows beyond the run's own `timeout`."""

HEALTH_TIMEOUT = 2.0
"""Seconds a `GET /v1/health` probe may take."""


@dataclass(frozen=True)
class ConnectionConfig:
    """Resolved connection settings of one SDK client.

    Attributes:
        base_url: URL every API path is appended to (`http://nullspace` for the unix socket).
        api_key: Key sent as `X-API-Key`, if any.
        socket_path: The unix socket to connect through, or None for TCP.
        data_dir: The local server's data dir (only meaningful with `socket_path`).
        request_timeout: Default seconds for ordinary requests.
    """

    base_url: str
    api_key: str | None = None
    socket_path: str | None = None
    data_dir: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    @property
    def is_local(self) -> bool:
        """True when talking to the embedded local server over its unix socket."""
        return self.socket_path is not None

    @property
    def tls_verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify` for this connection. One that cannot use TLS (the unix socket, an
        ``http://`` URL) gets a shared context with no CA loaded: httpx would otherwise load the
        CA bundle for every client, ~20 ms of CPU per `Sandbox`."""
        if self.socket_path is not None or self.base_url.startswith("http://"):
            return _no_tls()
        return True

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"User-Agent": f"nullspace-python/{__version__}"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers

    @classmethod
    def resolve(
        cls,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ConnectionConfig:
        """Build the config from arguments, falling back to `NULLSPACE_*` environment variables."""
        env = os.environ if env is None else env
        timeout = DEFAULT_REQUEST_TIMEOUT if request_timeout is None else float(request_timeout)
        key = api_key or env.get("NULLSPACE_API_KEY") or None
        url = api_url or env.get("NULLSPACE_API_URL") or None
        if url:
            return cls(base_url=url.rstrip("/"), api_key=key, request_timeout=timeout)
        data_dir = env.get("NULLSPACE_HOME") or str(DEFAULT_DATA_DIR)
        socket_path = env.get("NULLSPACE_SOCKET") or os.path.join(data_dir, SOCKET_NAME)
        return cls(
            base_url=LOCAL_BASE_URL,
            api_key=key,
            socket_path=socket_path,
            data_dir=data_dir,
            request_timeout=timeout,
        )


@functools.cache
def _no_tls() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies against no CA: TLS would fail closed


def stream_read_timeout(run_timeout: float | None, request_timeout: float) -> float:
    """Seconds allowed between two bytes of an execute stream.

    The server sends a keepalive line every 5 s, so `request_timeout` alone would do; when the run
    has its own `timeout`, the read timeout is stretched past it so the server, not the HTTP
    client, decides when the run is over.
    """
    if run_timeout is None:
        return request_timeout
    return max(request_timeout, float(run_timeout) + STREAM_MARGIN)
