"""What E2B's SDKs expect on the wire: ports, error bodies, the proxy's "not found" answers.

References are to /work/shared/reference/e2b-protocol.md (§ numbers) and the SDK wheels it cites.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import Send

from ..._exceptions import InvalidArgumentError

ENVD_PORT = 49983
INTERPRETER_PORT = 49999
# The control plane's error body (§2.1): `code` is the HTTP status as an int; the SDK maps 401,
# 429 and 503 to its exceptions and keys on `message` for the rest. `error_code` carries ours.
JSON = (b"content-type", b"application/json")


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); InvalidArgumentError otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgumentError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("the body must be a JSON object")
    return data


def error_body(status: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message}
    if error_code:
        body["error_code"] = error_code
    return body


async def send_json(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    raw = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [JSON, (b"content-length", str(len(raw)).encode()), *(headers or [])],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": raw})


async def sandbox_not_found(send: Send, sandbox_id: str, message: str = "The sandbox was not found") -> None:
    """E2B's proxy answer for an unknown, killed or (here) inaccessible sandbox (§3.3). The SDK keys
    on "was not found" (SandboxNotRunningException; `is_running()` returns False on a 502)."""
    body = {"sandboxId": sandbox_id, "message": message, "code": 502}
    await send_json(send, 502, body, [(b"should-retry", b"false")])


async def port_not_open(send: Send, sandbox_id: str, port: str) -> None:
    """E2B's proxy answer for a port nothing listens on in a running sandbox (§3.3)."""
    body = {"sandboxId": sandbox_id, "message": "The sandbox is running but port is not open",
            "port": port, "code": 502}  # fmt: skip
    await send_json(send, 502, body, [(b"should-retry", b"false")])
