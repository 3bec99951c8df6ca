"""The tool list an agent sees, and argument errors, through the MCP SDK's in-process client
(no nullspace server: these calls are refused before any sandbox is reached)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp_types import TextContent

from nullspace.mcp.access import StdioAccess
from nullspace.mcp.tools import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(build_server(StdioAccess()), mode="legacy") as client:
        yield client


async def test_every_tool_has_a_one_line_description_a_schema_and_a_title(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"run_code", "run_command", "install_packages", "read_file", "write_file",
                          "list_files", "create_sandbox", "list_sandboxes", "kill_sandbox"}
    for tool in tools.values():
        assert tool.description and "\n" not in tool.description and "  " not in tool.description
        assert tool.annotations and tool.annotations.title
        assert "ctx" not in tool.input_schema["properties"]
    assert tools["kill_sandbox"].annotations.destructive_hint
    assert tools["read_file"].annotations.read_only_hint
    assert tools["run_code"].input_schema["properties"]["timeout"]["maximum"] == 3600
    assert client.instructions and "run_code" in client.instructions


@pytest.mark.parametrize(("tool", "arguments", "named"), [
    ("run_code", {"code": "1", "language": "cobol"}, "language"),
    ("run_code", {"code": "1", "timeout": 0}, "timeout"),
    ("run_code", {"language": "python"}, "code"),
    ("install_packages", {"packages": []}, "packages"),
    ("list_files", {"depth": 99}, "depth"),
    ("create_sandbox", {"timeout": 5}, "timeout"),
    ("write_file", {"path": "a", "data": "%%%", "encoding": "base64"}, "base64"),
])
async def test_bad_arguments_are_tool_errors_naming_what_was_wrong(
    client: Client, tool: str, arguments: dict[str, object], named: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
    assert named in text, text
