"""Regression tests for the hardening findings of issue #13, each through the SDK or raw HTTP
against a real server. Each one failed (or hung) before its fix."""

from __future__ import annotations

import time

import pytest

from nullspace import (
    CommandExitError,
    PayloadTooLargeError,
    Sandbox,
    SandboxNotFoundError,
    SandboxUnresponsiveError,
)

HANG_BOUND = 10.0  # seconds; a stopped agent used to hang calls for 20-35 s


def _elapsed_since(start: float) -> float:
    return time.monotonic() - start


# -- finding 2: a stopped or killed agent ------------------------------------------------------


def test_stopped_agent_fails_fast_and_the_sandbox_lives_on(sandbox: Sandbox) -> None:
    start = time.monotonic()
    with pytest.raises(CommandExitError, match="unresponsive.*stopped"):
        sandbox.commands.run("kill -STOP 2", timeout=5)  # the agent is pid 2 of the sandbox
    assert _elapsed_since(start) < HANG_BOUND
    assert sandbox.commands.run("echo alive", timeout=5).stdout == "alive\n"  # resumed by the server

    sandbox.commands.run("sleep 0.3; kill -STOP 2", background=True)
    time.sleep(1.0)  # the agent is stopped before the next call arrives
    start = time.monotonic()
    with pytest.raises(SandboxUnresponsiveError, match="stopped"):
        sandbox.files.read("/etc/hostname")
    assert _elapsed_since(start) < HANG_BOUND

    execution = sandbox.run_code("import os, signal; os.kill(2, signal.SIGSTOP)", timeout=5)
    assert execution.error is not None and execution.error.name == "SandboxUnresponsive"
    assert sandbox.run_code("1 + 1").text == "2"


def test_killed_agent_ends_the_sandbox_with_a_reason(server: object) -> None:
    with Sandbox.create(template="code-interpreter", timeout=120) as sb:
        start = time.monotonic()
        execution = sb.run_code("import os, signal; os.kill(2, signal.SIGKILL)", timeout=5)
        assert _elapsed_since(start) < HANG_BOUND
        assert execution.error is not None
        with pytest.raises(SandboxNotFoundError, match="agent exited unexpectedly"):
            sb.run_code("1")


# -- finding 4: unbounded reads in the SDK ------------------------------------------------------


def test_read_refuses_a_sparse_terabyte_before_reading_it(sandbox: Sandbox) -> None:
    sandbox.commands.run("truncate -s 1T /tmp/huge && printf 0123456789 > /tmp/small")
    start = time.monotonic()
    with pytest.raises(PayloadTooLargeError, match="1099511627776 bytes.*max_bytes"):
        sandbox.files.read("/tmp/huge", format="bytes")
    with pytest.raises(PayloadTooLargeError):
        sandbox.files.read("/tmp/huge")
    assert _elapsed_since(start) < HANG_BOUND
    with pytest.raises(PayloadTooLargeError, match="max_bytes of 9"):
        sandbox.files.read("/tmp/small", max_bytes=9)
    assert sandbox.files.read("/tmp/small", format="bytes", max_bytes=10) == b"0123456789"
    stream = sandbox.files.read("/tmp/huge", format="stream")  # streaming is the caller's choice
    first = next(iter(stream))
    assert first and set(first) == {0}
    stream.close()
