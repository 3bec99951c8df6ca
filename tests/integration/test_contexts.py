"""Contexts: create with a language and cwd, list in creation order, restart (state gone, same id),
remove; runs in one context are serialized, runs in different contexts run in parallel."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nullspace import ContextNotFoundError, Execution, Sandbox


def test_create_list_restart_remove(sandbox: Sandbox) -> None:
    first = sandbox.create_context(language="python", cwd="/tmp")
    second = sandbox.create_context(language="py")  # an alias
    assert (first.language, first.cwd) == ("python", "/tmp")
    assert (second.language, second.cwd) == ("python", "/home/user")
    ids = [c.id for c in sandbox.list_contexts()]
    assert ids.index(first.id) < ids.index(second.id)  # creation order

    sandbox.run_code("x = 1", context=first)
    restarted = sandbox.restart_context(first)
    assert restarted.id == first.id and restarted.cwd == "/tmp"
    assert sandbox.run_code("x", context=first).error.name == "NameError"  # state gone
    assert sandbox.run_code("import os; os.getcwd()", context=first).text == "/tmp"

    sandbox.remove_context(first)
    assert first.id not in [c.id for c in sandbox.list_contexts()]
    with pytest.raises(ContextNotFoundError):
        sandbox.run_code("1", context=first)
    assert sandbox.run_code("2", context=second).text == "2"


def test_runs_in_different_contexts_run_in_parallel(sandbox: Sandbox) -> None:
    contexts = [sandbox.create_context() for _ in range(2)]
    code = "import time\nstart = time.time()\ntime.sleep(2)\nstart"
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda ctx: sandbox.run_code(code, context=ctx), contexts))
    elapsed = time.monotonic() - t0
    starts = [float(run.text) for run in runs]
    assert abs(starts[0] - starts[1]) < 1.0, starts  # both slept at the same time
    assert elapsed < 3.5, elapsed  # ~2 s, not 4


def test_runs_in_one_context_are_serialized(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context()
    results: dict[str, Execution] = {}
    started = threading.Event()

    def first() -> None:
        results["first"] = sandbox.run_code(
            "import time\nprint('first', flush=True)\ntime.sleep(2)\nshared = 'set by first'",
            context=ctx,
            on_stdout=lambda _: started.set(),
        )

    t0 = time.monotonic()
    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(30)
    results["second"] = sandbox.run_code("shared", context=ctx)  # queued behind the first
    thread.join()
    assert results["second"].text == "set by first"
    assert results["second"].execution_count == results["first"].execution_count + 1
    assert time.monotonic() - t0 >= 2.0
