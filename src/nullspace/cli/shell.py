"""`nullspace sandbox shell ID`: an interactive terminal in a sandbox, through `sandbox.pty`.

The local terminal goes raw (every key, Ctrl-C included, goes to the sandbox's program); the
remote terminal starts at the local size and follows it (SIGWINCH → resize). Input is sent in
order, one request per burst of keys; output bytes go to stdout as they arrive. The session
ends when the program ends (its exit code is ours); if we end first (a signal, a broken
connection), the program is killed rather than left running unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Annotated

import typer

from .. import AsyncPtyHandle, AsyncSandbox, NullspaceError
from ._output import fail, printable, safe

READ_SIZE = 4096
ENDING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
EOT = b"\x04"  # what a terminal sends for Ctrl-D: the end of input, for a piped stdin


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    """Raw mode on a terminal for the block (restored however it ends); nothing for a pipe."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _size() -> tuple[int, int]:
    cols, rows = shutil.get_terminal_size(fallback=(80, 24))
    return max(1, min(rows, 1000)), max(1, min(cols, 1000))


async def _pump_input(handle: AsyncPtyHandle, fd: int) -> None:
    """stdin → the terminal, in order; a burst of keys is one request."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            # The reader callback may fire once more after a read took the data; a read then
            # would block the whole loop (stdin stays blocking: it is the user's terminal).
            if not select.select([fd], [], [], 0)[0]:
                continue
            data = os.read(fd, READ_SIZE)
            await handle.send_input(data or EOT)
            if not data:
                return  # a pipe ended: Ctrl-D was sent, the output says what happens next
    finally:
        loop.remove_reader(fd)


async def _session(sandbox_id: str, cmd: str | None, stdin: int, stdout: int) -> int:
    sandbox = await AsyncSandbox.connect(sandbox_id)
    try:
        rows, cols = _size()
        handle = await sandbox.pty.create(rows=rows, cols=cols, cmd=cmd)
        loop = asyncio.get_running_loop()
        resizes: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        loop.add_signal_handler(signal.SIGWINCH, lambda: resizes.put_nowait(_size()))
        session = asyncio.current_task()
        assert session is not None
        for hangup in ENDING_SIGNALS:  # our terminal closed or we were told to stop: end it too
            loop.add_signal_handler(hangup, session.cancel)

        async def follow_size() -> None:
            while True:
                size = await resizes.get()
                while not resizes.empty():  # a window being dragged: only the last size matters
                    size = resizes.get_nowait()
                await handle.resize(*size)

        def show(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view):]

        ended = False
        with _raw(stdin):
            helpers = [asyncio.create_task(_pump_input(handle, stdin)), asyncio.create_task(follow_size())]
            try:
                code = await handle.wait(on_data=show)
                ended = True
            finally:
                for sig in (signal.SIGWINCH, *ENDING_SIGNALS):
                    loop.remove_signal_handler(sig)
                for task in helpers:
                    task.cancel()
                results = await asyncio.gather(*helpers, return_exceptions=True)
                if not ended:
                    with contextlib.suppress(NullspaceError):
                        await handle.kill()
        for result in results:  # the input side failing (the sandbox ended, say) is worth a word
            if isinstance(result, NullspaceError) and not isinstance(result, asyncio.CancelledError):
                sys.stderr.write(f"\r\n[nullspace: input stopped: {printable(str(result))}]\r\n")
        return code
    finally:
        await sandbox.close()


def shell(
    sandbox_id: Annotated[str, typer.Argument(metavar="ID", help="The sandbox's id (sb_...).")],
    cmd: Annotated[str | None, typer.Option("--cmd", help="Program to run instead of bash, e.g. 'python3'.")] = None,
) -> None:
    """Open an interactive terminal in a sandbox (bash, as its user; resizes follow yours).

    Exit with `exit` or Ctrl-D; the exit code is the shell's. Everything the program prints
    reaches your terminal as is, as with ssh.
    """
    try:
        code = asyncio.run(_session(sandbox_id, cmd, sys.stdin.fileno(), sys.stdout.fileno()))
    except NullspaceError as exc:
        fail(f"{type(exc).__name__}: {safe(str(exc))}")
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise typer.Exit(129) from None  # SIGHUP/SIGTERM: the remote program was killed
    raise typer.Exit(code if 0 <= code < 256 else 1)
