"""envd's plain HTTP file API (§5.1): ``GET /files`` (download) and ``POST /files`` (upload,
multipart with any number of files, or a raw ``application/octet-stream`` body, optionally gzip).

Bodies stream both ways through the agent, never held whole on this side and never written to
the host: each multipart part is passed on to the agent's atomic upload as it is parsed. Paths
are handed to the agent, which resolves them inside the sandbox (relative ones from /home/user).
Errors are envd's JSON ``{"code": <status>, "message"}``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ...._exceptions import (
    APIError,
    DiskFullError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
)
from .rpc import check_username

MAX_PARTS = 1000
MAX_METADATA = 64
METADATA_PREFIX = "x-metadata-"
MAX_PATH = 4096
INFLATE_CHUNK = 1 << 20


class FilesError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _http_error(code: str, message: str) -> FilesError:
    return FilesError(403 if code == "permission_denied" else 401, message)


def error_response(exc: BaseException) -> JSONResponse:
    if isinstance(exc, FilesError):
        status, message = exc.status, exc.message
    elif isinstance(exc, NotFoundError):
        status, message = 404, exc.message
    elif isinstance(exc, InvalidArgumentError):
        status, message = 400, exc.message
    elif isinstance(exc, DiskFullError):
        status, message = 507, exc.message
    elif isinstance(exc, PayloadTooLargeError):
        status, message = 413, exc.message
    elif isinstance(exc, APIError):
        status, message = (exc.status_code if 400 <= exc.status_code < 500 else 500), exc.message
    else:
        status, message = 500, f"internal error: {type(exc).__name__}"
    return JSONResponse({"code": status, "message": message}, status_code=status)


def _params(request: Request, path_required: bool) -> str | None:
    check_username(request.query_params.get("username"), _http_error)
    path = request.query_params.get("path")
    if path is not None and (not path or len(path) > MAX_PATH or "\0" in path):
        raise FilesError(400, "path must be a non-empty path")
    if path is None and path_required:
        raise FilesError(400, "the path query parameter is required")
    return path


async def download(request: Request) -> Response:
    try:
        path = _params(request, path_required=True)
        live = request.state.e2b_sandbox
        stack = AsyncExitStack()
        size, chunks = await stack.enter_async_context(live.agent.download({"path": path}))
    except Exception as exc:  # noqa: BLE001 - every failure is a JSON error
        return error_response(exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await stack.aclose()

    headers = {"Content-Length": str(size), "Cache-Control": "no-store"}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


async def upload(request: Request) -> Response:
    stream = request.stream()
    try:
        path = _params(request, path_required=False)
        agent_headers = _metadata_headers(request)
        ctype, options = parse_options_header(request.headers.get("content-type", ""))
        live = request.state.e2b_sandbox
        written: list[dict[str, Any]] = []
        if ctype == b"multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                raise FilesError(400, "multipart/form-data needs a boundary")
            written = await _upload_parts(live.agent, _Parts(stream, boundary), path, agent_headers)
        elif ctype in (b"application/octet-stream", b""):
            if path is None:
                raise FilesError(400, "the path query parameter is required for an octet-stream upload")
            body = _raw(stream, request.headers.get("content-encoding", "identity"))
            written.append(_info(await live.agent.upload({"path": path}, body, agent_headers)))
        else:
            raise FilesError(400, f"unsupported content-type {ctype.decode('latin-1')!r}: use multipart/form-data or application/octet-stream")
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception as exc:  # noqa: BLE001 - every failure is a JSON error, after the body
        await _drain(stream)
        return error_response(exc)
    return JSONResponse(written)


async def _upload_parts(agent: Any, parts: _Parts, path: str | None, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every part of a multipart upload, all or none: each is streamed into a staged temp file
    beside its target, and only once all arrived are they moved over their targets together; a
    failure deletes the staged ones (so a broken upload changes nothing)."""
    staged: list[dict[str, Any]] = []
    try:
        while (filename := await parts.next_part()) is not None:
            if len(staged) >= MAX_PARTS:
                raise FilesError(400, f"at most {MAX_PARTS} files per upload")
            target = path if path is not None and parts.count == 1 else filename
            if not target:
                raise FilesError(400, "each part needs a filename (the destination path)")
            reply = await agent.upload({"path": target, "stage": "1"}, parts.data(), headers)
            _info(reply)
            if not isinstance(reply.get("staged"), str):
                raise FilesError(500, "the sandbox agent did not stage the upload")
            staged.append(reply)
        if not staged:
            raise FilesError(400, "the upload holds no file")
        await agent.request("POST", "/files/commit", json_body={"files": [_pair(r) for r in staged]})
    except BaseException:
        if staged:
            with contextlib.suppress(Exception):
                await agent.request("POST", "/files/discard", json_body={"files": [_pair(r) for r in staged]})
        raise
    return [_info(r) for r in staged]


def _pair(reply: dict[str, Any]) -> dict[str, str]:
    return {"staged": reply["staged"], "path": reply["path"]}


def _metadata_headers(request: Request) -> dict[str, str]:
    """``X-Metadata-<key>: <value>`` (envd >= 0.6.2): stored with every file of the upload, as
    ``user.e2b.<key>`` extended attributes (keys arrive lowercased: HTTP header names)."""
    metadata = {k[len(METADATA_PREFIX) :]: v for k, v in request.headers.items() if k.startswith(METADATA_PREFIX)}
    if not metadata:
        return {}
    if len(metadata) > MAX_METADATA or not all(0 < len(k) <= 200 and len(v) <= 4096 for k, v in metadata.items()):
        raise FilesError(400, f"at most {MAX_METADATA} metadata headers, keys up to 200 and values up to 4096 characters")
    return {"x-nullspace-metadata": json.dumps(metadata)}


def _info(reply: Any) -> dict[str, Any]:
    if not (isinstance(reply, dict) and isinstance(reply.get("path"), str) and isinstance(reply.get("name"), str)):
        raise FilesError(500, "the sandbox agent sent a malformed answer")
    info: dict[str, Any] = {"name": reply["name"], "type": "file", "path": reply["path"]}
    if _string_map(reply.get("metadata")):
        info["metadata"] = reply["metadata"]
    return info


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


async def _drain(stream: AsyncIterator[bytes], limit: int = 256 << 20) -> None:
    """Read (and drop) what is left of the body, within a bound, so the client reads our answer."""
    seen = 0
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > limit:
                return
    except (ClientDisconnect, RuntimeError):
        return


async def _raw(stream: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    encoding = encoding.strip().lower()
    if encoding in ("identity", ""):
        async for chunk in stream:
            yield chunk
        return
    if encoding != "gzip":
        raise FilesError(415, f"unsupported Content-Encoding {encoding!r} (identity or gzip)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        async for chunk in stream:
            data = chunk
            while data:  # bounded output per step: a small bomb never sits whole in memory
                out = inflate.decompress(data, INFLATE_CHUNK)
                data = inflate.unconsumed_tail
                if out:
                    yield out
        if tail := inflate.flush():
            yield tail
    except zlib.error as exc:
        raise FilesError(400, f"the body is not valid gzip: {exc}") from None


class _Parts:
    """A streaming multipart/form-data reader: `next_part()` gives each part's filename,
    `data()` its bytes, as the body arrives."""

    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self.stream = stream
        self.events: collections.deque[tuple[str, Any]] = collections.deque()
        self.count = 0
        self.ended = False
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(boundary, {
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda d, s, e: self.events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_end": lambda: self.events.append(("done", None)),
        })  # fmt: skip

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)
        if len(self._field) + len(self._value) > 8192:
            raise FilesError(400, "a multipart header is too long")

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        headers, self._headers = self._headers, {}
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"filename", b"").decode("utf-8", "replace").replace("%22", '"')
        self.events.append(("begin", name[:MAX_PATH]))

    async def _event(self) -> tuple[str, Any]:
        while not self.events:
            if self.ended:
                raise FilesError(400, "the multipart body ended early")
            try:
                chunk = await anext(self.stream)
            except StopAsyncIteration:
                self.ended = True
                self.parser.finalize()
                continue
            try:
                self.parser.write(chunk)
            except FilesError:
                raise
            except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors
                raise FilesError(400, f"malformed multipart body: {exc}") from None
        return self.events.popleft()

    async def next_part(self) -> str | None:
        while True:
            kind, value = await self._event()
            if kind == "begin":
                self.count += 1
                return value
            if kind == "done":
                return None

    async def data(self) -> AsyncIterator[bytes]:
        while True:
            kind, value = await self._event()
            if kind == "data":
                if value:
                    yield value
            elif kind in ("end", "done"):
                if kind == "done":
                    self.events.appendleft(("done", None))
                return
