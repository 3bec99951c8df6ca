"""Running code through the SDK: state, streaming, rich output, errors, timeouts, contexts."""

from __future__ import annotations

import base64
import time

import pytest

from nullspace import ExecutionTimeoutError, InvalidArgumentError, Sandbox

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_quickstart_prints_42(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("x = 40 + 2\nx")
    assert execution.results[0].text == "42"
    assert execution.text == "42"
    assert execution.results[0].is_main_result
    assert execution.error is None


def test_state_persists_across_runs(sandbox: Sandbox) -> None:
    sandbox.run_code("import math\nvalues = [math.sqrt(16)]")
    sandbox.run_code("values.append(5)")
    assert sandbox.run_code("sum(values)").text == "9.0"


def test_execution_count_counts_user_runs(sandbox: Sandbox) -> None:
    first = sandbox.run_code("1")
    second = sandbox.run_code("2", envs={"A": "b"})  # env setup runs are silent
    assert second.execution_count == first.execution_count + 1


def test_ipython_history_is_there(sandbox: Sandbox) -> None:
    sandbox.run_code("history_marker = 'h-1'")
    assert sandbox.run_code("_i").text == "history_marker = 'h-1'"
    shown = sandbox.run_code("%history -l 2")  # batched SQLite writes: still complete
    assert "history_marker = 'h-1'" in shown.logs.stdout[0]


def test_stdout_streams_before_the_cell_ends(sandbox: Sandbox) -> None:
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    execution = sandbox.run_code(
        "import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('second')",
        on_stdout=lambda msg: seen.append((time.monotonic() - start, msg.line)),
    )
    total = time.monotonic() - start
    assert [line for _, line in seen] == ["first\n", "second\n"]
    # 'first' arrived while the 3 s sleep was still running, not with the final flush
    assert seen[0][0] < total - 2.0, (seen, total)
    assert execution.logs.stdout == ["first\n", "second\n"]


def test_stderr_is_separate(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert execution.logs.stdout == ["out\n"]
    assert execution.logs.stderr == ["err\n"]


def test_plt_show_gives_png(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
    )
    pngs = [r for r in execution.results if r.png]
    assert len(pngs) == 1
    assert "image/png" in pngs[0].data
    assert base64.b64decode(pngs[0].png).startswith(PNG_MAGIC)
    assert "png" in pngs[0].formats()


def test_error_has_name_value_traceback(sandbox: Sandbox) -> None:
    errors = []
    execution = sandbox.run_code("def f():\n    1 / 0\nf()", on_error=errors.append)
    assert execution.error is not None
    assert execution.error.name == "ZeroDivisionError"
    assert execution.error.value == "division by zero"
    assert "f()" in execution.error.traceback and "1 / 0" in execution.error.traceback
    assert "\x1b[" not in execution.error.traceback  # no ANSI colours
    assert errors == [execution.error]


def test_run_timeout_interrupts_and_context_survives(sandbox: Sandbox) -> None:
    sandbox.run_code("kept = 'still here'")
    start = time.monotonic()
    with pytest.raises(ExecutionTimeoutError) as info:
        sandbox.run_code("import time\nprint('started', flush=True)\ntime.sleep(600)", timeout=2)
    assert time.monotonic() - start < 30
    assert info.value.execution is not None
    assert info.value.execution.logs.stdout == ["started\n"]
    assert sandbox.run_code("kept").text == "still here"


def test_contexts_are_independent(sandbox: Sandbox) -> None:
    first = sandbox.create_context()
    second = sandbox.create_context(cwd="/tmp")
    sandbox.run_code("secret = 1", context=first)
    missing = sandbox.run_code("secret", context=second)
    assert missing.error is not None and missing.error.name == "NameError"
    assert sandbox.run_code("import os; os.getcwd()", context=second).text == "/tmp"
    ids = [c.id for c in sandbox.list_contexts()]
    assert ids.index(first.id) < ids.index(second.id)


def test_restart_and_remove_context(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context()
    sandbox.run_code("y = 5", context=ctx)
    sandbox.restart_context(ctx)
    after = sandbox.run_code("y", context=ctx)
    assert after.error is not None and after.error.name == "NameError"
    sandbox.remove_context(ctx)
    assert ctx.id not in [c.id for c in sandbox.list_contexts()]


def test_language_and_context_together_is_refused(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context()
    with pytest.raises(InvalidArgumentError):
        sandbox.run_code("1", language="python", context=ctx)


def test_sandbox_and_run_envs(server) -> None:  # noqa: ANN001
    with Sandbox.create(envs={"GREETING": "hello"}, timeout=120) as sb:
        assert sb.run_code("import os; os.environ['GREETING']").text == "hello"
        run = sb.run_code("os.environ['GREETING'] + os.environ['EXTRA']", envs={"EXTRA": " world"})
        assert run.text == "hello world"
        assert sb.run_code("os.environ.get('EXTRA', 'gone')").text == "gone"
        assert (
            sb.run_code(
                "import subprocess; subprocess.run(['printenv', 'GREETING'], capture_output=True, text=True).stdout.strip()"
            ).text
            == "hello"
        )
