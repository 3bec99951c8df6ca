"""ForkedProcess: a kernel the agent did not start, watched and killed by pid."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nullspace.agent.kernel_process import ForkedProcess


def test_poll_kill_and_wait() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        process = ForkedProcess(child.pid, os.getpid())
        assert process.poll() is None
        process.kill()
        child.wait(5)  # reaped by its parent, as the forking kernel's thread does
        assert process.wait(5) == -9
        assert process.poll() == -9
    finally:
        child.kill()
        child.wait()


def test_a_zombie_counts_as_exited() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        process = ForkedProcess(child.pid, os.getpid())
    except ProcessLookupError:
        child.wait()
        return  # exited before we looked: also right
    assert process.wait(5) == 1  # a zombie (not reaped yet) is gone for the agent
    child.wait()


def test_a_pid_that_does_not_run_is_refused() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        ForkedProcess(child.pid, os.getpid())


def test_only_a_child_of_the_forking_kernel_is_adopted() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(ProcessLookupError):
            ForkedProcess(child.pid, 1)  # user code in a kernel named a process it did not fork
        with pytest.raises(ProcessLookupError):
            ForkedProcess(os.getpid(), os.getppid())  # the agent itself
    finally:
        child.kill()
        child.wait()
