"""What a run, a command or a file becomes in an MCP tool result (pure: no I/O).

A run's text block comes first (stdout, stderr, the error with its traceback), then one block
per result: charts and images as image content, tables as text, HTML (and SVG, PDF) as an
embedded resource, other text forms as text. The same data, unshortened but without images, is
the result's `structuredContent`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from mcp_types import BlobResourceContents, EmbeddedResource, ImageContent, TextContent, TextResourceContents

from ..client._commands import CommandResult
from ..client._models import Execution, Result

Block = TextContent | ImageContent | EmbeddedResource

MAX_TEXT = 100_000
"""Characters of stdout, stderr or a text result shown in a content block (the rest is cut, and
the block says how much); an agent's context is small."""

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif")
TABLE_MIME = "application/vnd.dataresource+json"  # pandas DataFrame / Series (Table Schema)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, cut to `limit` characters with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters not shown]"


def plain(text: str) -> str:
    """Kernel text without ANSI colour codes (tracebacks carry them)."""
    return _ANSI.sub("", text)


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def run_summary(execution: Execution, sandbox_id: str, language: str) -> str:
    """The first block of a `run_code` result: what the run printed and how it ended."""
    stdout, stderr = "".join(execution.logs.stdout), "".join(execution.logs.stderr)
    parts = [f"sandbox {sandbox_id} · {language} · execution {execution.execution_count or '-'}"]
    if stdout:
        parts.append("stdout:\n" + clip(stdout))
    if stderr:
        parts.append("stderr:\n" + clip(plain(stderr)))
    if execution.error is not None:
        err = execution.error
        lines = f"error: {err.name}: {err.value}"
        if err.traceback:
            lines += "\n" + clip(plain(err.traceback))
        if err.state_lost:
            lines += "\n(the context's kernel restarted: its variables are gone)"
        parts.append(lines)
    for limit in execution.limits:
        parts.append(f"limit hit: {json.dumps(limit)}")
    if execution.artifacts:
        files = ", ".join(f"{a.path} ({a.change}, {a.size} bytes)" for a in execution.artifacts[:20])
        more = f" and {len(execution.artifacts) - 20} more" if len(execution.artifacts) > 20 else ""
        parts.append(f"files written: {files}{more}")
    if len(parts) == 1:
        parts.append("(no output)" if not execution.results else f"{len(execution.results)} result(s) below")
    return "\n\n".join(parts)


def result_blocks(result: Result, uri: str) -> list[Block]:
    """One result's blocks; `uri` names its embedded resources (without an extension)."""
    data = result.data
    blocks: list[Block] = []
    for mime in IMAGE_MIMES:
        if isinstance(data.get(mime), str):
            blocks.append(ImageContent(type="image", data=data[mime], mime_type=mime))
            break
    if blocks:
        return blocks
    if TABLE_MIME in data and result.text is not None:
        return [text(clip(result.text))]  # the table as pandas prints it
    if result.svg is not None:
        blocks.append(_resource(f"{uri}.svg", "image/svg+xml", result.svg))
    if result.html is not None:
        blocks.append(_resource(f"{uri}.html", "text/html", result.html))
    if result.pdf is not None:
        blocks.append(EmbeddedResource(type="resource", resource=BlobResourceContents(
            uri=f"{uri}.pdf", mime_type="application/pdf", blob=result.pdf)))
    if blocks:
        return blocks
    for value in (result.markdown, result.latex):
        if value is not None:
            return [text(clip(value))]
    if result.json is not None:
        return [text(clip(json.dumps(result.json, indent=2, default=str)))]
    if result.text is not None:
        return [text(clip(result.text))]
    return []


def _resource(uri: str, mime: str, body: str) -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime, text=body))


def run_blocks(execution: Execution, sandbox_id: str, language: str) -> list[Block]:
    """Every block of a `run_code` result."""
    blocks: list[Block] = [text(run_summary(execution, sandbox_id, language))]
    base = f"nullspace://sandboxes/{sandbox_id}/executions/{execution.execution_count or 0}"
    for index, result in enumerate(execution.results):
        blocks.extend(result_blocks(result, f"{base}/results/{index}"))
    return blocks


def run_structured(execution: Execution, sandbox_id: str, language: str) -> dict[str, Any]:
    """The run as JSON: logs, error, and each result's formats and text forms (no images)."""
    results = []
    for result in execution.results:
        entry: dict[str, Any] = {"formats": result.formats(), "is_main_result": result.is_main_result}
        for name in ("text", "markdown", "json", "chart"):
            value = getattr(result, name)
            if value is not None:
                entry[name] = value
        results.append(entry)
    return {
        "sandbox_id": sandbox_id,
        "language": language,
        "stdout": "".join(execution.logs.stdout),
        "stderr": plain("".join(execution.logs.stderr)),
        "error": None if execution.error is None else {
            "name": execution.error.name,
            "value": execution.error.value,
            "traceback": plain(execution.error.traceback),
        },
        "results": results,
        "execution_count": execution.execution_count,
        "limits": execution.limits,
        "artifacts": [a.path for a in execution.artifacts],
    }


def command_blocks(result: CommandResult, sandbox_id: str) -> list[Block]:
    """A finished command: exit code, stdout, stderr."""
    parts = [f"sandbox {sandbox_id} · exit code {result.exit_code} ({result.status})"]
    if result.error:
        parts.append(f"error: {result.error}")
    if result.stdout:
        parts.append("stdout:\n" + clip(result.stdout))
    if result.stderr:
        parts.append("stderr:\n" + clip(result.stderr))
    return [text("\n\n".join(parts))]


_IMAGE_MAGIC = (("image/png", b"\x89PNG\r\n\x1a\n"), ("image/jpeg", b"\xff\xd8\xff"), ("image/gif", b"GIF8"))


def file_block(path: str, data: bytes, sandbox_id: str) -> Block:
    """A file's content: PNG/JPEG/GIF as an image, UTF-8 as text, anything else as a blob."""
    for mime, magic in _IMAGE_MAGIC:
        if data.startswith(magic):
            return ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        uri = f"nullspace://sandboxes/{sandbox_id}/files/{path.lstrip('/')}"
        return EmbeddedResource(type="resource", resource=BlobResourceContents(
            uri=uri, mime_type="application/octet-stream", blob=base64.b64encode(data).decode()))
    if len(decoded) > MAX_TEXT:
        return text(clip(decoded) + "\n(read other parts with run_command: head, tail, sed -n, grep)")
    return text(decoded)
