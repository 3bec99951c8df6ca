"""Tenants: every /v1 route serves a key only its own tenant's sandboxes; quotas; file modes.

The isolation walk enumerates the routes from the server's own OpenAPI document, so a route
added later is walked too: a foreign key must get exactly the 404 an unknown id gets.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from nullspace import QuotaExceededError, Sandbox
from nullspace.cli import app as cli

from .conftest import ServerHandle

UNKNOWN = "sb_00000000deadbeef"


def keys(server: ServerHandle, *args: str) -> str:
    """Run `nullspace keys ARGS --data-dir <server's>`; the output (a new key is its last line)."""
    result = CliRunner().invoke(cli, ["keys", *args, "--data-dir", str(server.data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def new_tenant(server: ServerHandle, *quota_args: str) -> tuple[str, str]:
    name = f"t{time.monotonic_ns() % 10**12}"
    keys(server, "tenant", "create", name, *quota_args)
    return name, keys(server, "create", f"{name}-key", "--tenant", name).strip().splitlines()[-1]


class Api:
    def __init__(self, server: ServerHandle, key: str) -> None:
        self.client = httpx.Client(base_url=server.tcp_url, headers={"X-API-Key": key}, timeout=60)

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response, read whole; an event stream (it never ends) only up to its headers."""
        response = self.client.send(self.client.build_request(method, url, **kwargs), stream=True)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
        finally:
            response.close()
        return response


# -- building a valid request for every operation of the OpenAPI document --------------------
def example(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A minimal value that satisfies `schema` (required fields only)."""
    if "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return example(doc, target)
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            options = [s for s in schema[combo] if s.get("type") != "null"]
            return example(doc, options[0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: example(doc, schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [example(doc, schema.get("items", {}))] * max(1, schema.get("minItems", 0))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    return "x"


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path.startswith("/v1/") and method in ("get", "post", "put", "delete", "patch"):
                yield method.upper(), path, op


def request_for(doc: dict[str, Any], method: str, path: str, op: dict[str, Any],
                ids: dict[str, str]) -> dict[str, Any]:
    """A well-formed request: path parameters from `ids`, required query parameters and body."""
    url = path
    for name, value in ids.items():
        url = url.replace("{" + name + "}", value)
    assert "{" not in url, f"{method} {path}: a path parameter this walk does not know: add it to ids"
    params = {p["name"]: str(example(doc, p.get("schema", {})))
              for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")}
    kwargs: dict[str, Any] = {"params": params}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = example(doc, content["application/json"]["schema"])
    elif "application/octet-stream" in content:
        kwargs["content"] = b"data"
    return {"method": method, "url": url, **kwargs}


def same_as_unknown(api: Api, req: dict[str, Any], sandbox_id: str) -> None:
    foreign = api.call(**req)
    unknown = api.call(**{**req, "url": req["url"].replace(sandbox_id, UNKNOWN)})
    where = f"{req['method']} {req['url']}"
    assert unknown.status_code == 404, (where, unknown.status_code, unknown.text)
    assert foreign.status_code == 404, (where, foreign.status_code, foreign.text)
    assert foreign.json() == {"code": "sandbox_not_found", "message": f"sandbox {sandbox_id} does not exist"}
    assert foreign.content.replace(sandbox_id.encode(), UNKNOWN.encode()) == unknown.content, where
    assert foreign.headers["content-type"] == unknown.headers["content-type"], where


# -- the tests ---------------------------------------------------------------------------------
def test_every_route_hides_another_tenants_sandbox(server: ServerHandle) -> None:
    _, key_a = new_tenant(server)
    _, key_b = new_tenant(server)
    a, b = Api(server, key_a), Api(server, key_b)
    doc = a.call("GET", "/openapi.json").json()

    owned = Sandbox.create(api_url=server.tcp_url, api_key=key_a, timeout=120, envs={"SECRET": "a-secret"})
    try:
        sid = owned.sandbox_id
        ctx = owned.create_context(language="python").id
        cmd = owned.commands.run("echo hi", background=True)
        cmd.wait()
        ids = {"sandbox_id": sid, "context_id": ctx, "command_id": cmd.id}
        walked = []
        for method, path, op in operations(doc):
            if "{sandbox_id}" not in path:
                continue
            walked.append(f"{method} {path}")
            same_as_unknown(b, request_for(doc, method, path, op, ids), sid)
        assert len(walked) >= 22, walked  # every sandbox route of today, at least

        # B's list does not show it; A's and the admin's (unix socket) do
        assert sid not in {s["sandbox_id"] for s in b.call("GET", "/v1/sandboxes").json()}
        assert sid in {s["sandbox_id"] for s in a.call("GET", "/v1/sandboxes").json()}
        assert sid in {s.sandbox_id for s in Sandbox.list()}

        # none of B's calls touched it (the DELETE, the timeout, the command kill above)
        assert owned.is_running()
        assert owned.run_code("import os; os.environ['SECRET']").text == "a-secret"

        # A's own requests, built the same way, get past the sandbox lookup on every route
        for method, path, op in operations(doc):
            if "{sandbox_id}" not in path or (method, path) == ("DELETE", "/v1/sandboxes/{sandbox_id}"):
                continue
            req = request_for(doc, method, path, op, ids)
            if path.endswith("/timeout"):
                req["json"] = {"timeout": 120}
            if path.endswith("/packages"):
                req["json"] = {"packages": ["--index-url=http://x"]}  # refused before any download
            reply = a.call(**req)
            assert reply.status_code < 500, (method, path, reply.text)
            if reply.status_code >= 400:
                assert reply.json()["code"] != "sandbox_not_found", (method, path, reply.text)
    finally:
        owned.kill()

    # ended: A learns how it ended, B still sees nothing at all, on every route
    assert a.call("GET", f"/v1/sandboxes/{sid}").json()["state"] == "killed"
    for method, path, op in operations(doc):
        if "{sandbox_id}" in path:
            same_as_unknown(b, request_for(doc, method, path, op, ids), sid)


def test_admin_keys_see_every_tenant(server: ServerHandle) -> None:
    _, key_a = new_tenant(server)
    admin = Api(server, keys(server, "create", "ops", "--admin").strip().splitlines()[-1])
    with Sandbox.create(api_url=server.tcp_url, api_key=key_a, timeout=60) as owned:
        assert admin.call("GET", f"/v1/sandboxes/{owned.sandbox_id}").status_code == 200
        assert owned.sandbox_id in {s["sandbox_id"] for s in admin.call("GET", "/v1/sandboxes").json()}
        assert admin.call("DELETE", f"/v1/sandboxes/{owned.sandbox_id}").status_code == 204
        assert not owned.is_running()
    # only admins delete templates
    reply = Api(server, key_a).call("DELETE", "/v1/templates/code-interpreter")
    assert (reply.status_code, reply.json()["code"]) == (403, "forbidden")


def test_quotas_refuse_with_the_limit_named(server: ServerHandle) -> None:
    name, key = new_tenant(server, "--max-sandboxes", "1", "--max-cpu", "1.5",
                           "--max-memory-mb", "1536", "--max-lifetime", "600")
    opts = {"api_url": server.tcp_url, "api_key": key}
    with Sandbox.create(timeout=60, cpu=1, memory_mb=1024, **opts) as first:
        with pytest.raises(QuotaExceededError, match="max_sandboxes") as err:
            Sandbox.create(timeout=60, **opts)
        assert err.value.status_code == 429 and "at most 1 sandboxes" in err.value.message
        keys(server, "tenant", "set", name, "--max-sandboxes", "5")
        with pytest.raises(QuotaExceededError, match="max_cpu"):
            Sandbox.create(timeout=60, cpu=1, memory_mb=256, **opts)
        with pytest.raises(QuotaExceededError, match="max_memory_mb"):
            Sandbox.create(timeout=60, cpu=0.5, memory_mb=1024, **opts)
        with pytest.raises(QuotaExceededError, match="max_lifetime"):
            Sandbox.create(timeout=601, cpu=0.5, memory_mb=256, **opts)
        with pytest.raises(QuotaExceededError, match="max_lifetime"):
            first.set_timeout(700)
        with Sandbox.create(timeout=60, cpu=0.5, memory_mb=512, **opts) as second:  # fits exactly
            assert second.run_code("1 + 1").text == "2"
        assert first.run_code("2 + 2").text == "4"
    # the quota counts running sandboxes: once they ended, there is room again
    with Sandbox.create(timeout=60, cpu=1.5, memory_mb=1536, **opts) as again:
        assert again.is_running()
    keys(server, "tenant", "set", name, "--max-cpu", "none")
    assert "│ -" in keys(server, "tenant", "list")


def test_server_files_are_not_world_readable(server: ServerHandle) -> None:
    with Sandbox.create(timeout=60) as sb:
        sb.run_code("1")
        data = server.data_dir
        assert stat.S_IMODE(os.stat(data).st_mode) & 0o077 == 0o011  # traverse only, never list
        for name in ("state.db", "state.db-wal", "state.db-shm", "server.log", "nullspace.sock"):
            mode = stat.S_IMODE(os.stat(data / name).st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
