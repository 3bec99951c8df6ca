"""The OpenAPI document is the truth: a property run (schemathesis) over every operation, bounded
in time, with zero 5xx and zero answers that break the document; and the HTTP edge cases the
document cannot express (malformed HTTP, 405, chunked bodies over the limit)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx
import pytest
from typer.testing import CliRunner

from nullspace.cli import app as cli

from .conftest import ServerHandle

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

BUDGET_SECONDS = 55.0
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _tenant_key(server: ServerHandle) -> str:
    """A tenant of its own, whose quotas keep what the run creates small and short-lived."""
    name = f"contract{time.monotonic_ns() % 10**9}"
    runner = CliRunner()
    for args in (["tenant", "create", name, "--max-sandboxes", "1", "--max-lifetime", "30"],
                 ["create", f"{name}-key", "--tenant", name]):
        result = runner.invoke(cli, ["keys", *args, "--data-dir", str(server.data_dir)])
        assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_property_run_over_the_openapi_document(server: ServerHandle) -> None:
    key = _tenant_key(server)
    headers = {"X-API-Key": key}
    schema = schemathesis.openapi.from_url(f"{server.tcp_url}/openapi.json", headers=headers)
    started = time.monotonic()
    failures: list[str] = []
    ran = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if time.monotonic() - started > BUDGET_SECONDS:
                break

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case) -> None:  # noqa: ANN001
                response = case.call(base_url=server.tcp_url, headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS)

            ran += 1
            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation's first failure
                failures.append(f"{operation.label}: {exc}"[:3000])
    finally:
        with httpx.Client(base_url=server.tcp_url, headers=headers) as client:
            for sandbox in client.get("/v1/sandboxes?state=running").json():
                client.delete(f"/v1/sandboxes/{sandbox['sandbox_id']}")
    assert ran >= 30, f"only {ran} operations ran in the time budget"
    assert not failures, "\n\n".join(failures)


def _raw(server: ServerHandle, request: bytes) -> bytes:
    url = urlparse(server.tcp_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_malformed_http_gets_a_json_400(server: ServerHandle) -> None:
    for request in (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"NOT HTTP AT ALL\r\n\r\n"):
        reply = _raw(server, request)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), reply
        assert b"content-type: application/json" in head.lower(), reply
        assert b'"code": "invalid_argument"' in body and b"malformed HTTP request" in body, reply


def test_405_names_every_allowed_method(server: ServerHandle) -> None:
    reply = httpx.put(f"{server.tcp_url}/v1/sandboxes", headers={"X-API-Key": server.api_key}, json={})
    assert reply.status_code == 405
    assert reply.json()["code"] == "method_not_allowed"
    assert set(reply.headers["allow"].split(", ")) == {"GET", "POST"}


def test_a_chunked_body_over_the_limit_is_413(server: ServerHandle) -> None:
    def body():  # noqa: ANN202 - no Content-Length: chunked
        for _ in range(17):
            yield b" " * (1 << 20)

    try:
        reply = httpx.post(f"{server.tcp_url}/v1/sandboxes", content=body(), timeout=30,
                           headers={"X-API-Key": server.api_key, "content-type": "application/json"})
    except httpx.WriteError:
        pytest.fail("the server reset the connection instead of answering 413")
    assert (reply.status_code, reply.json()["code"]) == (413, "payload_too_large")


def test_limits_are_in_the_document(server: ServerHandle) -> None:
    doc = httpx.get(f"{server.tcp_url}/openapi.json").json()
    create = doc["components"]["schemas"]["CreateSandbox"]["properties"]
    bounds = {name: next(s for s in create[name]["anyOf"] if s.get("type") != "null") for name in
              ("timeout", "cpu", "memory_mb", "disk_mb", "envs")}
    assert bounds["timeout"]["maximum"] == 24 * 3600 and bounds["cpu"]["minimum"] == 0.1
    assert "maximum" in bounds["memory_mb"] and "maximum" in bounds["disk_mb"]
    assert "patternProperties" in bounds["envs"]
    mkdir = doc["paths"]["/v1/sandboxes/{sandbox_id}/files/mkdir"]["post"]["responses"]
    assert {"200", "201"} <= set(mkdir)
    reply = httpx.post(f"{server.tcp_url}/v1/sandboxes", headers={"X-API-Key": server.api_key},
                       json={"timeout": True})
    assert reply.status_code == 400 and "timeout" in reply.json()["message"]
