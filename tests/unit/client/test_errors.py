from __future__ import annotations

import httpx
import pytest

import nullspace
from nullspace.client._errors import error_from_body, json_body, map_errors, raise_for_status


@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (httpx.ConnectError("refused"), "failed: refused"),
        (httpx.ReadTimeout("slow"), "timed out"),
        (httpx.PoolTimeout("pool"), "timed out"),
        (httpx.RemoteProtocolError("peer closed"), "peer closed"),
        (httpx.UnsupportedProtocol("ftp"), "ftp"),
        (httpx.StreamClosed(), "failed"),
        (httpx.InvalidURL("bad url"), "invalid URL"),
    ],
)
def test_map_errors_turns_httpx_errors_into_transport_errors(exc: Exception, match: str) -> None:
    with pytest.raises(nullspace.TransportError, match=match) as info:
        with map_errors():
            raise exc
    assert info.value.__cause__ is exc


def test_map_errors_lets_other_exceptions_through() -> None:
    with pytest.raises(nullspace.SandboxNotFoundError):
        with map_errors():
            raise nullspace.SandboxNotFoundError("gone")
    with pytest.raises(KeyError):
        with map_errors():
            raise KeyError("x")


def test_error_from_body_picks_the_class_from_code_not_status() -> None:
    err = error_from_body(404, b'{"code":"context_not_found","message":"no ctx"}')
    assert type(err) is nullspace.ContextNotFoundError and err.message == "no ctx"
    err = error_from_body(400, b'{"code":"capacity","message":"full"}')
    assert type(err) is nullspace.CapacityError and err.status_code == 400


def test_error_from_body_without_json_falls_back_to_status() -> None:
    err = error_from_body(401, b"Unauthorized")
    assert type(err) is nullspace.AuthenticationError and "Unauthorized" in err.message
    assert type(error_from_body(502, b"")) is nullspace.ServerError


def test_raise_for_status_and_json_body() -> None:
    ok = httpx.Response(200, json={"a": 1})
    raise_for_status(ok)
    assert json_body(ok) == {"a": 1}
    assert json_body(httpx.Response(204)) is None
    with pytest.raises(nullspace.ConflictError):
        raise_for_status(httpx.Response(409, json={"code": "conflict", "message": "busy"}))
    with pytest.raises(nullspace.ServerError, match="not JSON"):
        json_body(httpx.Response(200, text="<html>"))
