"""Every error code the server or the agent can send maps to one SDK exception class.

The codes are collected from the sources (each place that builds an error body names its code
as a literal), so a new code without a class fails here, not in a user's hands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nullspace
from nullspace._exceptions import _BY_CODE, APIError, ServerError, error_for

SRC = Path(nullspace.__file__).resolve().parent

# AgentError(404, "code", ...), error_response(400, "code", ...), _reply(send, 413, "code", ...),
# APIError-style code="..." and `"code": "..."` in hand-built bodies.
_LITERAL = re.compile(
    r"""(?:(?:AgentError|_error)\(\s*\d{3},\s*|error_response\(\s*\d{3},\s*|_reply\(\s*\w+,\s*\d{3},\s*|\bcode\s*=\s*|["']code["']\s*:\s*)["']([a-z_]+)["']"""
)
_STATUS_TABLES = re.compile(r"\{\s*(\d{3}\s*:\s*\"[a-z_]+\"\s*,?\s*)+\}")


def sent_codes() -> set[str]:
    codes: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.name == "_exceptions.py":
            continue
        text = path.read_text()
        codes.update(_LITERAL.findall(text))
        for table in _STATUS_TABLES.finditer(text):
            codes.update(re.findall(r"\"([a-z_]+)\"", table.group(0)))
    return codes


def test_the_sources_send_codes() -> None:
    codes = sent_codes()
    assert {"invalid_argument", "unauthorized", "disk_full", "method_not_allowed", "template_build_failed"} <= codes


@pytest.mark.parametrize("code", sorted(sent_codes()))
def test_every_sent_code_has_its_class(code: str) -> None:
    assert code in _BY_CODE, f"code {code!r} is sent but the SDK has no exception class for it"
    err = error_for(418, {"code": code, "message": "m"})
    assert type(err) is _BY_CODE[code]
    assert err.code == code and err.message == "m"
    if code != "internal":
        assert type(err) is not ServerError


def test_each_class_owns_one_code() -> None:
    classes = list(_BY_CODE.values())
    assert len(classes) == len(set(classes))
    for code, cls in _BY_CODE.items():
        assert issubclass(cls, APIError) and cls.default_code == code


def test_unknown_code_falls_back_to_status() -> None:
    assert isinstance(error_for(404, {"code": "teapot", "message": "x"}), nullspace.NotFoundError)
    assert type(error_for(502, "<html>bad gateway</html>")) is ServerError


def test_template_build_error_reaches_the_sdk() -> None:
    err = error_for(500, {"code": "template_build_failed", "message": "step pip failed"})
    assert isinstance(err, nullspace.TemplateBuildError) and isinstance(err, nullspace.APIError)
    assert err.log == "" and err.status_code == 500
