"""`sandbox.commands` end to end: output, exit codes, stdin, background handles, tree kills."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator

import pytest

from nullspace import (
    AsyncSandbox,
    CommandExitError,
    CommandHandle,
    CommandTimeoutError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    OutputMessage,
    Sandbox,
)

from .conftest import ServerHandle


@pytest.fixture(scope="module")
def sbx(server: ServerHandle) -> Iterator[Sandbox]:
    with Sandbox.create(template="code-interpreter", timeout=600) as sb:
        yield sb


def sleeps(sbx: Sandbox) -> list[str]:
    """The `sleep` processes alive in the sandbox (from its own /proc)."""
    out = sbx.commands.run("ps -eo pid,sid,args --no-headers").stdout
    return [line for line in out.splitlines() if " sleep " in f" {line.split(None, 2)[-1]} "]


def no_sleeps_left(sbx: Sandbox, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while sleeps(sbx):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_run_returns_stdout_stderr_and_exit_code(sbx: Sandbox) -> None:
    result = sbx.commands.run("echo out; echo err >&2")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 0)
    assert result.status == "exited" and result.ok and result.command_id.startswith("cmd_")


def test_runs_as_the_sandbox_user_in_the_workdir_with_envs(sbx: Sandbox) -> None:
    result = sbx.commands.run('id -un; pwd; echo "$GREETING"', envs={"GREETING": "hello there"})
    assert result.stdout.splitlines() == ["user", "/home/user", "hello there"]
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        sbx.commands.run("pwd", cwd="/no/such/dir")


def test_same_filesystem_and_python_as_the_code_contexts(sbx: Sandbox) -> None:
    sbx.run_code("open('from_kernel.txt', 'w').write('written by the kernel')")
    assert sbx.commands.run("cat from_kernel.txt").stdout == "written by the kernel"
    sbx.commands.run("echo -n written by a command > from_command.txt")
    assert sbx.run_code("open('from_command.txt').read()").text == "written by a command"
    # the template's venv is on PATH (not reset by a login profile): pandas is importable
    assert sbx.commands.run("python -c 'import pandas; print(pandas.__name__)'").stdout == "pandas\n"


def test_argv_list_is_not_parsed_by_a_shell(sbx: Sandbox) -> None:
    result = sbx.commands.run(["printf", "%s|", "a b", "$HOME", "*"])
    assert result.stdout == "a b|$HOME|*|"


def test_non_zero_exit_raises_with_the_output(sbx: Sandbox) -> None:
    with pytest.raises(CommandExitError) as info:
        sbx.commands.run("echo partial; echo 'it broke' >&2; exit 3")
    exc = info.value
    assert (exc.exit_code, exc.stdout, exc.stderr) == (3, "partial\n", "it broke\n")
    assert "exited with code 3" in str(exc) and "it broke" in str(exc)
    result = sbx.commands.run("exit 7", check=False)
    assert result.exit_code == 7 and not result.ok


def test_callbacks_fire_while_the_command_runs(sbx: Sandbox) -> None:
    seen: list[tuple[float, OutputMessage]] = []
    start = time.monotonic()
    result = sbx.commands.run(
        "echo first; sleep 2; echo second >&2",
        on_stdout=lambda m: seen.append((time.monotonic() - start, m)),
        on_stderr=lambda m: seen.append((time.monotonic() - start, m)),
    )
    total = time.monotonic() - start
    assert [(m.line, m.error) for _, m in seen] == [("first\n", False), ("second\n", True)]
    assert seen[0][0] < total - 1.5, (seen, total)  # arrived during the sleep
    assert result.stdout == "first\n"


def test_stdin_text_and_bytes(sbx: Sandbox) -> None:
    assert sbx.commands.run("tr a-z A-Z", stdin="hello\n").stdout == "HELLO\n"
    blob = bytes(range(256)) * 1000
    result = sbx.commands.run(["python", "-c", "import sys, hashlib; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"],
                              stdin=blob)
    assert result.stdout.strip() == hashlib.sha256(blob).hexdigest()
    # without stdin, a command reading it gets end-of-file at once instead of hanging
    assert sbx.commands.run("cat; echo done", timeout=10).stdout == "done\n"


def test_timeout_kills_the_whole_process_tree(sbx: Sandbox) -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimeoutError) as info:
        # a child, a grandchild in a subshell, and a daemon that left the session and was orphaned
        sbx.commands.run("echo started; sleep 301 & (sleep 302 &); (setsid sleep 303 &); sleep 304", timeout=1.5)
    assert time.monotonic() - start < 10
    assert info.value.stdout == "started\n"
    assert info.value.result.status == "timeout" and info.value.exit_code == 137
    assert "1.5 s timeout" in str(info.value)
    assert no_sleeps_left(sbx), sleeps(sbx)


def test_a_command_that_exits_leaves_its_background_children_alone(sbx: Sandbox) -> None:
    sbx.commands.run("(setsid sleep 311 > /dev/null 2>&1 &); echo ok")
    assert any("sleep 311" in line for line in sleeps(sbx))
    sbx.commands.run(["pkill", "-f", "sleep 311"], check=False)
    assert no_sleeps_left(sbx), sleeps(sbx)


def test_background_handle_wait_list_and_reattach(sbx: Sandbox) -> None:
    handle = sbx.commands.run("for i in 1 2 3; do echo $i; sleep 0.5; done; exit 2", background=True)
    assert isinstance(handle, CommandHandle) and handle.id.startswith("cmd_") and handle.pid > 0
    running = sbx.commands.list()
    assert handle.id in [c.id for c in running]
    assert next(c for c in running if c.id == handle.id).background
    seen: list[str] = []
    result = handle.wait(on_stdout=lambda m: seen.append(m.line), check=False)
    assert result.stdout == "1\n2\n3\n" and "".join(seen) == "1\n2\n3\n" and result.exit_code == 2
    assert handle.exit_code == 2 and handle.stdout == "1\n2\n3\n"
    with pytest.raises(CommandExitError):
        handle.wait()
    assert handle.id not in [c.id for c in sbx.commands.list()]
    again = sbx.commands.connect(handle.id)  # a finished command can still be re-attached to
    assert again.wait(check=False).stdout == "1\n2\n3\n"
    with pytest.raises(NotFoundError):
        sbx.commands.connect("cmd_0000000000000000")


def test_background_output_can_be_iterated_live(sbx: Sandbox) -> None:
    handle = sbx.commands.run("echo one; sleep 1.5; echo two", background=True)
    start = time.monotonic()
    arrivals = [(time.monotonic() - start, m.line) for m in handle]
    assert [line for _, line in arrivals] == ["one\n", "two\n"]
    assert arrivals[0][0] < arrivals[1][0] - 1.0


def test_kill_a_background_command(sbx: Sandbox) -> None:
    handle = sbx.commands.run("sleep 321 & sleep 322", background=True)
    assert handle.kill() is True
    result = handle.wait(check=False)
    assert result.status == "killed" and result.signal == 9 and result.exit_code == 137
    assert handle.kill() is False  # already ended
    assert no_sleeps_left(sbx), sleeps(sbx)
    term = sbx.commands.run("trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done", background=True)
    time.sleep(0.5)
    assert sbx.commands.kill(term.id, "SIGTERM") is True
    assert term.wait().stdout == "got TERM\n"


def test_send_stdin_to_a_background_command(sbx: Sandbox) -> None:
    handle = sbx.commands.run("cat", background=True)
    handle.send_stdin("line one\n")
    handle.send_stdin(b"\xc3\xa9t\xc3\xa9\n")
    handle.close_stdin()
    assert handle.wait().stdout == "line one\nété\n"
    with pytest.raises(ConflictError):
        handle.send_stdin("too late")


def test_output_is_capped_with_a_marker(sbx: Sandbox) -> None:
    result = sbx.commands.run("head -c 30000000 /dev/zero | tr '\\0' x; echo; echo done >&2", timeout=60)
    assert 7_000_000 < len(result.stdout) <= 8 * 1024 * 1024
    assert "output truncated" in result.stderr and result.exit_code == 0


def test_a_command_killed_by_the_memory_limit_says_so(server: ServerHandle) -> None:
    with Sandbox.create(timeout=120, memory_mb=256) as sb:
        result = sb.commands.run(["python", "-c", "x = bytearray(600 * 2**20)"], check=False)
        assert result.signal == 9 and result.exit_code == 137
        assert "out-of-memory" in (result.error or "") and "256 MiB" in result.error
        assert sb.commands.run("echo still alive").stdout == "still alive\n"


def test_commands_over_tcp_with_an_api_key(server: ServerHandle) -> None:
    with Sandbox.create(api_url=server.tcp_url, api_key=server.api_key, timeout=120) as sb:
        assert sb.commands.run("echo over tcp").stdout == "over tcp\n"


def test_async_commands(server: ServerHandle) -> None:
    async def main() -> None:
        async with await AsyncSandbox.create(timeout=120) as sb:
            lines: list[str] = []
            result = await sb.commands.run("echo a; echo b", on_stdout=lambda m: lines.append(m.line))
            assert result.stdout == "a\nb\n" and "".join(lines) == "a\nb\n"
            handle = await sb.commands.run("cat", background=True)
            await handle.send_stdin("async\n")
            await handle.close_stdin()
            assert [m.line async for m in handle] == ["async\n"]
            assert (await handle.wait()).exit_code == 0
            with pytest.raises(CommandTimeoutError):
                await sb.commands.run("sleep 60", timeout=1)

    asyncio.run(main())
