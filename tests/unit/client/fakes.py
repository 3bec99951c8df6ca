"""A scripted stand-in for the nullspace server, used through `httpx.MockTransport`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(*events: dict[str, Any]) -> bytes:
    """Encode events the way the server does (ASCII only, one per line)."""
    return b"".join(json.dumps(e, ensure_ascii=True).encode() + b"\n" for e in events)


def error(status: int, code: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message})


# A realistic run: print, display(image), a last expression, a limit hit, keepalives.
RUN_EVENTS: list[dict[str, Any]] = [
    {"type": "number_of_executions", "execution_count": 3},
    {"type": "stdout", "text": "hello\n", "timestamp": "2026-01-01T00:00:00Z"},
    {"type": "keepalive"},
    {"type": "stderr", "text": "warn\n", "timestamp": "2026-01-01T00:00:01Z"},
    {
        "type": "result",
        "data": {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="},
        "is_main_result": False,
        "metadata": {},
    },
    {"type": "limit", "resource": "memory", "limit": 1024, "message": "close to the limit"},
    {"type": "future_event", "x": 1},
    {"type": "stdout", "text": "bye\n", "timestamp": "2026-01-01T00:00:02Z"},
    {"type": "result", "data": {"text/plain": "2"}, "is_main_result": True},
    {"type": "end_of_execution", "status": "ok"},
]


class FakeAPI:
    """Answer nullspace API requests from in-memory state; record every request.

    Attributes:
        requests: Every request received, in order.
        execute: Builds the answer of `POST .../execute` (default: `RUN_EVENTS`).
        fail: When set, `(path_suffix, response)`: requests whose path ends with it get `response`.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.sandboxes: dict[str, dict[str, Any]] = {}
        self.contexts: list[dict[str, str]] = []
        self.execute: Callable[[httpx.Request], httpx.Response] = lambda request: httpx.Response(
            200, content=ndjson(*RUN_EVENTS), headers=NDJSON
        )
        self.fail: tuple[str, httpx.Response] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def add(self, sandbox_id: str, **fields: Any) -> dict[str, Any]:
        info = {
            "sandbox_id": sandbox_id,
            "template": "code-interpreter",
            "state": "running",
            "created_at": "2026-01-01T00:00:00+00:00",
            "end_at": "2026-01-01T00:05:00+00:00",
            "metadata": {},
            "env_keys": [],
            "cpu": 1.0,
            "memory_mb": 1024,
            "end_reason": None,
        }
        info.update(fields)
        self.sandboxes[sandbox_id] = info
        return info

    def bodies(self, method: str, suffix: str) -> list[Any]:
        """JSON bodies of the recorded requests matching method and path suffix."""
        return [
            json.loads(r.content) if r.content else None
            for r in self.requests
            if r.method == method and r.url.path.endswith(suffix)
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if self.fail and path.endswith(self.fail[0]):
            return self.fail[1]
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        body = json.loads(request.content) if request.content else {}
        if parts == ["health"]:
            return httpx.Response(200, json={"status": "ok", "version": "test"})
        if parts == ["sandboxes"] and request.method == "POST":
            info = self.add(f"sb_{len(self.sandboxes) + 1}", template=body.get("template", ""))
            info["metadata"] = body.get("metadata") or {}
            info["env_keys"] = sorted(body.get("envs") or {})
            return httpx.Response(201, json=info)
        if parts == ["sandboxes"]:
            params = request.url.params.multi_items()
            wanted = {k[9:]: v for k, v in params if k.startswith("metadata.")}
            found = [s for s in self.sandboxes.values() if wanted.items() <= s["metadata"].items()]
            return httpx.Response(200, json=found)
        sandbox = self.sandboxes.get(parts[1])
        if sandbox is None or (request.method != "GET" and sandbox["state"] != "running"):
            return error(404, "sandbox_not_found", f"sandbox {parts[1]} not found")
        return self._sandbox(request, sandbox, parts[2:], body)

    def _sandbox(
        self, request: httpx.Request, sandbox: dict[str, Any], rest: list[str], body: Any
    ) -> httpx.Response:
        method = request.method
        if not rest:
            if method == "DELETE":
                sandbox["state"] = "killed"
                return httpx.Response(204)
            return httpx.Response(200, json=sandbox)
        if rest == ["timeout"]:
            sandbox["end_at"] = "2026-01-01T01:00:00+00:00"
            return httpx.Response(200, json=sandbox)
        if rest == ["execute"]:
            return self.execute(request)
        if rest == ["contexts"] and method == "POST":
            ctx = {
                "id": f"ctx_{len(self.contexts) + 1}",
                "language": body.get("language", "python"),
                "cwd": body.get("cwd", "/home/user"),
            }
            self.contexts.append(ctx)
            return httpx.Response(201, json=ctx)
        if rest == ["contexts"]:
            return httpx.Response(200, json=self.contexts)
        ctx = next((c for c in self.contexts if c["id"] == rest[1]), None)
        if ctx is None:
            return error(404, "context_not_found", f"context {rest[1]} not found")
        if rest[2:] == ["restart"]:
            return httpx.Response(200, json=ctx)
        self.contexts.remove(ctx)
        return httpx.Response(204)
