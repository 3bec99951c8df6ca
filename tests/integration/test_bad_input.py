"""Bad input gets a 4xx with {code, message}; the SDK raises typed errors; nothing is lost."""

from __future__ import annotations

import httpx
import pytest

from nullspace import (
    ContextNotFoundError,
    InvalidArgumentError,
    Sandbox,
    SandboxNotFoundError,
    TemplateNotFoundError,
)


@pytest.fixture
def api(server) -> httpx.Client:  # noqa: ANN001
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n"
    ) as client:
        yield client


def _assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message"} and body["code"] == code, body
    assert body["message"]
    return body["message"]


def test_unknown_template(server) -> None:  # noqa: ANN001
    with pytest.raises(TemplateNotFoundError, match="no-such-template"):
        Sandbox.create(template="no-such-template")


def test_unknown_sandbox(server, api) -> None:  # noqa: ANN001
    with pytest.raises(SandboxNotFoundError):
        Sandbox.connect("sb_doesnotexist")
    _assert_error(api.get("/v1/sandboxes/sb_nope"), 404, "sandbox_not_found")
    _assert_error(
        api.post("/v1/sandboxes/sb_nope/execute", json={"code": "1"}), 404, "sandbox_not_found"
    )


def test_unknown_context(sandbox: Sandbox) -> None:
    with pytest.raises(ContextNotFoundError):
        sandbox.run_code("1", context="ctx-does-not-exist")


def test_malformed_json(api) -> None:  # noqa: ANN001
    resp = api.post(
        "/v1/sandboxes", content=b'{"template": ', headers={"content-type": "application/json"}
    )
    assert "JSON" in _assert_error(resp, 400, "invalid_argument")


def test_negative_and_wrong_typed_values(api) -> None:  # noqa: ANN001
    assert "timeout" in _assert_error(
        api.post("/v1/sandboxes", json={"timeout": -5}), 400, "invalid_argument"
    )
    _assert_error(api.post("/v1/sandboxes", json={"memory_mb": "lots"}), 400, "invalid_argument")
    _assert_error(
        api.post("/v1/sandboxes", json={"envs": {"BAD NAME": "x"}}), 400, "invalid_argument"
    )
    _assert_error(api.post("/v1/sandboxes", json={"unknown_field": 1}), 400, "invalid_argument")
    with pytest.raises(InvalidArgumentError):
        Sandbox.create(timeout=-1)


def test_oversized_body(api, sandbox: Sandbox) -> None:  # noqa: ANN001
    big = {"code": "x" * (20 << 20)}
    _assert_error(
        api.post(f"/v1/sandboxes/{sandbox.sandbox_id}/execute", json=big), 413, "payload_too_large"
    )
    assert sandbox.run_code("'still fine'").text == "still fine"


def test_unknown_language(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidArgumentError, match="python"):
        sandbox.run_code("1", language="cobol")


def test_bad_input_loses_nothing(sandbox: Sandbox, api) -> None:  # noqa: ANN001
    sandbox.run_code("precious = [1, 2, 3]")
    _assert_error(
        api.post(
            f"/v1/sandboxes/{sandbox.sandbox_id}/execute",
            content=b"nope",
            headers={"content-type": "application/json"},
        ),
        400,
        "invalid_argument",
    )
    _assert_error(
        api.post(f"/v1/sandboxes/{sandbox.sandbox_id}/timeout", json={"timeout": 0}),
        400,
        "invalid_argument",
    )
    assert sandbox.run_code("precious").text == "[1, 2, 3]"
    assert sandbox.is_running()


def test_openapi_document(api) -> None:  # noqa: ANN001
    doc = api.get("/openapi.json").json()
    assert "/v1/sandboxes" in doc["paths"] and "/v1/sandboxes/{sandbox_id}/execute" in doc["paths"]
