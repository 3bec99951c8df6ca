"""AsyncSandbox against a scripted server (`tests/unit/client/_sync` is generated from this)."""

from __future__ import annotations

import json

import httpx
import pytest

import nullspace
from nullspace.client._async import _http

from ..fakes import NDJSON, RUN_EVENTS, FakeAPI, error, ndjson


async def make(api: FakeAPI, **kwargs: object) -> nullspace.AsyncSandbox:
    return await nullspace.AsyncSandbox.create(
        api_url="http://test", api_key="key-1", transport=api.transport(), **kwargs
    )


def stream_of(*chunks: bytes) -> httpx.Response:
    async def body():
        for chunk in chunks:  # noqa: UP028 (no `yield from` in async generators)
            yield chunk

    return httpx.Response(200, content=body(), headers=NDJSON)


# -- lifecycle -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_sends_body_and_api_key_then_kill_on_exit() -> None:
    api = FakeAPI()
    async with await make(api, envs={"A": "1"}, metadata={"team": "ml"}, memory_mb=512) as sbx:
        assert sbx.sandbox_id == "sb_1"
        assert repr(sbx) == "AsyncSandbox(sandbox_id='sb_1')"
    create = api.requests[0]
    assert create.headers["X-API-Key"] == "key-1"
    assert json.loads(create.content) == {
        "template": "code-interpreter",
        "timeout": 300,
        "envs": {"A": "1"},
        "metadata": {"team": "ml"},
        "memory_mb": 512,
    }
    assert create.extensions["timeout"]["read"] == 600  # first create may build the template
    assert [(r.method, r.url.path) for r in api.requests[1:]] == [("DELETE", "/v1/sandboxes/sb_1")]
    assert api.sandboxes["sb_1"]["state"] == "killed"


@pytest.mark.anyio
async def test_create_maps_template_not_found() -> None:
    api = FakeAPI()
    api.fail = ("/v1/sandboxes", error(404, "template_not_found", "no template 'x'"))
    with pytest.raises(nullspace.TemplateNotFoundError, match="no template 'x'") as info:
        await make(api, template="x")
    assert info.value.code == "template_not_found"
    assert info.value.status_code == 404


@pytest.mark.anyio
async def test_info_timeout_kill_and_is_running() -> None:
    api = FakeAPI()
    sbx = await make(api, request_timeout=7)
    info = await sbx.get_info()
    assert info.sandbox_id == "sb_1" and info.state == "running" and info.memory_mb == 1024
    assert api.requests[-1].extensions["timeout"]["read"] == 7
    await sbx.set_timeout(3600)
    assert api.bodies("POST", "/timeout") == [{"timeout": 3600}]
    assert await sbx.is_running() is True
    assert await sbx.kill() is True
    assert await sbx.kill() is False  # already gone: not an error
    assert await sbx.is_running() is False
    with pytest.raises(nullspace.SandboxNotFoundError):
        await sbx.set_timeout(10)
    await sbx.close()


@pytest.mark.anyio
async def test_connect_running_and_ended() -> None:
    api = FakeAPI()
    api.add("sb_live")
    api.add("sb_old", state="timed_out", end_reason="timed out after 120 s")
    sbx = await nullspace.AsyncSandbox.connect(
        "sb_live", api_url="http://test", transport=api.transport()
    )
    assert sbx.sandbox_id == "sb_live"
    options = {"api_url": "http://t", "transport": api.transport()}
    with pytest.raises(nullspace.SandboxNotFoundError, match="timed_out.*120 s"):
        await nullspace.AsyncSandbox.connect("sb_old", **options)
    with pytest.raises(nullspace.SandboxNotFoundError):
        await nullspace.AsyncSandbox.connect("sb_nope", **options)


@pytest.mark.anyio
async def test_list_filters_by_metadata() -> None:
    api = FakeAPI()
    api.add("sb_a", metadata={"team": "ml", "env": "dev"})
    api.add("sb_b", metadata={"team": "web"})
    found = await nullspace.AsyncSandbox.list(
        metadata={"team": "ml"}, state="running", api_url="http://t", transport=api.transport()
    )
    assert [s.sandbox_id for s in found] == ["sb_a"]
    assert isinstance(found[0], nullspace.SandboxInfo)
    assert found[0].created_at is not None and found[0].created_at.year == 2026
    params = api.requests[-1].url.params
    assert params["metadata.team"] == "ml" and params["state"] == "running"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_argument", nullspace.InvalidArgumentError),
        (422, "invalid_argument", nullspace.InvalidArgumentError),
        (401, "unauthorized", nullspace.AuthenticationError),
        (404, "not_found", nullspace.NotFoundError),
        (404, "sandbox_not_found", nullspace.SandboxNotFoundError),
        (404, "context_not_found", nullspace.ContextNotFoundError),
        (409, "conflict", nullspace.ConflictError),
        (413, "payload_too_large", nullspace.PayloadTooLargeError),
        (503, "capacity", nullspace.CapacityError),
        (500, "internal", nullspace.ServerError),
    ],
)
async def test_error_bodies_map_to_exception_classes(status: int, code: str, cls: type) -> None:
    api = FakeAPI()
    sbx = await make(api)
    api.fail = ("/sb_1", error(status, code, f"boom {code}"))
    with pytest.raises(cls) as info:
        await sbx.get_info()
    assert type(info.value) is cls
    assert info.value.message == f"boom {code}" and info.value.status_code == status


@pytest.mark.anyio
async def test_non_json_error_body_is_a_server_error() -> None:
    api = FakeAPI()
    sbx = await make(api)
    api.fail = ("/sb_1", httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(nullspace.ServerError, match="502"):
        await sbx.get_info()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_httpx_errors_become_transport_errors(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(nullspace.TransportError) as info:
        await nullspace.AsyncSandbox.create(
            api_url="http://t", transport=httpx.MockTransport(handler)
        )
    assert info.value.__cause__ is exc


# -- run_code --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_run_code_assembles_execution_and_fires_callbacks_in_order() -> None:
    api = FakeAPI()
    sbx = await make(api)
    seen: list[str] = []

    async def on_stdout(msg: nullspace.OutputMessage) -> None:
        assert msg.error is False and msg.timestamp is not None
        seen.append(f"out:{msg.line}")

    execution = await sbx.run_code(
        "print('hello')",
        on_stdout=on_stdout,
        on_stderr=lambda m: seen.append(f"err:{m.line}:{m.error}"),
        on_result=lambda r: seen.append(f"result:{r.text}"),
        on_error=lambda e: seen.append(f"error:{e.name}"),
    )
    assert seen == [
        "out:hello\n",
        "err:warn\n:True",
        "result:<Figure>",
        "out:bye\n",
        "result:2",
    ]
    assert execution.logs.stdout == ["hello\n", "bye\n"]
    assert execution.logs.stderr == ["warn\n"]
    assert execution.execution_count == 3
    assert execution.text == "2"
    assert [r.formats() for r in execution.results] == [["text", "png"], ["text"]]
    assert execution.limits == [
        {"resource": "memory", "limit": 1024, "message": "close to the limit"}
    ]
    assert execution.error is None
    (body,) = api.bodies("POST", "/execute")
    assert body == {
        "code": "print('hello')",
        "language": None,
        "context_id": None,
        "envs": None,
        "timeout": None,
    }


@pytest.mark.anyio
async def test_callbacks_fire_as_lines_arrive_not_after_the_body() -> None:
    api = FakeAPI()
    log: list[str] = []
    lines = [ndjson(e) for e in RUN_EVENTS]

    async def body():
        for i, line in enumerate(lines):
            log.append(f"sent {i}")
            yield line

    api.execute = lambda request: httpx.Response(200, content=body(), headers=NDJSON)
    sbx = await make(api)
    await sbx.run_code("x", on_stdout=lambda m: log.append(f"stdout {m.line.strip()}"))
    assert log.index("stdout hello") < log.index("sent 2")
    assert log.index("stdout bye") < log.index(f"sent {len(lines) - 1}")


@pytest.mark.anyio
async def test_run_code_error_is_returned_not_raised() -> None:
    api = FakeAPI()
    err = {
        "type": "error",
        "name": "ZeroDivisionError",
        "value": "division by zero",
        "traceback": ["Traceback...", "ZeroDivisionError: division by zero"],
    }
    api.execute = lambda request: stream_of(
        ndjson(err, {**err, "name": "Second"}, {"type": "end_of_execution", "status": "error"})
    )
    sbx = await make(api)
    errors: list[nullspace.ExecutionError] = []
    execution = await sbx.run_code("1/0", on_error=errors.append)
    assert execution.error is not None and execution.error.name == "ZeroDivisionError"
    assert execution.error.traceback == "Traceback...\nZeroDivisionError: division by zero"
    assert [e.name for e in errors] == ["ZeroDivisionError"]  # one error per run


@pytest.mark.anyio
async def test_run_code_stream_yields_typed_events_and_skips_unknown() -> None:
    api = FakeAPI()
    sbx = await make(api)
    items = [item async for item in sbx.run_code_stream("x", language="python")]
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "OutputMessage",
        "OutputMessage",
        "Result",
        "OutputMessage",
        "Result",
        "EndOfExecution",
    ]
    end = items[-1]
    assert isinstance(end, nullspace.EndOfExecution) and end.status == "ok"
    assert end.execution.text == "2" and end.execution.limits[0]["resource"] == "memory"
    assert api.bodies("POST", "/execute")[0]["language"] == "python"


@pytest.mark.anyio
async def test_language_and_context_together_are_refused_client_side() -> None:
    api = FakeAPI()
    sbx = await make(api)
    before = len(api.requests)
    with pytest.raises(nullspace.InvalidArgumentError, match="not both"):
        await sbx.run_code("x", language="python", context="ctx_1")
    with pytest.raises(nullspace.InvalidArgumentError):
        async for _ in sbx.run_code_stream("x", language="js", context="ctx_1"):
            pass
    assert len(api.requests) == before


@pytest.mark.anyio
async def test_context_object_or_id_and_timeouts_reach_the_request() -> None:
    api = FakeAPI()
    sbx = await make(api)
    ctx = await sbx.create_context(language="python", cwd="/tmp")
    await sbx.run_code("a", context=ctx, envs={"K": "v"}, timeout=100)
    await sbx.run_code("b", context="ctx_9", request_timeout=5)
    first, second = api.bodies("POST", "/execute")
    assert first == {
        "code": "a",
        "language": None,
        "context_id": ctx.id,
        "envs": {"K": "v"},
        "timeout": 100,
    }
    assert second["context_id"] == "ctx_9" and second["timeout"] is None
    execute = [r for r in api.requests if r.url.path.endswith("/execute")]
    assert execute[0].extensions["timeout"]["read"] == 130  # run timeout + 30 s margin
    assert execute[1].extensions["timeout"]["read"] == 5


@pytest.mark.anyio
async def test_timeout_status_raises_with_partial_execution() -> None:
    api = FakeAPI()
    api.execute = lambda request: stream_of(
        ndjson(
            {"type": "stdout", "text": "started\n"},
            {
                "type": "error",
                "name": "ExecutionTimeout",
                "value": "run exceeded 2 s",
                "traceback": "",
            },
            {"type": "end_of_execution", "status": "timeout"},
        )
    )
    sbx = await make(api)
    with pytest.raises(nullspace.ExecutionTimeoutError, match="exceeded 2 s") as info:
        await sbx.run_code("while True: pass", timeout=2)
    partial = info.value.execution
    assert isinstance(partial, nullspace.Execution)
    assert partial.logs.stdout == ["started\n"] and partial.error.name == "ExecutionTimeout"

    items = []
    with pytest.raises(nullspace.ExecutionTimeoutError):
        async for item in sbx.run_code_stream("while True: pass", timeout=2):
            items.append(item)
    assert items[-1].status == "timeout"  # the end marker is still delivered first


@pytest.mark.anyio
async def test_stream_without_end_marker_is_a_transport_error() -> None:
    api = FakeAPI()
    api.execute = lambda request: stream_of(ndjson({"type": "stdout", "text": "partial"}))
    sbx = await make(api)
    got: list[str] = []
    with pytest.raises(nullspace.TransportError, match="end_of_execution"):
        await sbx.run_code("x", on_stdout=lambda m: got.append(m.line))
    assert got == ["partial"]


@pytest.mark.anyio
async def test_connection_dropped_mid_stream_is_a_transport_error() -> None:
    api = FakeAPI()

    async def body():
        yield ndjson({"type": "stdout", "text": "a"})
        raise httpx.ReadError("connection reset")

    api.execute = lambda request: httpx.Response(200, content=body(), headers=NDJSON)
    sbx = await make(api)
    with pytest.raises(nullspace.TransportError, match="connection reset") as info:
        await sbx.run_code("x")
    assert isinstance(info.value.__cause__, httpx.ReadError)


@pytest.mark.anyio
async def test_body_is_read_to_its_end_after_the_end_marker() -> None:
    """So the connection goes back to the pool (the server ends the body with the marker)."""
    api = FakeAPI()
    read_to_end: list[bool] = []

    async def body():
        yield ndjson({"type": "number_of_executions", "execution_count": 1})
        yield ndjson({"type": "end_of_execution", "status": "ok"})
        read_to_end.append(True)

    api.execute = lambda request: httpx.Response(200, content=body(), headers=NDJSON)
    sbx = await make(api)
    assert (await sbx.run_code("x")).execution_count == 1
    assert read_to_end == [True]


@pytest.mark.anyio
async def test_execute_error_status_is_mapped_from_the_streamed_body() -> None:
    api = FakeAPI()
    sbx = await make(api)
    api.execute = lambda request: error(413, "payload_too_large", "code is too big")
    with pytest.raises(nullspace.PayloadTooLargeError, match="too big"):
        await sbx.run_code("x" * 10)
    api.execute = lambda request: error(404, "context_not_found", "no ctx_7")
    with pytest.raises(nullspace.ContextNotFoundError):
        async for _ in sbx.run_code_stream("x", context="ctx_7"):
            pass


@pytest.mark.anyio
async def test_line_separators_and_split_utf8_survive_chunking() -> None:
    api = FakeAPI()
    raw = '{"type":"stdout","text":"a\u2028b\u2029c\x85d é"}\n'.encode()  # not escaped
    escaped = ndjson({"type": "stdout", "text": "x\u2028y"})
    end = ndjson({"type": "end_of_execution", "status": "ok"})
    cut = raw.index("é".encode()) + 1  # split inside the two-byte é
    api.execute = lambda request: stream_of(raw[:cut], raw[cut:] + escaped[:5], escaped[5:], end)
    sbx = await make(api)
    execution = await sbx.run_code("x")
    assert execution.logs.stdout == ["a\u2028b\u2029c\x85d é", "x\u2028y"]


# -- contexts --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_context_lifecycle() -> None:
    api = FakeAPI()
    sbx = await make(api)
    js = await sbx.create_context(language="javascript")
    py = await sbx.create_context()
    assert js == nullspace.Context(id="ctx_1", language="javascript", cwd="/home/user")
    assert api.bodies("POST", "/contexts") == [{"language": "javascript"}, {}]
    assert [c.id for c in await sbx.list_contexts()] == ["ctx_1", "ctx_2"]
    assert (await sbx.restart_context(py)).id == "ctx_2"
    assert api.requests[-1].url.path == "/v1/sandboxes/sb_1/contexts/ctx_2/restart"
    await sbx.remove_context("ctx_1")
    assert [c.id for c in await sbx.list_contexts()] == ["ctx_2"]
    with pytest.raises(nullspace.ContextNotFoundError):
        await sbx.remove_context("ctx_1")


# -- local server start ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_ensure_server_drives_the_start_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    config = nullspace.client._config.ConnectionConfig.resolve(
        env={"NULLSPACE_HOME": "/nonexistent"}
    )
    client = _http.AsyncAPIClient(config)
    assert client._may_start_server
    actions: list[str] = []
    health = iter([False, False, True])

    def fake_flow(cfg: object):
        assert cfg is config
        actions.append("probe")
        if (yield _http.Sleep(0)) is not None:  # a Sleep is answered with None
            raise AssertionError
        while not (yield nullspace.client._local.PROBE):
            actions.append("unhealthy")

    async def fake_healthy() -> bool:
        return next(health)

    monkeypatch.setattr(_http, "start_flow", fake_flow)
    monkeypatch.setattr(client, "healthy", fake_healthy)
    await client.ensure_server()
    assert actions == ["probe", "unhealthy", "unhealthy"]
    await client.aclose()


@pytest.mark.anyio
async def test_injected_transport_never_starts_a_server() -> None:
    config = nullspace.client._config.ConnectionConfig.resolve(env={})
    client = _http.AsyncAPIClient(config, transport=FakeAPI().transport())
    assert config.is_local and not client._may_start_server
    await client.ensure_server()  # returns without probing or spawning
    await client.aclose()
