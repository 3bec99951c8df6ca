"""The MCP server through the MCP SDK's own client: over streamable HTTP (`/mcp` on a real
server, behind its API keys) and over stdio (`nullspace mcp` spawned against the same server).
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, EmbeddedResource, ImageContent, TextContent

from nullspace import AsyncSandbox, SandboxNotFoundError

from .conftest import ServerHandle

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "run_code", "run_command", "install_packages", "read_file", "write_file", "list_files",
    "create_sandbox", "list_sandboxes", "kill_sandbox",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _texts(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


class Progress:
    """Collects progress messages (the SDK's client runs each callback in a task of its own, so
    one may still be pending when `call_tool` returns: `wait_for` waits for it)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._arrived = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, text: str) -> None:
        with anyio.fail_after(30):
            while not any(text in m for m in self.messages):
                await self._arrived.wait()


@asynccontextmanager
async def http_session(server: ServerHandle, key: str | None = None, mode: str = "legacy") -> AsyncIterator[Client]:
    """An MCP client session on the server's `/mcp`, with the test key unless `key` is given."""
    headers = {"X-API-Key": server.api_key if key is None else key}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http:
        async with Client(streamable_http_client(f"{server.tcp_url}/mcp", http_client=http), mode=mode) as client:
            yield client


@pytest.fixture
async def http_client(server: ServerHandle) -> AsyncIterator[Client]:
    async with http_session(server) as client:
        yield client


async def test_http_session_runs_a_chart_with_progress_and_kills_its_sandbox(server: ServerHandle) -> None:
    progress = Progress()
    async with http_session(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert EXPECTED_TOOLS <= set(tools)
        schema = tools["run_code"].input_schema
        assert schema["required"] == ["code"]
        assert set(schema["properties"]["language"]["enum"]) == {
            "python", "r", "javascript", "typescript", "java", "bash"}
        assert tools["run_code"].description and "chart" in tools["run_code"].description

        code = (
            "import matplotlib.pyplot as plt\n"
            "for i in range(3): print('line', i, flush=True)\n"
            "plt.plot([1, 2, 3], [1, 4, 9]); plt.show()\n"
            "6 * 7"
        )
        result = await client.call_tool("run_code", {"code": code}, progress_callback=progress)
        assert not result.is_error, _texts(result)
        images = [b for b in result.content if isinstance(b, ImageContent)]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert base64.b64decode(images[0].data).startswith(b"\x89PNG")
        text = _texts(result)
        assert "line 2" in text and "42" in text
        await progress.wait_for("line 1")
        sandbox_id = result.structured_content["sandbox_id"]

        # The session sandbox keeps state between calls; HTML comes back as a resource,
        # a DataFrame as text.
        result = await client.call_tool("run_code", {
            "code": "import pandas as pd\nfrom IPython.display import HTML, display\n"
                    "display(HTML('<b>bold</b>'))\npd.DataFrame({'total': [123456]})"})
        assert not result.is_error, _texts(result)
        assert result.structured_content["sandbox_id"] == sandbox_id
        html = [b for b in result.content if isinstance(b, EmbeddedResource)]
        assert html and html[0].resource.mime_type == "text/html" and "<b>bold</b>" in html[0].resource.text
        assert "123456" in _texts(result)

        # Files and commands in the same sandbox
        result = await client.call_tool("write_file", {"path": "data/x.txt", "data": "hello mcp"})
        assert not result.is_error, _texts(result)
        result = await client.call_tool("run_command", {"command": "cat data/x.txt; echo err >&2; exit 3"})
        assert "hello mcp" in _texts(result) and result.structured_content["exit_code"] == 3
        assert result.structured_content["stderr"] == "err\n"
        listing = await client.call_tool("list_files", {"path": "data"})
        assert "/home/user/data/x.txt" in _texts(listing)
        read = await client.call_tool("read_file", {"path": "/home/user/data/x.txt"})
        assert _texts(read) == "hello mcp"

        # Another language in the same sandbox; an error is a tool error with the traceback
        result = await client.call_tool("run_code", {"code": "console.log(40 + 2)", "language": "javascript"})
        assert "42" in _texts(result), _texts(result)
        result = await client.call_tool("run_code", {"code": "1 / 0"})
        assert result.is_error and "ZeroDivisionError" in _texts(result)
        assert await _running(sandbox_id)
    # The client closed the session (DELETE): its sandbox is killed as the session winds down.
    await _gone(sandbox_id)


async def _running(sandbox_id: str) -> bool:
    try:
        sandbox = await AsyncSandbox.connect(sandbox_id)  # the unix socket: admin
    except SandboxNotFoundError:
        return False
    await sandbox.close()
    return True


async def _gone(sandbox_id: str) -> None:
    """Wait (bounded) for a sandbox to end: session teardown runs after the client's last reply."""
    with anyio.fail_after(30):
        while await _running(sandbox_id):
            await anyio.sleep(0.1)


async def test_http_bad_arguments_are_tool_errors_that_say_what_was_wrong(http_client: Client) -> None:
    result = await http_client.call_tool("run_code", {"code": "1", "language": "cobol"})
    assert result.is_error and "language" in _texts(result)
    result = await http_client.call_tool("run_code", {})
    assert result.is_error and "code" in _texts(result)
    result = await http_client.call_tool("read_file", {"path": "/nope/missing.txt"})
    assert result.is_error and "missing.txt" in _texts(result)
    result = await http_client.call_tool("run_code", {"code": "1", "sandbox_id": "sbx_doesnotexist"})
    assert result.is_error and "sbx_doesnotexist" in _texts(result)
    result = await http_client.call_tool("write_file", {"path": "a.bin", "data": "***", "encoding": "base64"})
    assert result.is_error and "base64" in _texts(result)
    result = await http_client.call_tool("install_packages", {"packages": ["not a requirement!"]})
    assert result.is_error and "not a requirement!" in _texts(result)


async def test_http_explicit_sandboxes_create_list_kill(http_client: Client) -> None:
    created = await http_client.call_tool("create_sandbox", {
        "metadata": {"purpose": "mcp-test"}, "timeout": 120, "network": ["example.com"]})
    assert not created.is_error, _texts(created)
    sandbox_id = created.structured_content["sandbox_id"]
    sandbox = await AsyncSandbox.connect(sandbox_id)
    network, info = await sandbox.get_network(), await sandbox.get_info()
    await sandbox.close()
    assert (network.mode, network.allow) == ("allow", ["example.com"])
    assert info.metadata == {"created_by": "mcp", "purpose": "mcp-test"}
    listed = await http_client.call_tool("list_sandboxes", {"metadata": {"purpose": "mcp-test"}})
    assert [s["sandbox_id"] for s in listed.structured_content["sandboxes"]] == [sandbox_id]
    ran = await http_client.call_tool("run_code", {"code": "x = 5\nx * 2", "sandbox_id": sandbox_id})
    assert "10" in _texts(ran) and ran.structured_content["sandbox_id"] == sandbox_id
    killed = await http_client.call_tool("kill_sandbox", {"sandbox_id": sandbox_id})
    assert not killed.is_error
    again = await http_client.call_tool("run_code", {"code": "x", "sandbox_id": sandbox_id})
    assert again.is_error and sandbox_id in _texts(again)


async def test_http_progress_arrives_while_the_run_is_still_going(server: ServerHandle) -> None:
    """The run waits for a file that the progress callback writes when it sees the run's first
    line: it can only finish well if that line arrived before the run ended."""
    async with http_session(server) as client:
        created = await client.call_tool("create_sandbox", {"timeout": 120})
        sandbox_id = created.structured_content["sandbox_id"]
        seen: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")
            if "waiting" in (message or "") and len(seen) == 1:
                sandbox = await AsyncSandbox.connect(sandbox_id)
                await sandbox.files.write("/tmp/go", "1")
                await sandbox.close()

        code = ("import os, time\nprint('waiting', flush=True)\nend = time.time() + 60\n"
                "while not os.path.exists('/tmp/go') and time.time() < end: time.sleep(0.05)\n"
                "print('go' if os.path.exists('/tmp/go') else 'no go')")
        result = await client.call_tool("run_code", {"code": code, "sandbox_id": sandbox_id},
                                        progress_callback=on_progress)
        assert result.structured_content["stdout"] == "waiting\ngo\n"
        await client.call_tool("kill_sandbox", {"sandbox_id": sandbox_id})


async def test_http_stateless_protocol_needs_explicit_sandboxes(server: ServerHandle) -> None:
    """A 2026-era client has no MCP session: the tools say to create a sandbox and use its id."""
    async with http_session(server, mode="auto") as client:
        result = await client.call_tool("run_code", {"code": "1 + 1"})
        assert result.is_error and "create_sandbox" in _texts(result)
        created = await client.call_tool("create_sandbox", {"timeout": 60})
        sandbox_id = created.structured_content["sandbox_id"]
        result = await client.call_tool("run_code", {"code": "1 + 1", "sandbox_id": sandbox_id})
        assert not result.is_error and "2" in _texts(result)
        await client.call_tool("kill_sandbox", {"sandbox_id": sandbox_id})


def _new_key(server: ServerHandle, name: str, *options: str) -> str:
    out = subprocess.run([sys.executable, "-m", "nullspace", "keys", "create", name, *options,
                          "--data-dir", str(server.data_dir)], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


async def test_http_session_answers_only_the_key_that_opened_it(server: ServerHandle) -> None:
    other = _new_key(server, "mcp-other")
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(base_url=server.tcp_url, timeout=30) as raw:
        opened = await raw.post("/mcp", json=init, headers={**headers, "X-API-Key": server.api_key})
        assert opened.status_code == 200, opened.text
        session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        await raw.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                       headers={**session, "X-API-Key": server.api_key})
        foreign = await raw.post("/mcp", json=listing, headers={**session, "X-API-Key": other})
        unknown = await raw.post("/mcp", json=listing, headers={
            **headers, "Mcp-Session-Id": "0" * 32, "X-API-Key": other})
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.content == unknown.content
        own = await raw.post("/mcp", json=listing, headers={**session, "X-API-Key": server.api_key})
        assert own.status_code == 200 and "run_code" in own.text
        await raw.delete("/mcp", headers={**session, "X-API-Key": server.api_key})


async def test_http_refuses_requests_without_a_valid_key(server: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=server.tcp_url) as raw:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for headers in ({}, {"X-API-Key": "ns_wrong"}):
            response = await raw.post("/mcp", json=body, headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"
    with pytest.raises(ExceptionGroup) as caught:  # the SDK client fails to connect
        async with http_session(server, key="ns_wrong"):
            pass
    assert caught.value.subgroup(MCPError) is not None


async def test_stdio_nullspace_mcp_against_the_server(server: ServerHandle) -> None:
    env = {**os.environ, "NULLSPACE_SOCKET": str(server.socket), "NULLSPACE_HOME": str(server.data_dir)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "nullspace", "mcp"], env=env)
    progress = Progress()
    async with Client(params, mode="legacy") as client:
        assert EXPECTED_TOOLS <= {tool.name for tool in (await client.list_tools()).tools}
        code = "import matplotlib.pyplot as plt\nprint('plotting')\nplt.bar([1, 2], [3, 4]); plt.show()"
        result = await client.call_tool("run_code", {"code": code}, progress_callback=progress)
        assert not result.is_error, _texts(result)
        assert [b.mime_type for b in result.content if isinstance(b, ImageContent)] == ["image/png"]
        await progress.wait_for("plotting")
        sandbox_id = result.structured_content["sandbox_id"]
        result = await client.call_tool("run_code", {"code": "echo $((6 * 7))", "language": "bash"})
        assert "42" in _texts(result)
        result = await client.call_tool("run_code", {"code": "1", "language": "cobol"})
        assert result.is_error and "language" in _texts(result)
        result = await client.call_tool("run_code", {"code": "open('out.txt', 'w').write('x')"})
        assert "files written: /home/user/out.txt (created, 1 bytes)" in _texts(result)
        assert await _running(sandbox_id)
    # stdin closed: `nullspace mcp` killed the session sandbox on its way out
    await _gone(sandbox_id)



def _reply(process: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to `request_id` on the server's stdout (other lines skipped), bounded."""
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            message = json.loads(process.stdout.readline())
            if message.get("id") == request_id:
                return message
    raise TimeoutError(f"no answer to request {request_id}")


async def test_stdio_sigterm_still_kills_the_session_sandbox(server: ServerHandle) -> None:
    """Clients that stop a server with SIGTERM (stdin still open) leave no sandbox behind."""
    env = {**os.environ, "NULLSPACE_SOCKET": str(server.socket), "NULLSPACE_HOME": str(server.data_dir)}
    process = subprocess.Popen([sys.executable, "-m", "nullspace", "mcp"], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for message in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "run_code", "arguments": {"code": "40 + 2"}}},
        ):
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
        _reply(process, 1)
        result = _reply(process, 2)["result"]
        assert "42" in result["content"][0]["text"] or "42" in json.dumps(result["content"])
        sandbox_id = result["structuredContent"]["sandbox_id"]
        assert await _running(sandbox_id)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not await _running(sandbox_id)  # killed before the process exited
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _nullspace(server: ServerHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nullspace", *args, "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True)


async def test_a_key_reaches_only_its_tenants_sandboxes_over_http_and_stdio(server: ServerHandle) -> None:
    """Another tenant's sandbox (made by create_sandbox, or a session's) answers every tool
    exactly like a sandbox that never existed, and is not listed: over HTTP, and through
    `nullspace mcp` pointed at the server with NULLSPACE_API_URL and a key of the other tenant."""
    for tenant in ("mcp-a", "mcp-b"):
        _nullspace(server, "keys", "tenant", "create", tenant)
    key_a, key_b = (_new_key(server, f"{t}-key", "--tenant", t) for t in ("mcp-a", "mcp-b"))
    unknown = "sb_0123456789abcdef"
    async with http_session(server, key=key_a) as a, http_session(server, key=key_b) as b:
        created = await a.call_tool("create_sandbox", {"timeout": 120})
        explicit = created.structured_content["sandbox_id"]
        session = (await a.call_tool("run_code", {"code": "secret = 41"})).structured_content["sandbox_id"]
        for target in (explicit, session):
            for tool, args in (("run_code", {"code": "secret"}), ("read_file", {"path": "/etc/hostname"}),
                               ("run_command", {"command": "id"}), ("kill_sandbox", {})):
                foreign = await b.call_tool(tool, {**args, "sandbox_id": target})
                never = await b.call_tool(tool, {**args, "sandbox_id": unknown})
                assert foreign.is_error and never.is_error
                assert _texts(foreign).replace(target, "ID") == _texts(never).replace(unknown, "ID")
            assert await _running(target)
        listed_b = (await b.call_tool("list_sandboxes", {})).structured_content["sandboxes"]
        assert not {explicit, session} & {s["sandbox_id"] for s in listed_b}
        listed_a = (await a.call_tool("list_sandboxes", {})).structured_content["sandboxes"]
        assert {explicit, session} <= {s["sandbox_id"] for s in listed_a}
        assert "42" in _texts(await a.call_tool("run_code", {"code": "secret + 1"}))

        env = {**os.environ, "NULLSPACE_API_URL": server.tcp_url, "NULLSPACE_API_KEY": key_b}
        stdio = StdioServerParameters(command=sys.executable, args=["-m", "nullspace", "mcp"], env=env)
        async with Client(stdio, mode="legacy") as b_local:
            foreign = await b_local.call_tool("run_code", {"code": "secret", "sandbox_id": explicit})
            assert foreign.is_error and "does not exist" in _texts(foreign)
            listed = (await b_local.call_tool("list_sandboxes", {})).structured_content["sandboxes"]
            assert not {explicit, session} & {s["sandbox_id"] for s in listed}
            own = await b_local.call_tool("run_code", {"code": "secret = 1\nsecret"})
            assert not own.is_error and own.structured_content["sandbox_id"] not in (explicit, session)
        await a.call_tool("kill_sandbox", {"sandbox_id": explicit})


async def test_stdio_session_sandbox_template_option(server: ServerHandle) -> None:
    env = {**os.environ, "NULLSPACE_SOCKET": str(server.socket), "NULLSPACE_HOME": str(server.data_dir)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "nullspace", "mcp", "--template", "no-such"],
                                   env=env)
    async with Client(params, mode="legacy") as client:
        result = await client.call_tool("run_code", {"code": "1"})
        assert result.is_error and "TemplateNotFoundError" in _texts(result) and "no-such" in _texts(result)


async def test_http_malformed_requests_get_4xx(server: ServerHandle) -> None:
    """Past the key check, /mcp answers bad requests in MCP's own JSON-RPC error format, never 5xx."""
    accept = {"Accept": "application/json, text/event-stream", "X-API-Key": server.api_key}
    async with httpx.AsyncClient(base_url=server.tcp_url, timeout=30) as raw:
        answers = [
            await raw.post("/mcp", content=b"{not json", headers={**accept, "Content-Type": "application/json"}),
            await raw.post("/mcp", content=b"[]", headers={**accept, "Content-Type": "application/json"}),
            await raw.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                           headers={"X-API-Key": server.api_key}),  # no Accept
            await raw.post("/mcp", content=b"x", headers={**accept, "Content-Type": "text/plain"}),
            await raw.delete("/mcp", headers={**accept, "Mcp-Session-Id": "f" * 32}),
            await raw.put("/mcp", headers=accept),
        ]
    assert all(400 <= a.status_code < 500 for a in answers), [(a.status_code, a.text[:200]) for a in answers]


async def test_http_every_language_runs_and_an_r_plot_is_an_image(http_client: Client) -> None:
    cases = {
        "python": ("print(6 * 7)", "42"),
        "r": ("cat(6 * 7)", "42"),
        "javascript": ("console.log(6 * 7)", "42"),
        "typescript": ("const n: number = 6 * 7\nconsole.log(n)", "42"),
        "java": ("System.out.println(6 * 7);", "42"),
        "bash": ("echo $((6 * 7))", "42"),
    }
    for language, (code, expected) in cases.items():
        result = await http_client.call_tool("run_code", {"code": code, "language": language})
        assert not result.is_error and expected in result.structured_content["stdout"], (language, _texts(result))
    plot = await http_client.call_tool("run_code", {"code": "plot(c(1, 4, 9))", "language": "r"})
    assert [b.mime_type for b in plot.content if isinstance(b, ImageContent)] == ["image/png"], _texts(plot)
