"""`sandbox.pty` end to end: a shell on a pseudo-terminal in a real sandbox, through our SDK."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from nullspace import AsyncSandbox, ConflictError, InvalidArgumentError, PtyHandle, Sandbox

from .conftest import ServerHandle


@pytest.fixture(scope="module")
def sbx(server: ServerHandle) -> Iterator[Sandbox]:
    with Sandbox.create(template="code-interpreter", timeout=600) as sb:
        yield sb


class Screen:
    """Everything a terminal printed, read by a thread as it comes."""

    def __init__(self, handle: PtyHandle) -> None:
        self.out = b""
        self.exit_code: int | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(handle,), daemon=True)
        self._thread.start()

    def _read(self, handle: PtyHandle) -> None:
        def got(data: bytes) -> None:
            with self._lock:
                self.out += data

        self.exit_code = handle.wait(on_data=got)

    def wait_for(self, needle: bytes, after: int = 0, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out[after:]:
            assert time.monotonic() < deadline, f"{needle!r} not seen in {self.out[after:]!r}"
            time.sleep(0.02)
        return self.out[after:]

    def join(self, timeout: float = 20) -> int | None:
        self._thread.join(timeout)
        return self.exit_code


def test_a_shell_on_a_terminal(sbx: Sandbox) -> None:
    term = sbx.pty.create(rows=30, cols=100)
    assert term.info.pty == (30, 100) and term.pid > 0
    screen = Screen(term)
    term.send_input("tty; stty size; id -un; echo $TERM; echo MARK-$((6*7))\n")
    out = screen.wait_for(b"MARK-42")
    assert b"/dev/pts/" in out and b"30 100" in out and b"user" in out and b"xterm-256color" in out

    mark = len(screen.out)
    term.resize(rows=10, cols=40)
    term.send_input(b"stty size; echo R-$((1+1))\r")
    assert b"10 40" in screen.wait_for(b"R-2", mark)

    # Ctrl-C interrupts the foreground job, not the shell
    term.send_input("sleep 60\n")
    time.sleep(0.5)
    mark = len(screen.out)
    term.send_input("\x03echo AFTER-$((2+2))\n")
    screen.wait_for(b"AFTER-4", mark)

    # it is a command like any other: listed, and re-attachable by id
    assert term.id in [c.id for c in sbx.commands.list()]
    again = sbx.pty.connect(term.id)
    assert again.pid == term.pid

    term.send_input("exit 7\n")
    assert screen.join() == 7
    assert term.id not in [c.id for c in sbx.commands.list()]
    with pytest.raises(ConflictError):
        term.send_input("too late\n")


def test_kill_a_terminal_and_bad_sizes(sbx: Sandbox) -> None:
    term = sbx.pty.create(cmd="sleep 600", rows=5, cols=5)
    assert term.kill() is True
    assert term.wait() == 137
    assert term.kill() is False
    with pytest.raises(InvalidArgumentError):
        sbx.pty.create(rows=0, cols=80)
    plain = sbx.commands.run("sleep 600", background=True)
    with pytest.raises(ConflictError):
        sbx.pty.resize(plain.id, 10, 10)
    plain.kill()


def test_async_terminal(server: ServerHandle) -> None:
    async def main() -> None:
        async with await AsyncSandbox.create(template="code-interpreter", timeout=120) as sb:
            term = await sb.pty.create(cmd=["/bin/bash", "-c", "read line; echo got:$line; exit 4"])
            await term.send_input("hello\n")
            out = b""
            async for data in term:
                out += data
            assert b"got:hello" in out and term.exit_code == 4

    asyncio.run(main())
