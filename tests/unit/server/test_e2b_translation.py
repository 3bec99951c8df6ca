"""The E2B door's pure parts: our execute events → E2B's lines, and its access tokens."""

from __future__ import annotations

from types import SimpleNamespace

from nullspace.server.e2b import results, tokens


def test_result_bundle_becomes_e2b_keys() -> None:
    event = {
        "type": "result", "is_main_result": True, "metadata": {"x": 1},
        "data": {
            "text/plain": "'quoted'", "image/png": "iVBOR", "text/html": "<b>",
            "application/vnd.nullspace.chart+json": {"type": "bar", "title": "t", "elements": [], "version": 1, "source": "matplotlib"},
            "application/x-custom": {"a": 1},
        },
    }  # fmt: skip
    out = results.translate(event)
    assert out == {
        "type": "result", "text": "quoted", "png": "iVBOR", "html": "<b>",
        "chart": {"type": "bar", "title": "t", "elements": []},
        "extra": {"application/x-custom": {"a": 1}}, "is_main_result": True,
    }  # fmt: skip


def test_quotes_are_stripped_once_and_only_in_pairs() -> None:
    def text(value: str) -> str:
        return results.translate({"type": "result", "data": {"text/plain": value}})["text"]

    assert text("'a'") == "a" and text('"a"') == "a" and text("''a''") == "'a'"
    assert text("'a\"") == "'a\"" and text("'") == "'" and text("plain") == "plain"


def test_table_schema_becomes_column_lists() -> None:
    table = {
        "schema": {"fields": [{"name": "index"}, {"name": "a"}, {"name": "b"}], "primaryKey": ["index"]},
        "data": [{"index": 0, "a": 1, "b": "x"}, {"index": 1, "a": 2, "b": None}],
    }
    out = results.translate({"type": "result", "data": {"application/vnd.dataresource+json": table}})
    assert out["data"] == {"a": [1, 2], "b": ["x", None]}
    assert "data" not in results.translate({"type": "result", "data": {"application/vnd.dataresource+json": [1]}})


def test_other_events() -> None:
    assert results.translate({"type": "stdout", "text": "hi", "timestamp": "t"}) == {"type": "stdout", "text": "hi", "timestamp": "t"}
    assert results.translate({"type": "stderr", "text": "x", "timestamp": None})["timestamp"]  # never missing
    err = {"type": "error", "name": "E", "value": "v", "traceback": "tb", "state_lost": True}
    assert results.translate(err) == {"type": "error", "name": "E", "value": "v", "traceback": "tb"}
    assert results.translate({"type": "limit", "message": "memory limit"})["text"] == "\n[nullspace: memory limit]\n"
    assert results.translate({"type": "end_of_execution", "status": "ok"}) == {"type": "end_of_execution"}
    assert results.translate({"type": "artifacts", "artifacts": []}) is None
    assert results.translate({"type": "something_new"}) is None


def test_tokens_are_per_sandbox_and_kept_as_digests() -> None:
    a = SimpleNamespace(record=SimpleNamespace(extra={}))
    b = SimpleNamespace(record=SimpleNamespace(extra={}))
    first, second = tokens.mint(a), tokens.mint(a)
    assert tokens.verify(a, first) and tokens.verify(a, second)
    assert not tokens.verify(b, first) and not tokens.verify(a, "") and not tokens.verify(a, None)
    assert first not in repr(a.record.extra) and all(len(d) == 32 for d in a.record.extra["e2b_token_hashes"])
    assert tokens.verify(a, second)
    for _ in range(tokens.MAX_TOKENS):
        tokens.mint(a)
    assert not tokens.verify(a, first)  # the oldest go past MAX_TOKENS
