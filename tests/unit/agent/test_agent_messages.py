"""messages.py, snippets.py and config.py: pure functions, plain dicts, no kernel."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import sys
from datetime import UTC, datetime

import pytest

from nullspace.agent import messages
from nullspace.agent.config import AgentConfig, ConfigError, load_template, normalize_language
from nullspace.agent.snippets import ENV_SNIPPETS, parse_snapshot

DATE = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def msg(msg_type: str, content: dict, date: object = DATE) -> dict:
    return {
        "header": {"msg_type": msg_type, "date": date, "msg_id": "m"},
        "parent_header": {"msg_id": "p"},
        "msg_type": msg_type,
        "content": content,
    }


def test_stream() -> None:
    event = messages.iopub_event(msg("stream", {"name": "stdout", "text": "hi\n"}))
    assert event == {
        "type": "stdout",
        "text": "hi\n",
        "timestamp": "2026-01-02T03:04:05.123456+00:00",
    }
    event = messages.iopub_event(msg("stream", {"name": "stderr", "text": "e"}, date="2026-01-02T00:00:00Z"))
    assert event == {"type": "stderr", "text": "e", "timestamp": "2026-01-02T00:00:00Z"}


def test_execute_input_and_results() -> None:
    assert messages.iopub_event(msg("execute_input", {"code": "1", "execution_count": 7})) == {
        "type": "number_of_executions",
        "execution_count": 7,
    }
    bundle = {"text/plain": "2", "image/png": "iVBOR"}
    main = messages.iopub_event(msg("execute_result", {"data": bundle, "metadata": {}, "execution_count": 1}))
    assert main == {"type": "result", "data": bundle, "metadata": {}, "is_main_result": True}
    shown = messages.iopub_event(msg("display_data", {"data": bundle, "metadata": {"a": 1}}))
    assert shown == {
        "type": "result",
        "data": bundle,
        "metadata": {"a": 1},
        "is_main_result": False,
    }


def test_error_traceback_joined_and_plain() -> None:
    content = {
        "ename": "ValueError",
        "evalue": "bad",
        "traceback": ["\x1b[31m----\x1b[39m", "\x1b[1;32mValueError\x1b[0m: bad"],
    }
    event = messages.iopub_event(msg("error", content))
    assert event == {
        "type": "error",
        "name": "ValueError",
        "value": "bad",
        "traceback": "----\nValueError: bad",
    }
    assert messages.reply_error({"status": "error", **content}) == event
    assert messages.reply_error({"status": "ok"}) is None
    assert messages.reply_error({"status": "aborted"})["name"] == "ExecutionAborted"


@pytest.mark.parametrize("msg_type", ["status", "clear_output", "comm_msg", "update_display_data"])
def test_ignored(msg_type: str) -> None:
    assert messages.iopub_event(msg(msg_type, {"execution_state": "busy"})) is None


def test_idle() -> None:
    assert messages.is_idle(msg("status", {"execution_state": "idle"}))
    assert not messages.is_idle(msg("status", {"execution_state": "busy"}))
    assert not messages.is_idle(msg("stream", {"name": "stdout", "text": "idle"}))


def test_kernel_died() -> None:
    assert messages.kernel_died(-9) == {
        "type": "error",
        "name": "KernelDied",
        "value": "the kernel exited (killed by signal 9, SIGKILL)",
        "traceback": "",
        "state_lost": True,
        "exit_code": None,
        "signal": 9,
    }
    died = messages.kernel_died(3)
    assert (died["value"], died["exit_code"], died["signal"]) == (
        "the kernel exited (exit code 3)",
        3,
        None,
    )
    assert messages.kernel_died(None)["value"] == "the kernel exited"


def test_timeout_error() -> None:
    assert messages.timeout_error(2, restarted=False)["value"] == (
        "execution exceeded the 2.0 s timeout; the kernel was interrupted"
    )
    assert messages.timeout_error(2.5, restarted=True)["value"].endswith("restarted, state lost")


def test_encode_is_ascii_one_line() -> None:
    line = messages.encode({"type": "stdout", "text": "a\u2028b\nc\u00e9\ud800"})
    assert line.isascii() and line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line)["text"] == "a\u2028b\nc\u00e9\ud800"


def test_split_text_respects_characters() -> None:
    assert messages.split_text("abc", 10) == ["abc"]
    text = "\u00e9" * 10  # 2 bytes each
    pieces = messages.split_text(text, 5)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 5 for p in pieces)
    emoji = "\U0001f600" * 3
    assert messages.split_text(emoji, 4) == ["\U0001f600"] * 3


def test_output_limiter() -> None:
    lim = messages.OutputLimiter(10, chunk_bytes=4)
    ev = {"type": "stdout", "text": "abcdef", "timestamp": "t"}
    assert [e["text"] for e in lim.feed(ev)] == ["abcd", "ef"]
    out = lim.feed({"type": "stderr", "text": "123456", "timestamp": "t"})
    assert [(e["type"], e["text"]) for e in out] == [
        ("stderr", "1234"),
        ("stderr", "\n[nullspace: output truncated after 10 bytes]\n"),
    ]
    assert lim.feed(ev) == []
    assert lim.truncated and lim.used == 10


def test_output_limiter_cuts_on_a_character_boundary() -> None:
    lim = messages.OutputLimiter(5)
    out = lim.feed({"type": "stdout", "text": "\u00e9\u00e9\u00e9", "timestamp": None})
    assert out[0]["text"] == "\u00e9\u00e9"
    assert out[1]["type"] == "stderr" and "truncated" in out[1]["text"]


def test_output_limiter_exact_fit_is_not_truncated() -> None:
    lim = messages.OutputLimiter(3)
    assert [e["text"] for e in lim.feed({"type": "stdout", "text": "abc"})] == ["abc"]
    assert not lim.truncated
    assert lim.feed({"type": "stdout", "text": "d"})[-1]["text"].startswith("\n[nullspace")


# -- snippets --------------------------------------------------------------------------------------


def test_python_env_snippets_roundtrip(monkeypatch: pytest.MonkeyPatch) -> None:
    snip = ENV_SNIPPETS["python"]
    monkeypatch.setenv("NS_KEEP", "before")
    monkeypatch.delenv("NS_NEW", raising=False)
    tricky = "it's \"q\" \\ \n \u20ac '''"
    envs = {"NS_KEEP": "during", "NS_NEW": tricky}
    namespace: dict = {}
    snapshot = eval(snip.snapshot(list(envs)), namespace)  # what user_expressions would return
    previous = parse_snapshot({"status": "ok", "data": {"text/plain": repr(snapshot)}})
    assert previous == {"NS_KEEP": "before", "NS_NEW": None}
    exec(snip.set(envs), namespace)
    assert os.environ["NS_KEEP"] == "during" and os.environ["NS_NEW"] == tricky
    exec(snip.restore(previous), namespace)
    assert os.environ["NS_KEEP"] == "before" and "NS_NEW" not in os.environ
    assert [k for k in namespace if k.startswith("__ns")] == []


def test_parse_snapshot_rejects_garbage() -> None:
    assert parse_snapshot(None) is None
    assert parse_snapshot({"status": "error"}) is None
    assert parse_snapshot({"status": "ok", "data": {"text/plain": "not a literal"}}) is None


# -- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "python"),
        ("", "python"),
        (" Python ", "python"),
        ("JS", "javascript"),
        ("ts", "typescript"),
        ("r", "r"),
    ],
)
def test_normalize_language(given: str | None, expected: str) -> None:
    assert normalize_language(given) == expected


def test_template(tmp_path: pathlib.Path) -> None:
    assert load_template(str(tmp_path / "missing.json")) == ({"python": "python3"}, None)
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps({"kernels": {"Python": "python3", "javascript": "deno"}, "workdir": "/home/user"})
    )
    kernels, workdir = load_template(str(path))
    assert kernels == {"python": "python3", "javascript": "deno"} and workdir == "/home/user"
    cfg = AgentConfig(kernels=kernels)
    assert cfg.kernel_for("typescript") == "deno"
    assert cfg.kernel_for("r") is None
    assert cfg.supported() == ["javascript", "python", "typescript"]
    path.write_text("[1]")
    with pytest.raises(ConfigError):
        load_template(str(path))


def test_agent_imports_only_what_the_sandbox_has() -> None:
    """The package runs as top-level `nullspace_agent` on the template's Python."""
    # zmq: pyzmq comes with jupyter_client (bash_kernel.py speaks the wire protocol with it)
    allowed = set(sys.stdlib_module_names) | {"jupyter_client", "starlette", "uvicorn", "zmq"}
    package = pathlib.Path(messages.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_a_run_has_at_most_one_error() -> None:
    from nullspace.agent.runs import Run, RunRequest

    run = Run(RunRequest("1"))
    run.emit(messages.error_event("ValueError", "bad"))
    run.emit(messages.kernel_died(-9))
    run.finish("error")
    events = []
    while not run._events.empty():
        events.append(run._events.get_nowait())
    assert [e and e["type"] for e in events] == ["error", "stderr", "end_of_execution", None]
    assert events[1]["text"] == "\n[nullspace: KernelDied: the kernel exited (killed by signal 9, SIGKILL)]\n"
    assert events[1]["timestamp"]
