"""Forking a context through the SDK: the fork starts from the parent's state, then both diverge."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nullspace import (
    ConflictError,
    ContextNotFoundError,
    ExecutionTimeoutError,
    InvalidArgumentError,
    Sandbox,
)


@pytest.fixture(scope="module")
def sb(server) -> Iterator[Sandbox]:  # noqa: ANN001
    with Sandbox.create(template="code-interpreter", timeout=600, memory_mb=1024) as sandbox:
        yield sandbox


ZOMBIES = """
import glob, time
for _ in range(50):
    zombies = [p for p in glob.glob('/proc/[0-9]*/stat') if open(p).read().rsplit(')', 1)[1].split()[0] == 'Z']
    if not zombies:
        break
    time.sleep(0.1)
zombies
"""


def _pid(sb: Sandbox, ctx: object) -> str:
    return sb.run_code("import os; os.getpid()", context=ctx).text or ""


def test_fork_sees_the_state_and_both_diverge(sb: Sandbox) -> None:
    parent = sb.create_context()
    sb.run_code(
        "import numpy as np\nimport json\nx = 41\nblob = np.arange(1_000_000)\nitems = [1, 2]",
        context=parent,
    )
    fork = sb.fork_context(parent)
    assert fork.id != parent.id and fork.language == "python"
    assert fork.id in {c.id for c in sb.list_contexts()}
    assert _pid(sb, fork) != _pid(sb, parent)

    # the fork sees variables, imports and loaded data
    assert sb.run_code("x + 1", context=fork).text == "42"
    assert sb.run_code("int(blob.sum())", context=fork).text == str(sum(range(1_000_000)))
    assert sb.run_code("json.dumps(items)", context=fork).text == "[1, 2]"

    # writes in one never appear in the other, in both directions
    sb.run_code("x = 'fork'\nitems.append(3)\nblob[0] = -7\nonly_in_fork = 1", context=fork)
    sb.run_code("x = 'parent'\nonly_in_parent = 1", context=parent)
    assert sb.run_code("x, items, int(blob[0])", context=fork).text == "('fork', [1, 2, 3], -7)"
    assert sb.run_code("x, items, int(blob[0])", context=parent).text == "('parent', [1, 2], 0)"
    missing = sb.run_code("only_in_parent", context=fork)
    assert missing.error is not None and missing.error.name == "NameError"
    missing = sb.run_code("only_in_fork", context=parent)
    assert missing.error is not None and missing.error.name == "NameError"

    # output goes to the run that made it, on both sides
    out = sb.run_code("print('from the fork')", context=fork)
    assert out.logs.stdout == ["from the fork\n"]
    out = sb.run_code("import sys; print('from the parent'); sys.stdout.flush()", context=parent)
    assert out.logs.stdout == ["from the parent\n"]
    assert sb.run_code("import os; os.system('echo from-fd-1')", context=fork).logs.stdout == ["from-fd-1\n"]

    # a fork of a fork
    grandchild = sb.fork_context(fork)
    assert sb.run_code("x, len(items)", context=grandchild).text == "('fork', 3)"
    for ctx in (parent, fork, grandchild):
        sb.remove_context(ctx)


def test_the_default_context_forks(sb: Sandbox) -> None:
    sb.run_code("import pandas as pd\nframe = pd.DataFrame({'a': [1, 2, 3]})")  # the default context
    default = next(c for c in sb.list_contexts() if c.default and c.language == "python")
    fork = sb.fork_context(default.id)
    assert not fork.default
    assert sb.run_code("int(frame.a.sum())", context=fork).text == "6"
    sb.run_code("frame['a'] = 0", context=fork)
    assert sb.run_code("int(frame.a.sum())").text == "6"
    sb.remove_context(fork)
    assert sb.run_code("int(frame.a.sum())").text == "6"


def test_killing_or_restarting_one_leaves_the_other_running(sb: Sandbox) -> None:
    parent = sb.create_context()
    sb.run_code("state = 'kept'", context=parent)
    fork = sb.fork_context(parent)

    sb.remove_context(fork)  # its kernel is killed, and reaped
    assert sb.run_code("state", context=parent).text == "kept"
    assert sb.run_code(ZOMBIES, context=parent).text == "[]"
    assert fork.id not in {c.id for c in sb.list_contexts()}

    fork = sb.fork_context(parent)
    sb.restart_context(fork)  # a fresh kernel: the fork's state is gone, the parent's is not
    gone = sb.run_code("state", context=fork)
    assert gone.error is not None and gone.error.name == "NameError"
    assert sb.run_code("state", context=parent).text == "kept"
    assert sb.run_code("1 + 1", context=fork).text == "2"

    other = sb.fork_context(parent)
    sb.remove_context(parent)  # the fork's parent process goes away
    assert sb.run_code("state", context=other).text == "kept"
    sb.run_code("import os; os.kill(os.getpid(), 9)", context=other)  # dies on its own
    assert sb.run_code("1 + 2", context=other).text == "3"  # revived as a fresh kernel
    for ctx in (fork, other):
        sb.remove_context(ctx)


def test_a_run_in_the_fork_can_be_interrupted(sb: Sandbox) -> None:
    parent = sb.create_context()
    sb.run_code("kept = 'still here'", context=parent)
    fork = sb.fork_context(parent)
    start = time.monotonic()
    with pytest.raises(ExecutionTimeoutError) as info:
        sb.run_code("import time\nprint('started', flush=True)\ntime.sleep(600)", context=fork, timeout=2)
    assert time.monotonic() - start < 30
    assert info.value.execution is not None and info.value.execution.logs.stdout == ["started\n"]
    assert sb.run_code("kept", context=fork).text == "still here"  # interrupted, not restarted
    assert _pid(sb, fork) != _pid(sb, parent)
    # and the parent's interrupt reaches the parent only
    with pytest.raises(ExecutionTimeoutError):
        sb.run_code("import time\ntime.sleep(600)", context=parent, timeout=1)
    assert sb.run_code("kept", context=fork).text == "still here"
    assert sb.run_code("kept", context=parent).text == "still here"
    for ctx in (parent, fork):
        sb.remove_context(ctx)


def test_libraries_with_threads_work_in_the_fork(sb: Sandbox) -> None:
    # numpy's BLAS and pandas keep thread pools; only the forking thread exists in the fork
    parent = sb.create_context()
    setup = "import numpy as np, pandas as pd\nm = np.random.rand(400, 400)\nfloat((m @ m).sum()) > 0"
    assert sb.run_code(setup, context=parent, timeout=60).text == "True"
    fork = sb.fork_context(parent)
    check = "df = pd.DataFrame(m)\nbool(np.allclose(m @ m, (df @ df).values)) and len(df.groupby(0).size()) > 0"
    assert sb.run_code(check, context=fork, timeout=60).text == "True"
    assert sb.run_code(check, context=parent, timeout=60).text == "True"
    for ctx in (parent, fork):
        sb.remove_context(ctx)


def test_a_kernel_cannot_make_the_agent_adopt_another_process(sb: Sandbox) -> None:
    ctx = sb.create_context()
    patch = "import importlib\nimportlib.import_module('_nullspace_kernel.fork').fork = lambda path: 1"
    assert sb.run_code(patch, context=ctx).error is None
    before = len(sb.list_contexts())
    with pytest.raises(ConflictError) as info:
        sb.fork_context(ctx)
    assert info.value.status_code == 409 and "could not fork" in str(info.value)
    assert sb.run_code("1 + 1", context=ctx).text == "2"
    assert len(sb.list_contexts()) == before
    sb.remove_context(ctx)


def test_only_python_contexts_fork(sb: Sandbox) -> None:
    bash = sb.create_context(language="bash")
    with pytest.raises(InvalidArgumentError) as info:
        sb.fork_context(bash)
    assert info.value.status_code == 400 and "Python only" in str(info.value)
    with pytest.raises(ContextNotFoundError):
        sb.fork_context("00000000-0000-0000-0000-000000000000")
    sb.remove_context(bash)
