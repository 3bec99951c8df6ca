"""The boot kernel's early launch (kernel_process.py) and its adoption by a real Kernel."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from nullspace.agent import kernel_process
from nullspace.agent.kernel_process import PYTHON_LAUNCHER, kernel_argv, prelaunch
from nullspace.agent.kernels import Kernel
from nullspace.agent.runs import silent

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_kernel_argv_swaps_only_ipykernel_launcher() -> None:
    assert kernel_argv(["/py", "-m", "ipykernel_launcher", "-f", "{connection_file}"]) == [
        "/py", PYTHON_LAUNCHER, "-f", "{connection_file}"
    ]
    other = ["/usr/bin/R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]
    assert kernel_argv(other) == other


def _spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, spec: dict) -> None:
    kernels = tmp_path / "jupyter" / "kernels" / name
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


@pytest.mark.parametrize(
    "spec",
    [
        {"argv": ["x", "{connection_file}"], "env": {"A": "${B}"}},  # env substitutions
        {"argv": ["x", "{connection_file}"], "metadata": {"nullspace": {"transport": "tcp"}}},
        {"argv": ["x", "--port={shell_port}", "{connection_file}"]},  # placeholders we do not fill
        {"argv": "x {connection_file}"},
    ],
)
def test_prelaunch_leaves_what_it_cannot_reproduce_to_jupyter_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: dict
) -> None:
    _spec(tmp_path, monkeypatch, "odd", spec)
    found = prelaunch(
        "odd", connection_file=str(tmp_path / "k1.json"), cwd=str(tmp_path),
        extra_arguments=[], oom_score_adj=0, kernel_output="null",
    )
    assert found is None
    assert not (tmp_path / "k1.json").exists()


def test_prelaunch_of_a_missing_kernelspec_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setattr(kernel_process.sys, "prefix", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kernel_process.find_kernelspec("no-such-kernel") is None


async def test_the_prelaunched_kernel_is_adopted_not_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spec(tmp_path, monkeypatch, "python3", {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "language": "python", "display_name": "Python 3",
    })
    conn = str(tmp_path / "k1.json")
    early = prelaunch(
        "python3", connection_file=conn, cwd=str(tmp_path), extra_arguments=[],
        oom_score_adj=0, kernel_output="null",
    )
    assert early is not None
    assert early.process.args[:2] == [sys.executable, PYTHON_LAUNCHER]
    assert os.stat(conn).st_mode & 0o777 == 0o600
    kernel = Kernel("python3", cwd=str(tmp_path), connection_file=conn, prelaunched=early)
    try:
        await kernel.start()
        assert kernel.pid == early.process.pid  # the same process: adopted
        reply = await silent(kernel, "import sys", user_expressions={"d": "'debugpy' in sys.modules"})
        assert reply is not None and reply["status"] == "ok"
        assert reply["user_expressions"]["d"]["data"]["text/plain"] == "False"  # launch.py
        await kernel.restart()  # jupyter_client starts the next process the usual way
        assert kernel.pid != early.process.pid
        assert (await silent(kernel, "1"))["status"] == "ok"
    finally:
        await kernel.shutdown()
    assert early.process.poll() is not None


async def test_a_prelaunched_kernel_of_another_file_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _spec(tmp_path, monkeypatch, "python3", {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "language": "python", "display_name": "Python 3",
    })
    early = prelaunch(
        "python3", connection_file=str(tmp_path / "k1.json"), cwd=str(tmp_path), extra_arguments=[],
        oom_score_adj=0, kernel_output="null",
    )
    assert early is not None
    kernel = Kernel("python3", cwd=str(tmp_path), connection_file=str(tmp_path / "k2.json"), prelaunched=early)
    try:
        await kernel.start()
        assert kernel.pid != early.process.pid
        assert early.process.wait(timeout=10) != 0
    finally:
        await kernel.shutdown()


def test_agent_only_variables_never_reach_kernels_or_commands() -> None:
    env = kernel_process.kernel_env({"NULLSPACE_PRELOAD": "numpy", "JPY_PARENT_PID": "1", "KEEP": "1"})
    assert env == {"KEEP": "1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ()), ("", ()), ("numpy, matplotlib.pyplot", ("numpy", "matplotlib.pyplot")), ("a;b,c..d,ok", ("ok",))],
)
def test_preload_modules(value: str | None, expected: tuple[str, ...]) -> None:
    from nullspace.agent.config import preload_modules

    assert preload_modules(value) == expected
