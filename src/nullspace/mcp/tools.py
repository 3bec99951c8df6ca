"""The MCP tools, written once against the SDK (`AsyncSandbox`) for both transports.

`build_server(access)` returns an `MCPServer` whose tools reach nullspace through `access`
(stdio: the SDK's own connection; HTTP: in-process with the caller's auth). A nullspace error
(bad path, unknown sandbox, package that does not resolve, ...) becomes a tool error whose
text is the server's message; bad argument types are refused by the SDK's schema validation.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from .._exceptions import ExecutionTimeoutError, NullspaceError
from .._version import __version__
from ..client._async.sandbox import AsyncSandbox
from . import content
from .access import Access, open_sandbox
from .progress import progress

_Fn = TypeVar("_Fn", bound=Callable[..., Any])
Language = Literal["python", "r", "javascript", "typescript", "java", "bash"]
SandboxId = Annotated[
    str | None,
    Field(description="Sandbox to use (from create_sandbox or list_sandboxes). Omit it to use this "
                      "session's own sandbox, created on first use and killed when the session ends."),
]
MAX_READ_BYTES = 5 * 1024 * 1024
"""Largest file `read_file` returns (an agent's context is far smaller anyway)."""

INSTRUCTIONS = """\
nullspace runs code in isolated sandboxes (no network; Python with numpy/pandas/matplotlib, R,
JavaScript, TypeScript, Java, Bash). Call run_code right away: without a sandbox_id every tool
uses this session's own sandbox, created on first use, whose variables and files persist
between calls and which is killed when the session ends. Use create_sandbox only for extra or
longer-lived sandboxes. Charts (plt.show()) come back as images, tables as text."""


@asynccontextmanager
async def _errors() -> AsyncIterator[None]:
    """Turn nullspace errors into tool errors the agent can read and act on."""
    try:
        yield
    except ToolError:
        raise
    except NullspaceError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def _noted(blocks: list[content.Block], note: str | None) -> list[content.Block]:
    return [content.text(note), *blocks] if note else blocks


def build_server(access: Access, **kwargs: Any) -> MCPServer:
    """The nullspace MCP server with its tools bound to `access`."""
    server: MCPServer = MCPServer(
        "nullspace", version=__version__, instructions=INSTRUCTIONS, **kwargs
    )

    def tool(annotations: ToolAnnotations) -> Callable[[_Fn], _Fn]:
        """Register a tool; its description is its docstring on one line (agents read it)."""

        def register(fn: _Fn) -> _Fn:
            server.add_tool(fn, description=" ".join((fn.__doc__ or "").split()), annotations=annotations)
            return fn

        return register

    @tool(annotations=ToolAnnotations(title="Run code", open_world_hint=False))
    async def run_code(
        code: Annotated[str, Field(description="The code to run. The value of the last expression is returned.")],
        ctx: Context,
        language: Annotated[Language, Field(description="Language of the code.")] = "python",
        sandbox_id: SandboxId = None,
        timeout: Annotated[float, Field(gt=0, le=3600, description="Seconds before the run is interrupted.")] = 300,
    ) -> CallToolResult:
        """Run code in a sandbox and return stdout, stderr, the error (with traceback) and every
        result: charts (matplotlib plt.show(), R plots) as images, tables as text, HTML as an
        embedded resource. Variables, imports and files persist between calls in the same
        sandbox and language. Output lines are also streamed as progress notifications."""
        async with (_errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note),
                    progress(ctx, "run_code") as report):
            try:
                execution = await sandbox.run_code(
                    code, language=language, timeout=timeout, on_stdout=report.output, on_stderr=report.output
                )
            except ExecutionTimeoutError as exc:
                blocks = content.run_blocks(exc.execution, sandbox.sandbox_id, language)
                message = f"the run hit its timeout of {timeout:g} s and was interrupted (state is kept)"
                return CallToolResult(content=_noted(blocks, message), is_error=True)
            return CallToolResult(
                content=_noted(content.run_blocks(execution, sandbox.sandbox_id, language), note),
                structured_content=content.run_structured(execution, sandbox.sandbox_id, language),
                is_error=execution.error is not None,
            )

    @tool(annotations=ToolAnnotations(title="Run a shell command", open_world_hint=False))
    async def run_command(
        command: Annotated[str, Field(description="A shell command, run with /bin/bash -c as user 'user'.")],
        ctx: Context,
        sandbox_id: SandboxId = None,
        cwd: Annotated[str | None, Field(description="Working directory (default /home/user).")] = None,
        timeout: Annotated[float, Field(gt=0, le=3600, description="Seconds before the command is killed.")] = 300,
    ) -> CallToolResult:
        """Run a shell command in a sandbox and return its exit code, stdout and stderr (a
        non-zero exit code is reported, not an error). Output lines are streamed as progress."""
        async with (_errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note),
                    progress(ctx, "run_command") as report):
            result = await sandbox.commands.run(
                command, cwd=cwd, timeout=timeout, on_stdout=report.output, on_stderr=report.output, check=False
            )
            return CallToolResult(
                content=_noted(content.command_blocks(result, sandbox.sandbox_id), note),
                structured_content={"sandbox_id": sandbox.sandbox_id, "exit_code": result.exit_code,
                                    "status": result.status, "stdout": result.stdout, "stderr": result.stderr},
                is_error=result.status == "timeout",
            )

    @tool(annotations=ToolAnnotations(title="Install packages", open_world_hint=True))
    async def install_packages(
        packages: Annotated[list[str], Field(min_length=1, description=(
            'Requirements: a name and an optional version, e.g. ["humanize==4.9.0", "pandas>=2"] '
            'for Python or ["lodash@4.17.21"] for JavaScript.'))],
        ctx: Context,
        language: Annotated[Literal["python", "javascript"], Field(description="pip or npm packages.")] = "python",
        sandbox_id: SandboxId = None,
    ) -> CallToolResult:
        """Install pip or npm packages into a sandbox; code that is already running can import
        them at once. The server downloads them for the sandbox (which has no network)."""
        async with (_errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note),
                    progress(ctx, "install_packages") as report):
            await report.report(f"resolving and installing {', '.join(packages)}")
            result = await sandbox.install_packages(packages, language=language)
            installed = ", ".join(f"{name}=={version}" for name, version in result.installed)
            return CallToolResult(
                content=_noted([content.text(f"installed into {sandbox.sandbox_id}: {installed}")], note),
                structured_content={"sandbox_id": sandbox.sandbox_id,
                                    "installed": [{"name": n, "version": v} for n, v in result.installed]},
            )

    @tool(annotations=ToolAnnotations(title="Read a file", read_only_hint=True, open_world_hint=False))
    async def read_file(
        path: Annotated[str, Field(description="File path in the sandbox; relative paths start at /home/user.")],
        ctx: Context,
        sandbox_id: SandboxId = None,
    ) -> CallToolResult:
        """Read a file from a sandbox: text as text, PNG/JPEG/GIF images as images, other
        binary files as a base64 embedded resource (at most 5 MiB)."""
        async with _errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note):
            info = await sandbox.files.get_info(path)
            if info.type != "file":
                raise ToolError(f"{info.path} is a {info.type}, not a file (use list_files)")
            if info.size > MAX_READ_BYTES:
                raise ToolError(f"{info.path} is {info.size} bytes, over the limit of "
                                f"{MAX_READ_BYTES}; read part of it with run_command (head, tail, grep)")
            data = await sandbox.files.read(path, format="bytes")
            return CallToolResult(content=_noted([content.file_block(info.path, data, sandbox.sandbox_id)], note))

    @tool(annotations=ToolAnnotations(title="Write a file", open_world_hint=False))
    async def write_file(
        path: Annotated[str, Field(description="File path in the sandbox; relative paths start at /home/user. "
                                               "Missing directories are created.")],
        data: Annotated[str, Field(description="The file's content.")],
        ctx: Context,
        encoding: Annotated[Literal["utf-8", "base64"], Field(
            description='"utf-8" for text, "base64" for binary content.')] = "utf-8",
        sandbox_id: SandboxId = None,
    ) -> CallToolResult:
        """Write (create or replace) a file in a sandbox."""
        if encoding == "base64":
            try:
                body: bytes = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ToolError(f"data is not valid base64: {exc}") from exc
        else:
            body = data.encode()
        async with _errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note):
            info = await sandbox.files.write(path, body)
            return CallToolResult(content=_noted(
                [content.text(f"wrote {info.size} bytes to {info.path} in {sandbox.sandbox_id}")], note))

    @tool(annotations=ToolAnnotations(title="List files", read_only_hint=True, open_world_hint=False))
    async def list_files(
        ctx: Context,
        path: Annotated[str, Field(description="Directory in the sandbox.")] = "/home/user",
        depth: Annotated[int, Field(ge=1, le=10, description="How many levels deep to list.")] = 1,
        sandbox_id: SandboxId = None,
    ) -> CallToolResult:
        """List the files and directories under a directory of a sandbox."""
        async with _errors(), open_sandbox(access, ctx, sandbox_id) as (sandbox, note):
            entries = await sandbox.files.list(path, depth=depth)
            lines = [f"{e.permissions or e.type:<10} {e.size:>10}  {e.path}{'/' if e.type == 'dir' else ''}"
                     for e in entries]
            listing = "\n".join(lines) if lines else f"{path} is empty"
            return CallToolResult(
                content=_noted([content.text(listing)], note),
                structured_content={"sandbox_id": sandbox.sandbox_id, "entries": [
                    {"path": e.path, "type": e.type, "size": e.size} for e in entries]},
            )

    @tool(annotations=ToolAnnotations(title="Create a sandbox", open_world_hint=False))
    async def create_sandbox(
        ctx: Context,
        template: Annotated[str, Field(description="Template to start from.")] = "code-interpreter",
        timeout: Annotated[int, Field(ge=10, le=86400, description=(
            "Seconds the sandbox lives (it is killed then, or earlier with kill_sandbox)."))] = 1800,
        envs: Annotated[dict[str, str] | None, Field(description="Environment variables for everything run in it.")] = None,
        metadata: Annotated[dict[str, str] | None, Field(description="Labels to find it with list_sandboxes.")] = None,
        network: Annotated[str | list[str] | None, Field(description=(
            'Network access: omit for none (the default), "open" for the internet if the server '
            'permits it, or an allow-list of host names such as ["pypi.org", "*.example.com:443"].'))] = None,
    ) -> CallToolResult:
        """Create an extra sandbox and return its sandbox_id, to pass to the other tools. Not
        needed for ordinary use: every tool has a session sandbox when sandbox_id is omitted.
        A sandbox made here outlives the session until its timeout or kill_sandbox."""
        async with _errors():
            labels = {"created_by": "mcp", **(metadata or {})}
            sandbox = await AsyncSandbox.create(template, timeout=timeout, envs=envs, metadata=labels,
                                                network=network, **access.options(ctx))
            await sandbox.close()
            return CallToolResult(
                content=[content.text(f"created sandbox {sandbox.sandbox_id} (template {template}, "
                                      f"lives {timeout} s)")],
                structured_content={"sandbox_id": sandbox.sandbox_id, "template": template, "timeout": timeout},
            )

    @tool(annotations=ToolAnnotations(title="List sandboxes", read_only_hint=True, open_world_hint=False))
    async def list_sandboxes(
        ctx: Context,
        metadata: Annotated[dict[str, str] | None, Field(description="Only sandboxes with all these labels.")] = None,
    ) -> CallToolResult:
        """List the running sandboxes this key can use."""
        async with _errors():
            infos = await AsyncSandbox.list(metadata=metadata, state="running", **access.options(ctx))
            rows = [{"sandbox_id": i.sandbox_id, "template": i.template, "metadata": i.metadata,
                     "end_at": i.end_at.isoformat() if i.end_at else None} for i in infos]
            return CallToolResult(
                content=[content.text(json.dumps(rows, indent=1) if rows else "no running sandboxes")],
                structured_content={"sandboxes": rows},
            )

    @tool(annotations=ToolAnnotations(title="Kill a sandbox", destructive_hint=True, open_world_hint=False))
    async def kill_sandbox(
        sandbox_id: Annotated[str, Field(description="The sandbox to end (everything in it is lost).")],
        ctx: Context,
    ) -> CallToolResult:
        """Kill a sandbox now: its processes, files and state are gone."""
        async with _errors():
            sandbox = await AsyncSandbox.connect(sandbox_id, **access.options(ctx))
            try:
                await sandbox.kill()
            finally:
                await sandbox.close()
            return CallToolResult(content=[content.text(f"killed sandbox {sandbox_id}")])

    return server

