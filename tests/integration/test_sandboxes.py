"""Sandbox lifecycle through the SDK: create, connect, list, timeouts, kill, TCP + API keys."""

from __future__ import annotations

import time

import pytest

from nullspace import AsyncSandbox, AuthenticationError, Sandbox, SandboxNotFoundError


def test_context_manager_kills_on_exit(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=60) as sb:
        sandbox_id = sb.sandbox_id
        assert sb.is_running()
    info = Sandbox.connect  # keep the name resolvable for the error below
    with pytest.raises(SandboxNotFoundError) as err:
        info(sandbox_id).run_code("1")
    assert "killed" in str(err.value)


def test_connect_list_and_metadata_filter(server) -> None:  # noqa: ANN001
    tag = f"t{time.monotonic_ns()}"
    with (
        Sandbox.create(metadata={"suite": tag, "role": "a"}, timeout=60) as a,
        Sandbox.create(metadata={"suite": tag, "role": "b"}, timeout=60) as b,
    ):
        a.run_code("shared = 'from a'")
        again = Sandbox.connect(a.sandbox_id)
        assert again.run_code("shared").text == "from a"
        listed = Sandbox.list(metadata={"suite": tag})
        assert {i.sandbox_id for i in listed} == {a.sandbox_id, b.sandbox_id}
        only_b = Sandbox.list(metadata={"suite": tag, "role": "b"})
        assert [i.sandbox_id for i in only_b] == [b.sandbox_id]


def test_lifetime_timeout_kills_the_sandbox(server) -> None:  # noqa: ANN001
    sb = Sandbox.create(timeout=2)
    assert sb.run_code("1 + 1").text == "2"
    time.sleep(3.5)
    assert not sb.is_running()
    with pytest.raises(SandboxNotFoundError) as err:
        sb.run_code("1")
    assert "timed out" in str(err.value)


def test_set_timeout_extends_life(server) -> None:  # noqa: ANN001
    sb = Sandbox.create(timeout=2)
    try:
        sb.set_timeout(60)
        time.sleep(3)
        assert sb.run_code("2 * 3").text == "6"
    finally:
        sb.kill()


def test_kill_then_use_raises_clear_error(server) -> None:  # noqa: ANN001
    sb = Sandbox.create(timeout=60)
    sb.kill()
    with pytest.raises(SandboxNotFoundError, match="was killed"):
        sb.run_code("1")


def test_remote_server_with_api_key(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=60, api_url=server.tcp_url, api_key=server.api_key) as sb:
        assert sb.run_code("6 * 7").text == "42"
    with pytest.raises(AuthenticationError):
        Sandbox.create(timeout=60, api_url=server.tcp_url, api_key="ns_wrong")
    with pytest.raises(AuthenticationError):
        Sandbox.list(api_url=server.tcp_url, api_key="")


@pytest.mark.anyio
async def test_async_sandbox(server) -> None:  # noqa: ANN001
    async with await AsyncSandbox.create(timeout=60) as sb:
        chunks = []
        execution = await sb.run_code("print('hi')\n21 * 2", on_stdout=chunks.append)
        assert execution.text == "42"
        assert [c.line for c in chunks] == ["hi\n"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
