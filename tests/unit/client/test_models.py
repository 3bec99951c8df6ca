from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

import nullspace
from nullspace.client._models import CHART_MIME, MIME_FIELDS

PNG = base64.b64encode(b"\x89PNG fake").decode()
JPEG = base64.b64encode(b"\xff\xd8 fake").decode()
CHART = {"type": "line", "title": "t", "elements": []}

FULL_BUNDLE = {
    "text/plain": "<Figure size 640x480>",
    "text/html": "<b>hi</b>",
    "text/markdown": "# hi",
    "image/svg+xml": "<svg/>",
    "image/png": PNG,
    "image/jpeg": JPEG,
    "application/pdf": "JVBERi0=",
    "text/latex": r"$x^2$",
    "application/json": {"a": [1, 2]},
    "application/javascript": "console.log(1)",
    CHART_MIME: CHART,
    "application/vnd.custom+json": {"k": 1},
    "text/csv": "a,b\n1,2",
}


def test_every_mime_field_is_mapped() -> None:
    r = nullspace.Result(FULL_BUNDLE, is_main_result=True)
    assert r.text == "<Figure size 640x480>"
    assert r.html == "<b>hi</b>"
    assert r.markdown == "# hi"
    assert r.svg == "<svg/>"
    assert r.png == PNG
    assert r.jpeg == JPEG
    assert r.pdf == "JVBERi0="
    assert r.latex == r"$x^2$"
    assert r.json == {"a": [1, 2]}
    assert r.javascript == "console.log(1)"
    assert r.chart == CHART
    assert r.is_main_result is True
    assert r.data == FULL_BUNDLE and r.data is not FULL_BUNDLE
    assert r.extra == {"application/vnd.custom+json": {"k": 1}, "text/csv": "a,b\n1,2"}
    assert r.formats() == list(MIME_FIELDS)  # all fields, in table order, extra excluded


def test_from_event_and_formats_of_a_plot() -> None:
    event = {
        "type": "result",
        "data": {"image/png": PNG, "text/plain": "<Figure>"},
        "is_main_result": False,
        "metadata": {"image/png": {"width": 640}},
        "unknown_field": 1,
    }
    r = nullspace.Result.from_event(event)
    assert r.formats() == ["text", "png"]
    assert r.extra == {} and r.chart is None and r.html is None
    assert r.metadata == {"image/png": {"width": 640}}
    assert r._repr_png_() == b"\x89PNG fake"
    assert r._repr_jpeg_() is None
    assert r._repr_mimebundle_() == {"image/png": PNG, "text/plain": "<Figure>"}


def test_malformed_result_event_gives_an_empty_result() -> None:
    r = nullspace.Result.from_event({"type": "result", "data": "not a dict", "metadata": 3})
    assert r.formats() == [] and r.data == {} and r.metadata == {} and not r.is_main_result


def test_falsy_chart_is_none_and_only_chart_mime_is_chart() -> None:
    assert nullspace.Result({CHART_MIME: {}}).chart is None
    assert nullspace.Result({"application/vnd.other.chart+json": CHART}).chart is None


def test_repr_and_str_are_readable() -> None:
    r = nullspace.Result({"text/plain": "x" * 200, "image/png": PNG, "a/b": 1}, True)
    text = repr(r)
    assert text.startswith("Result(formats=['text', 'png'], text='xxx")
    assert "..." in text and len(text) < 200
    assert "is_main_result=True" in text and "extra=['a/b']" in text
    assert str(r) == "x" * 200
    assert str(nullspace.Result({"image/png": PNG})) == ""
    assert r._repr_html_() is None
    assert nullspace.Result({"text/html": "<i/>"})._repr_html_() == "<i/>"


def test_result_equality_by_content() -> None:
    assert nullspace.Result({"text/plain": "1"}) == nullspace.Result({"text/plain": "1"})
    assert nullspace.Result({"text/plain": "1"}) != nullspace.Result({"text/plain": "1"}, True)


def test_execution_text_and_to_json_round_trip() -> None:
    ex = nullspace.Execution(
        results=[
            nullspace.Result({"text/plain": "side"}),
            nullspace.Result({"text/plain": "2"}, True),
        ],
        logs=nullspace.Logs(stdout=["hi\n"], stderr=[]),
        error=nullspace.ExecutionError("ValueError", "bad", "tb"),
        execution_count=4,
        limits=[{"resource": "pids", "limit": 512, "message": "m"}],
    )
    assert ex.text == "2"
    data = json.loads(ex.to_json())
    assert data == {
        "results": [
            {"data": {"text/plain": "side"}, "is_main_result": False, "metadata": {}},
            {"data": {"text/plain": "2"}, "is_main_result": True, "metadata": {}},
        ],
        "logs": {"stdout": ["hi\n"], "stderr": []},
        "error": {"name": "ValueError", "value": "bad", "traceback": "tb", "state_lost": False, "details": {}},
        "execution_count": 4,
        "limits": [{"resource": "pids", "limit": 512, "message": "m"}],
        "artifacts": [],
        "network_refusals": [],
    }
    assert nullspace.Execution().text is None
    assert json.loads(nullspace.Execution().to_json())["error"] is None


def test_output_message_str_is_the_line() -> None:
    msg = nullspace.OutputMessage("out\n", "2026-01-01T00:00:00Z", error=True)
    assert str(msg) == "out\n" and msg.error


def test_sandbox_info_parses_times_and_ignores_unknown_fields() -> None:
    info = nullspace.SandboxInfo.from_dict(
        {
            "sandbox_id": "sb_1",
            "template": "code-interpreter",
            "state": "timed_out",
            "created_at": "2026-01-01T00:00:00Z",
            "end_at": "not a date",
            "metadata": {"a": "b"},
            "env_keys": ["K"],
            "cpu": 0.5,
            "memory_mb": 256,
            "end_reason": "timed out after 120 s",
            "new_field": True,
        }
    )
    assert info.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert info.end_at is None
    assert info.state == "timed_out" and info.metadata == {"a": "b"} and info.env_keys == ["K"]
    assert info.cpu == 0.5 and info.memory_mb == 256 and info.end_reason.endswith("120 s")


@pytest.mark.parametrize("bad", [None, [], {"id": "x"}, {"sandbox_id": 3}])
def test_malformed_sandbox_info_is_a_server_error(bad: object) -> None:
    with pytest.raises(nullspace.ServerError, match="malformed"):
        nullspace.SandboxInfo.from_dict(bad)


def test_context_from_dict() -> None:
    ctx = nullspace.Context.from_dict({"id": "c1", "language": "python", "cwd": "/w", "x": 1})
    assert ctx == nullspace.Context("c1", "python", "/w")
    with pytest.raises(nullspace.ServerError):
        nullspace.Context.from_dict({"language": "python"})
