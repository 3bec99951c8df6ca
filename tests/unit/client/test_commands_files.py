"""Sans-I/O pieces of `sandbox.commands` and `sandbox.files`."""

from __future__ import annotations

import hashlib
import io

import pytest

from nullspace import (
    CommandExitError,
    CommandResult,
    CommandTimeoutError,
    IntegrityError,
    InvalidArgumentError,
    TransportError,
    WriteEntry,
    WriteInfo,
)
from nullspace.client._commands import CommandOutput, kill_body, run_body, stdin_body
from nullspace.client._files import Upload, iter_chunks, write_entries


def test_run_body() -> None:
    assert run_body("ls", None, None, None, None, False) == {"cmd": "ls", "background": False}
    body = run_body(["a", "b"], "/tmp", {"K": "v"}, 2.5, b"\x00\xff", True)
    assert body == {"cmd": ["a", "b"], "background": True, "cwd": "/tmp", "envs": {"K": "v"},
                    "timeout": 2.5, "stdin_base64": "AP8="}
    assert run_body("cat", None, None, None, "text", False)["stdin"] == "text"
    for bad in ("", "  ", [], [1], None):
        with pytest.raises(InvalidArgumentError):
            run_body(bad, None, None, None, None, False)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        run_body("cat", None, None, None, 5, False)  # type: ignore[arg-type]


def test_stdin_and_kill_bodies() -> None:
    assert stdin_body("x", False) == {"eof": False, "data": "x"}
    assert stdin_body(None, True) == {"eof": True}
    assert kill_body("term") == {"signal": "SIGTERM"} and kill_body("SIGKILL") == {"signal": "SIGKILL"}
    with pytest.raises(InvalidArgumentError):
        kill_body("SIGSTOP")


def feed(events: list[dict]) -> CommandOutput:
    out = CommandOutput()
    for event in events:
        out.feed(event)
    return out


def test_output_folds_events_and_checks_the_exit() -> None:
    start = {"type": "start", "id": "cmd_1", "pid": 7}
    out = CommandOutput()
    assert out.feed(start) is None
    msg = out.feed({"type": "stderr", "text": "boom\n", "timestamp": "t"})
    assert msg is not None and msg.error and msg.line == "boom\n"
    out.feed({"type": "stdout", "text": "a"})
    out.feed({"type": "keepalive"})
    out.feed({"type": "end", "exit_code": 0, "signal": None, "status": "exited", "error": None})
    result = out.finish(check=True)
    assert result == CommandResult("a", "boom\n", 0, "exited", None, None, "cmd_1") and result.ok

    failed = feed([start, {"type": "stderr", "text": "line 1\nlast words\n"},
                   {"type": "end", "exit_code": 2, "status": "exited"}])
    with pytest.raises(CommandExitError, match="exited with code 2: last words") as info:
        failed.finish(check=True)
    assert info.value.exit_code == 2 and info.value.stderr == "line 1\nlast words\n"
    assert failed.finish(check=False).exit_code == 2

    timed_out = feed([start, {"type": "end", "exit_code": 137, "signal": 9, "status": "timeout",
                              "error": "killed after the 1 s timeout"}])
    with pytest.raises(CommandTimeoutError, match="1 s timeout"):
        timed_out.finish(check=True)
    lost = feed([start, {"type": "end", "exit_code": -1, "status": "lost", "error": "sandbox sb_1 was killed"}])
    with pytest.raises(CommandExitError, match="lost: sandbox sb_1 was killed"):
        lost.finish(check=True)
    with pytest.raises(TransportError, match="without its end event"):
        feed([start]).finish(check=False)


def test_upload_of_known_bytes_announces_size_and_hash() -> None:
    up = Upload("héllo")
    assert up.payload == "héllo".encode()
    headers = up.headers()
    assert headers["X-Nullspace-Expected-Size"] == "6"
    assert headers["X-Nullspace-Expected-Sha256"] == hashlib.sha256("héllo".encode()).hexdigest()
    good = WriteInfo("/p", "p", 6, hashlib.sha256("héllo".encode()).hexdigest())
    assert up.mismatch(good) is None
    bad = up.mismatch(WriteInfo("/p", "p", 0, hashlib.sha256(b"").hexdigest()))
    assert isinstance(bad, IntegrityError) and "0 bytes" in str(bad)


def test_upload_of_streams_counts_what_goes_out() -> None:
    up = Upload(io.BytesIO(b"abc"))
    assert up.payload is None and "X-Nullspace-Expected-Size" not in up.headers()
    sent = b"".join(up.take(chunk) for chunk in iter_chunks(up.source))
    assert sent == b"abc" and up.size == 3
    up = Upload(iter(["a", b"b"]))
    assert b"".join(up.take(c) for c in iter_chunks(up.source)) == b"ab"
    with pytest.raises(InvalidArgumentError):
        Upload(12)
    with pytest.raises(InvalidArgumentError):
        Upload(iter([1])).take(1)

    async def agen():  # an async iterator needs the async SDK
        yield b"x"

    with pytest.raises(InvalidArgumentError, match="AsyncSandbox"):
        list(iter_chunks(agen()))


def test_write_entries() -> None:
    entries = write_entries([WriteEntry("a", "1"), ("b", b"2"), {"path": "c", "data": "3"}])
    assert [(e.path, e.data) for e in entries] == [("a", "1"), ("b", b"2"), ("c", "3")]
    with pytest.raises(InvalidArgumentError):
        write_entries(["just a path"])


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [
        ("_async.commands:AsyncCommands", "_sync.commands:Commands"),
        ("_async.commands:AsyncCommandHandle", "_sync.commands:CommandHandle"),
        ("_async.files:AsyncFiles", "_sync.files:Files"),
    ],
)
def test_sync_namespaces_match_the_async_ones(async_cls: str, sync_cls: str) -> None:
    import importlib
    import inspect

    from .test_parity import public_members, unasync

    def load(spec: str) -> type:
        module, name = spec.split(":")
        return getattr(importlib.import_module(f"nullspace.client.{module}"), name)

    a, s = load(async_cls), load(sync_cls)
    assert set(public_members(a)) == set(public_members(s))
    for name in public_members(a):
        fa, fs = getattr(a, name), getattr(s, name)
        if isinstance(inspect.getattr_static(a, name), property):
            continue
        assert str(inspect.signature(fs)) == unasync.translate(str(inspect.signature(fa))), name
        assert inspect.iscoroutinefunction(fa), f"{a.__name__}.{name} is not async"
        assert not inspect.iscoroutinefunction(fs)
        assert (fa.__doc__ or "").strip(), f"{a.__name__}.{name} has no docstring"
    if a.__name__ == "AsyncCommandHandle":
        assert inspect.isasyncgenfunction(a.__aiter__) and inspect.isgeneratorfunction(s.__iter__)
