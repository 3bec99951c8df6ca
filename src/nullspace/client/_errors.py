"""The one boundary where httpx exceptions and HTTP error responses become `NullspaceError`s.

Every httpx call in the SDK runs inside `map_errors()`; every response goes through
`raise_for_status()`. No `httpx.*` exception reaches users.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .._exceptions import APIError, ServerError, TransportError, error_for


@contextmanager
def map_errors(what: str = "request") -> Iterator[None]:
    """Translate httpx exceptions raised inside the block into `TransportError` (chained).

    Args:
        what: Short description of the operation, used in the message ("request", "stream").
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransportError(f"{what} timed out ({type(exc).__name__}): {exc}") from exc
    except httpx.HTTPError as exc:  # ConnectError, ReadError, RemoteProtocolError, ...
        detail = str(exc) or type(exc).__name__
        raise TransportError(f"{what} failed: {detail}") from exc
    except httpx.StreamError as exc:  # StreamClosed, ResponseNotRead, ...
        raise TransportError(f"{what} failed: {exc}") from exc
    except httpx.InvalidURL as exc:
        raise TransportError(f"invalid URL: {exc}") from exc


def error_from_body(status_code: int, content: bytes) -> APIError:
    """Build the `APIError` for a non-2xx response from its raw body."""
    body: Any
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = content.decode("utf-8", "replace")[:2000]
    return error_for(status_code, body)


def raise_for_status(response: httpx.Response) -> None:
    """Raise the mapped `APIError` when `response` (already read) is not a 2xx."""
    if not response.is_success:
        raise error_from_body(response.status_code, response.content)


def json_body(response: httpx.Response) -> Any:
    """The JSON body of a successful response; `ServerError` when it is not JSON."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        snippet = response.text[:200]
        raise ServerError(
            f"server answered {response.status_code} with a body that is not JSON: {snippet!r}",
            status_code=response.status_code,
        ) from exc
