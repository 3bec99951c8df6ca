"""Kernel health: a kernel that dies (out of memory, segfault, os._exit, a signal) gives an error
that names what happened and says the state was lost; the context restarts by itself and the
next run works. A timeout interrupts the kernel, and restarts it only when interrupting fails."""

from __future__ import annotations

import time

import pytest

from nullspace import ExecutionTimeoutError, Sandbox

MiB = 1 << 20


def assert_recovered(sandbox: Sandbox, context: object = None) -> None:
    """The next run works, in a fresh kernel: what the dead one held is gone."""
    assert sandbox.run_code("6 * 7", context=context).text == "42"
    gone = sandbox.run_code("marker", context=context).error
    assert gone is not None and gone.name == "NameError"


@pytest.mark.parametrize(
    ("code", "signal", "exit_code", "text"),
    [
        ("import ctypes\nctypes.string_at(0)", 11, None, "SIGSEGV"),
        ("import os\nos._exit(3)", None, 3, "exit code 3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 9, None, "SIGKILL"),
        ("import os, signal\nos.abort()", 6, None, "SIGABRT"),
    ],
    ids=["segfault", "os._exit", "sigkill", "abort"],
)
def test_kernel_death_is_named_and_the_context_restarts(
    sandbox: Sandbox, code: str, signal: int | None, exit_code: int | None, text: str
) -> None:
    sandbox.run_code("marker = 1")
    errors = []
    execution = sandbox.run_code(code, on_error=errors.append, timeout=60)
    error = execution.error
    assert error is not None and errors == [error]
    assert error.name == "KernelDied", error
    assert text in error.value
    assert error.state_lost is True
    assert error.details.get("signal") == signal and error.details.get("exit_code") == exit_code
    assert_recovered(sandbox)


def test_a_non_default_context_restarts_with_the_same_id(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context(cwd="/tmp")
    sandbox.run_code("marker = 1", context=ctx)
    died = sandbox.run_code("import os\nos._exit(1)", context=ctx).error
    assert died is not None and died.name == "KernelDied" and died.state_lost
    assert_recovered(sandbox, ctx)
    assert sandbox.run_code("import os; os.getcwd()", context=ctx).text == "/tmp"  # same cwd
    assert ctx.id in [c.id for c in sandbox.list_contexts()]


def test_out_of_memory_names_the_limit_and_the_context_restarts(server) -> None:  # noqa: ANN001
    with Sandbox.create(memory_mb=256, timeout=120) as sb:
        sb.run_code("marker = 1")
        # Touch memory in 32 MiB steps: the cgroup's OOM killer fires, not a MemoryError.
        execution = sb.run_code("chunks = []\nwhile True:\n    chunks.append(b'x' * (32 << 20))", timeout=60)
        error = execution.error
        assert error is not None
        assert error.name == "OutOfMemory", error
        assert "256 MiB" in error.value
        assert error.state_lost is True
        assert error.details["limit"] == {"resource": "memory", "limit_bytes": 256 * MiB}
        assert any(limit["resource"] == "memory" for limit in execution.limits)
        assert_recovered(sb)


def test_timeout_interrupts_and_keeps_state_when_interrupting_is_enough(sandbox: Sandbox) -> None:
    sandbox.run_code("marker = 'kept'")
    with pytest.raises(ExecutionTimeoutError) as info:
        sandbox.run_code("import time\nwhile True: time.sleep(0.1)", timeout=1)
    error = info.value.execution.error
    assert error is not None and error.name == "ExecutionTimeout"
    assert "interrupted" in error.value and error.state_lost is False
    assert sandbox.run_code("marker").text == "kept"


def test_timeout_restarts_a_kernel_that_ignores_the_interrupt(sandbox: Sandbox) -> None:
    sandbox.run_code("marker = 1")
    start = time.monotonic()
    with pytest.raises(ExecutionTimeoutError) as info:
        sandbox.run_code(
            "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)", timeout=1
        )
    assert time.monotonic() - start < 30
    error = info.value.execution.error
    assert error is not None and error.name == "ExecutionTimeout"
    assert "restarted" in error.value and error.state_lost is True
    assert_recovered(sandbox)
