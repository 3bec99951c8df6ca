"""Sandboxes that must not die, and requests cut by a kill: context limits, small memory on a
pooled server, a kill during a non-streaming request."""

from __future__ import annotations

import threading
import time

import pytest

from nullspace import ConflictError, Sandbox, SandboxNotFoundError

from .conftest import ServerHandle


def test_the_context_limit_is_a_clear_409_and_the_sandbox_lives_on(sandbox: Sandbox) -> None:
    sandbox.run_code("1")  # the default Python context exists
    made = []
    with pytest.raises(ConflictError, match="at most 16 contexts") as err:
        for _ in range(20):
            made.append(sandbox.create_context(language="bash"))
    assert err.value.status_code == 409
    assert len(sandbox.list_contexts()) == 16
    assert sandbox.run_code("40 + 2").text == "42"
    sandbox.remove_context(made[-1])
    assert sandbox.run_code("echo again", context=sandbox.create_context(language="bash")).logs.stdout == ["again\n"]


def test_a_kill_during_a_non_streaming_request_is_a_404(server: ServerHandle) -> None:
    sb = Sandbox.create(timeout=60)
    errors: list[BaseException] = []

    def start_r() -> None:
        try:
            sb.create_context(language="r")  # ~1 s of kernel start
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=start_r)
    thread.start()
    time.sleep(0.3)
    Sandbox.connect(sb.sandbox_id).kill()
    thread.join(30)
    assert errors, "the context was created although the sandbox was killed"
    assert isinstance(errors[0], SandboxNotFoundError), repr(errors[0])
    assert "was killed" in str(errors[0])


def test_small_memory_on_a_pooled_server_starts_cleanly(server: ServerHandle) -> None:
    with Sandbox.create(timeout=60, memory_mb=64) as sb:
        assert sb.run_code("1 + 1").text == "2"
        assert sb.get_info().memory_mb == 64
    log = server.log()
    assert "could not configure pooled sandbox" not in log
    assert "EBUSY" not in log and "Device or resource busy" not in log
