"""agent/bash_kernel.py on the host, driven by jupyter_client like the agent drives it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

KERNEL = Path(__file__).resolve().parents[3] / "src/nullspace/agent/bash_kernel.py"

pytestmark = pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")


@pytest.fixture
def kernel_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    spec = tmp_path / "kernels" / "nsbash"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-I", str(KERNEL), "-f", "{connection_file}"],
                "language": "bash",
                "display_name": "bash",
                "interrupt_mode": "signal",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("NS_FROM_ENV", "inherited")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the kernel keeps its cell file
    yield tmp_path


async def run(kc: Any, code: str, *, silent: bool = False, timeout: float = 20) -> tuple[dict, list[tuple]]:
    out: list[tuple] = []

    def hook(msg: dict) -> None:
        kind = msg["msg_type"]
        if kind == "stream":
            out.append((msg["content"]["name"], msg["content"]["text"]))
        elif kind == "error":
            out.append(("error", msg["content"]["ename"], msg["content"]["evalue"], msg["content"]["traceback"]))
        elif kind == "execute_input":
            out.append(("input", msg["content"]["execution_count"]))

    reply = await kc.execute_interactive(code, silent=silent, timeout=timeout, output_hook=hook)
    return reply["content"], out


def joined(out: list[tuple], name: str) -> str:
    return "".join(item[1] for item in out if item[0] == name)


def test_bash_kernel(kernel_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        km = AsyncKernelManager(kernel_name="nsbash", transport="ipc", connection_file=str(tmp_path / "k.json"))
        started = time.monotonic()
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=30)
            assert time.monotonic() - started < 10

            # state: variables, functions, cd, export persist; stdout and stderr are separate
            await run(kc, "x=41; f() { echo \"f:$1\"; }; cd /; export Y=7")
            reply, out = await run(kc, "echo $((x + 1)); f a; pwd; echo $Y $NS_FROM_ENV; echo err >&2")
            assert reply["status"] == "ok"
            assert joined(out, "stdout") == "42\nf:a\n/\n7 inherited\n"
            assert joined(out, "stderr") == "err\n"
            assert out[0][0] == "input"

            # an error: name, value, traceback (= the stderr, with "bash" for the cell file)
            reply, out = await run(kc, "nosuchcommand-xyz")
            assert reply["status"] == "error" and reply["ename"] == "BashError"
            assert reply["evalue"] == "exit status 127"
            assert reply["traceback"] == ["bash: line 1: nosuchcommand-xyz: command not found"]
            assert [o for o in out if o[0] == "error"]
            reply, _ = await run(kc, "if true; then")  # a syntax error does not end the shell
            assert reply["status"] == "error"
            assert joined((await run(kc, "echo $x"))[1], "stdout") == "41\n"

            # silent runs print nothing and do not count
            reply, out = await run(kc, "echo hidden; export Z=1", silent=True)
            assert out == [] and reply["status"] == "ok"
            count = reply["execution_count"]
            reply, out = await run(kc, "echo $Z; printf 'no newline'")
            assert joined(out, "stdout") == "1\nno newline" and reply["execution_count"] == count + 1

            # stdin is /dev/null; big output arrives whole
            reply, out = await run(kc, "cat; seq 1 100000 | tail -1; head -c 200000 /dev/zero | tr '\\0' a")
            text = joined(out, "stdout")
            assert text.startswith("100000\n") and text.count("a") == 200000

            # an interrupt ends the running command and the cell, twice in a row, state kept
            for code in ("sleep 30; echo not-reached", "while :; do :; done"):
                task = asyncio.ensure_future(run(kc, code))
                await asyncio.sleep(0.5)
                await km.interrupt_kernel()
                reply, out = await asyncio.wait_for(task, 10)
                assert reply["status"] == "error" and reply["evalue"] == "exit status 130"
                assert "not-reached" not in joined(out, "stdout")
            assert joined((await run(kc, "echo $x"))[1], "stdout") == "41\n"

            # a cell that redirects the shell's own output does not hang the kernel
            reply, out = await run(kc, "exec 2>&1; echo to-stdout >&2")
            assert reply["status"] == "ok" and joined(out, "stdout") == "to-stdout\n"
            reply, out = await run(kc, "rm -rf \"$TMPDIR\"/nsbash-*; echo still")
            assert joined(out, "stdout") == "still\n"
            assert joined((await run(kc, "echo again"))[1], "stdout") == "again\n"

            # bash killed from outside while idle: the kernel neither spins nor dies
            await run(kc, "echo $$ > \"$TMPDIR/bash.pid\"")
            os.kill(int((tmp_path / "bash.pid").read_text()), signal.SIGKILL)
            await asyncio.sleep(0.5)
            reply, out = await run(kc, "echo ${x:-fresh}")
            assert joined(out, "stdout") == "fresh\n"
            await run(kc, "x=41")

            # exit ends bash: reported, and the next run gets a fresh shell
            reply, _ = await run(kc, "exit 3")
            assert reply["status"] == "error" and reply["ename"] == "BashExited"
            reply, out = await run(kc, "echo ${x:-gone}")
            assert joined(out, "stdout") == "gone\n"
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    asyncio.run(scenario())
