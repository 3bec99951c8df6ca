"""envd's ``process.Process`` through the official `e2b` SDK: `sandbox.commands` and `sandbox.pty`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from e2b import AsyncSandbox, CommandExitException, PtySize, Sandbox
from e2b.exceptions import (
    InvalidArgumentException,
    SandboxException,
    SandboxNotRunningException,
    TimeoutException,
)

from nullspace import Sandbox as NullspaceSandbox


@pytest.fixture(scope="module")
def sbx(e2b_server) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=600, envs={"SANDBOX_LEVEL": "yes"})
    try:
        yield sandbox
    finally:
        sandbox.kill()


def test_run_foreground(sbx: Sandbox) -> None:
    result = sbx.commands.run("echo out; echo err >&2; id -un; pwd; echo $SANDBOX_LEVEL $MINE", envs={"MINE": "m"})
    assert result.exit_code == 0
    assert result.stdout == "out\nuser\n/home/user\nyes m\n"
    assert result.stderr == "err\n"
    # the template's venv is on PATH (the SDK asks for a login shell; we keep PATH: docs/e2b.md)
    assert sbx.commands.run("python -c 'import pandas; print(1)'").stdout == "1\n"
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"


def test_exit_codes_and_callbacks(sbx: Sandbox) -> None:
    with pytest.raises(CommandExitException) as info:
        sbx.commands.run("echo partial; exit 3")
    assert info.value.exit_code == 3 and info.value.stdout == "partial\n"
    seen: list[str] = []
    sbx.commands.run("for i in 1 2 3; do echo $i; sleep 0.05; done", on_stdout=seen.append)
    assert "".join(seen) == "1\n2\n3\n"
    with pytest.raises(InvalidArgumentException):
        sbx.commands.run("true", cwd="/no/such/dir")


def test_background_stdin_list_connect_kill(sbx: Sandbox) -> None:
    handle = sbx.commands.run("cat", background=True, stdin=True)
    assert handle.pid > 0
    assert handle.pid in [p.pid for p in sbx.commands.list()]
    listed = next(p for p in sbx.commands.list() if p.pid == handle.pid)
    assert listed.cmd == "/bin/bash" and listed.args[-1] == "cat"
    sbx.commands.send_stdin(handle.pid, "hello\n")
    sbx.commands.stream_input(handle.pid, ["streamed ", b"in\n"])
    sbx.commands.close_stdin(handle.pid)
    result = handle.wait()
    assert result.stdout == "hello\nstreamed in\n" and result.exit_code == 0

    sleeper = sbx.commands.run("echo started; sleep 600", background=True)
    sleeper.disconnect()  # leaving the stream does not kill it
    again = sbx.commands.connect(sleeper.pid)
    assert sleeper.pid in [p.pid for p in sbx.commands.list()]
    assert sbx.commands.kill(sleeper.pid) is True
    with pytest.raises(CommandExitException) as info:
        again.wait()
    assert info.value.exit_code == -1 and "signal: killed" in str(info.value.error or info.value)
    assert sbx.commands.kill(sleeper.pid) is False  # gone: not found
    assert sleeper.pid not in [p.pid for p in sbx.commands.list()]


def test_the_same_processes_through_both_doors(sbx: Sandbox) -> None:
    handle = sbx.commands.run("sleep 600", background=True)
    ours = NullspaceSandbox.connect(sbx.sandbox_id)
    mine = [c for c in ours.commands.list() if c.pid == handle.pid]
    assert len(mine) == 1
    assert ours.commands.kill(mine[0].id) is True
    with pytest.raises(CommandExitException):
        handle.wait()


def test_timeout_kills_the_process(sbx: Sandbox) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutException):
        sbx.commands.run("sleep 30", timeout=1)
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 5
    while "sleep 30" in sbx.commands.run("ps -eo args").stdout:
        assert time.monotonic() < deadline, "the timed-out command is still running"
        time.sleep(0.1)


def test_root_is_refused_clearly(sbx: Sandbox) -> None:
    assert sbx.commands.run("id -un", user="user").stdout == "user\n"  # the one user, named
    with pytest.raises(SandboxException, match="cannot run as root"):
        sbx.commands.run("id", user="root")


def test_pty_create_input_resize_kill(sbx: Sandbox) -> None:
    out = bytearray()
    term = sbx.pty.create(PtySize(rows=24, cols=80))
    results = []
    reader = threading.Thread(target=lambda: results.append(term.wait(on_pty=out.extend)), daemon=True)
    reader.start()

    def wait_for(needle: bytes) -> None:
        deadline = time.monotonic() + 20
        while needle not in out:
            assert time.monotonic() < deadline, f"{needle!r} not in {bytes(out)!r}"
            time.sleep(0.02)

    sbx.pty.send_stdin(term.pid, b"stty size; echo A-$((20+22))\n")
    wait_for(b"A-42")
    sbx.pty.resize(term.pid, PtySize(rows=50, cols=132))
    sbx.pty.send_stdin(term.pid, b"stty size; echo B-$((1+1))\n")
    wait_for(b"B-2")
    sbx.pty.send_stdin(term.pid, b"exit 0\n")
    reader.join(20)
    assert results and results[0].exit_code == 0
    assert b"24 80" in out and b"50 132" in out

    term = sbx.pty.create(PtySize(rows=24, cols=80))
    assert sbx.pty.kill(term.pid) is True
    with pytest.raises(CommandExitException):
        term.wait()


def test_async_sdk(e2b_server) -> None:
    async def main() -> None:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            result = await sandbox.commands.run("echo async")
            assert result.stdout == "async\n"
            handle = await sandbox.commands.run("cat", background=True, stdin=True)
            await sandbox.commands.send_stdin(handle.pid, "x\n")
            await sandbox.commands.close_stdin(handle.pid)
            assert (await handle.wait()).stdout == "x\n"
        finally:
            await sandbox.kill()

    asyncio.run(main())


def test_a_kill_during_a_command_ends_it_with_an_error(e2b_server) -> None:
    sandbox = Sandbox.create(timeout=120)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sandbox.commands.run("sleep 60")
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    time.sleep(1.0)
    sandbox.kill()
    runner.join(20)
    assert not runner.is_alive(), "the command's stream hung after the sandbox was killed"
    assert errors and isinstance(errors[0], SandboxNotRunningException), errors  # as E2B
