from __future__ import annotations

import pytest

import nullspace
from nullspace.client._execution import (
    ExecutionBuilder,
    NDJSONDecoder,
    dispatch,
    execute_body,
)

from .fakes import RUN_EVENTS, ndjson

# -- NDJSONDecoder ---------------------------------------------------------------------------


def test_decoder_splits_only_on_newline_bytes() -> None:
    dec = NDJSONDecoder()
    raw = '{"type":"stdout","text":"a\u2028b\u2029c\x85d e"}\n'.encode()  # all unescaped
    assert dec.feed(raw[:10]) == []
    assert dec.feed(raw[10:]) == [{"type": "stdout", "text": "a\u2028b\u2029c\x85d e"}]


def test_decoder_handles_many_lines_per_chunk_and_one_byte_chunks() -> None:
    data = ndjson(*RUN_EVENTS)
    whole = NDJSONDecoder().feed(data)
    assert whole == RUN_EVENTS
    dec = NDJSONDecoder()
    bytewise = [e for i in range(len(data)) for e in dec.feed(data[i : i + 1])]
    assert bytewise == RUN_EVENTS


def test_decoder_skips_blank_malformed_and_untyped_lines() -> None:
    dec = NDJSONDecoder()
    events = dec.feed(b'\n  \n{oops\n[1,2]\n{"no_type":1}\n{"type":"keepalive"}\r\n')
    assert events == [{"type": "keepalive"}]


def test_decoder_flush_returns_an_unterminated_last_line() -> None:
    dec = NDJSONDecoder()
    assert dec.feed(b'{"type":"end_of_execution","status":"ok"}') == []
    assert dec.flush() == [{"type": "end_of_execution", "status": "ok"}]
    assert dec.flush() == []


def test_decoder_replaces_invalid_utf8_instead_of_failing() -> None:
    events = NDJSONDecoder().feed(b'{"type":"stdout","text":"\xff"}\n')
    assert events == [{"type": "stdout", "text": "\ufffd"}]


# -- ExecutionBuilder ------------------------------------------------------------------------


def test_builder_emits_typed_items_and_assembles_the_execution() -> None:
    b = ExecutionBuilder()
    emitted = [item for event in RUN_EVENTS for item in b.feed(event)]
    assert [type(i).__name__ for i in emitted] == [
        "OutputMessage",
        "OutputMessage",
        "Result",
        "OutputMessage",
        "Result",
        "EndOfExecution",
    ]
    assert b.ended and b.status == "ok"
    ex = b.finish()
    assert ex is emitted[-1].execution
    assert ex.execution_count == 3 and ex.text == "2" and len(ex.limits) == 1


def test_builder_ignores_events_after_the_end() -> None:
    b = ExecutionBuilder()
    b.feed({"type": "end_of_execution", "status": "ok"})
    assert b.feed({"type": "stdout", "text": "late"}) == []
    assert b.execution.logs.stdout == []


def test_builder_tolerates_missing_and_odd_fields() -> None:
    b = ExecutionBuilder()
    (out,) = b.feed({"type": "stdout"})
    assert out.line == "" and out.timestamp is None and not out.error
    (err,) = b.feed({"type": "error", "name": "E", "value": 3, "traceback": ["a", "b"]})
    assert err == nullspace.ExecutionError("E", "3", "a\nb")
    b.feed({"type": "number_of_executions", "execution_count": "seven"})
    assert b.execution.execution_count is None
    (end,) = b.feed({"type": "end_of_execution"})
    assert end.status == "ok"


def test_finish_without_end_is_a_transport_error() -> None:
    b = ExecutionBuilder()
    b.feed({"type": "stdout", "text": "x"})
    with pytest.raises(nullspace.TransportError):
        b.finish()


def test_finish_after_timeout_carries_the_partial_execution() -> None:
    b = ExecutionBuilder()
    b.feed({"type": "stdout", "text": "x"})
    b.feed({"type": "end_of_execution", "status": "timeout"})
    with pytest.raises(nullspace.ExecutionTimeoutError, match="timed out") as info:
        b.finish()
    assert info.value.execution is b.execution and info.value.execution.logs.stdout == ["x"]


def test_error_status_is_not_an_exception() -> None:
    b = ExecutionBuilder()
    b.feed({"type": "error", "name": "KernelDied", "value": "exit 137", "traceback": ""})
    b.feed({"type": "end_of_execution", "status": "error"})
    assert b.finish().error.name == "KernelDied"


# -- request body and dispatch ---------------------------------------------------------------


def test_execute_body() -> None:
    ctx = nullspace.Context("ctx_1", "python", "/")
    assert execute_body("1", None, ctx, {"A": "b"}, 5) == {
        "code": "1",
        "language": None,
        "context_id": "ctx_1",
        "envs": {"A": "b"},
        "timeout": 5,
    }
    with pytest.raises(nullspace.InvalidArgumentError):
        execute_body("1", "python", ctx, None, None)
    with pytest.raises(nullspace.InvalidArgumentError):
        execute_body(b"1", None, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(nullspace.InvalidArgumentError):
        execute_body("1", None, 42, None, None)  # type: ignore[arg-type]


def test_dispatch_routes_by_type_and_stream() -> None:
    def out(x: object) -> None: ...
    def err(x: object) -> None: ...
    def res(x: object) -> None: ...
    def fail(x: object) -> None: ...

    cbs = (out, err, res, fail)
    assert dispatch(nullspace.OutputMessage("a"), *cbs)[0] is out
    assert dispatch(nullspace.OutputMessage("a", error=True), *cbs)[0] is err
    assert dispatch(nullspace.Result({}), *cbs)[0] is res
    assert dispatch(nullspace.ExecutionError("E", "v"), *cbs)[0] is fail
    end = nullspace.EndOfExecution("ok", nullspace.Execution())
    assert dispatch(end, *cbs) == (None, end)
