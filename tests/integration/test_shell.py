"""`nullspace sandbox shell ID` driven through a real pseudo-terminal (pexpect), as a person would."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import pexpect
import pytest

from nullspace import Sandbox

from .conftest import ServerHandle

PROMPT = r"user@sandbox:[^$]*\$ "


@pytest.fixture(scope="module")
def sbx(server: ServerHandle) -> Iterator[Sandbox]:
    with Sandbox.create(template="code-interpreter", timeout=300) as sb:
        yield sb


def spawn(sandbox_id: str, *args: str, rows: int = 30, cols: int = 100) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "nullspace", "sandbox", "shell", sandbox_id, *args],
                          dimensions=(rows, cols), timeout=30, env=dict(os.environ))
    return child


def test_shell_is_a_real_terminal_that_follows_resizes(sbx: Sandbox) -> None:
    child = spawn(sbx.sandbox_id)
    try:
        child.expect(PROMPT)
        child.sendline("tty; stty size; echo M-$((6*7))")
        child.expect("/dev/pts/")
        child.expect("30 100")
        child.expect("M-42")
        child.expect(PROMPT)

        child.setwinsize(40, 132)  # the kernel sends the CLI SIGWINCH; it resizes the remote pty
        deadline = time.monotonic() + 10
        while True:
            child.sendline("stty size")
            if child.expect(["40 132", "30 100"]) == 0:
                break
            assert time.monotonic() < deadline, "the resize never reached the sandbox"
            time.sleep(0.2)
        child.expect(PROMPT)

        child.sendline("sleep 100")  # raw mode: Ctrl-C goes to the sandbox, not to the CLI
        time.sleep(0.5)
        child.sendcontrol("c")
        child.expect(PROMPT)
        child.sendline("echo after-$?")
        child.expect("after-130")

        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 3


def test_another_program_and_ctrl_d(sbx: Sandbox) -> None:
    child = spawn(sbx.sandbox_id, "--cmd", "python3 -q")
    try:
        child.expect(">>> ")
        child.sendline("print(6 * 7)")
        child.expect("42")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_the_remote_program_dies_with_the_cli(sbx: Sandbox) -> None:
    child = spawn(sbx.sandbox_id)
    try:
        child.expect(PROMPT)
        child.sendline("echo $$")
        child.expect(r"(\d+)\r\n")
        pid = int(child.match.group(1))
        assert any(c.pid == pid for c in sbx.commands.list())
        child.kill(signal.SIGHUP)  # the user's terminal went away
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    deadline = time.monotonic() + 10
    while any(c.pid == pid for c in sbx.commands.list()):
        assert time.monotonic() < deadline, "the sandbox's shell outlived the CLI"
        time.sleep(0.1)


def test_unknown_sandbox(server: ServerHandle) -> None:
    child = spawn("sb_0000000000000000")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert b"SandboxNotFoundError" in child.before
