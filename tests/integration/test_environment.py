"""Environment: sandbox-level envs in every kernel; per-run envs for one run only, restored after
it (even when it fails); `execution_count` counts user runs only."""

from __future__ import annotations

from nullspace import Sandbox


def test_sandbox_envs_are_visible_in_every_kernel(server) -> None:  # noqa: ANN001
    with Sandbox.create(envs={"TEAM": "data", "QUOTE": 'it\'s "quoted" ü'}, timeout=120) as sb:
        code = "import os\nprint(os.environ['TEAM'] + '|' + os.environ['QUOTE'])"
        expected = ['data|it\'s "quoted" ü\n']
        assert sb.run_code(code).logs.stdout == expected
        ctx = sb.create_context(cwd="/tmp")
        assert sb.run_code(code, context=ctx).logs.stdout == expected
        sb.restart_context(ctx)  # a restarted kernel keeps them
        assert sb.run_code(code, context=ctx).logs.stdout == expected


def test_per_run_envs_apply_to_that_run_only(server) -> None:  # noqa: ANN001
    with Sandbox.create(envs={"MODE": "sandbox"}, timeout=120) as sb:
        read = "import os\nos.environ.get('MODE', '-') + ',' + os.environ.get('TOKEN', '-')"
        assert sb.run_code(read, envs={"MODE": "run", "TOKEN": "t1"}).text == "run,t1"
        assert sb.run_code(read).text == "sandbox,-"  # overridden value back, added one gone
        failed = sb.run_code("import os\nassert os.environ['TOKEN'] == 't2'\n1 / 0", envs={"TOKEN": "t2"})
        assert failed.error is not None and failed.error.name == "ZeroDivisionError"
        assert sb.run_code(read).text == "sandbox,-"  # restored after a failing run too
        child = "import subprocess\nsubprocess.run(['sh', '-c', 'echo $TOKEN'], capture_output=True, text=True).stdout"
        assert sb.run_code(child, envs={"TOKEN": "t3"}).text == "t3\\n"  # child processes see them


def test_execution_count_counts_user_runs(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context()
    counts = [
        sandbox.run_code("1", context=ctx).execution_count,
        sandbox.run_code("1 +", context=ctx).execution_count,  # a SyntaxError counts
        sandbox.run_code("2", context=ctx, envs={"A": "b"}).execution_count,  # env setup does not
        sandbox.run_code("3", context=ctx).execution_count,
    ]
    assert counts == [1, 2, 3, 4]
