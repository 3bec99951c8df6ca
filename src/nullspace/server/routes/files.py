"""/v1/sandboxes/{id}/files: move data in and out of a sandbox (docs/api.md, "Files").

This side never resolves a path: it hands the string to the agent, which resolves it inside the
sandbox (ARCHITECTURE §7.3). Bodies stream both ways and are never held whole: an upload is the
request stream passed on to the agent (this route is exempt from `BodyLimit`; the sandbox's disk
limit bounds it), a download is the agent's answer passed on, never more than the size the agent
announced up front.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from ..._exceptions import InvalidArgumentError
from ..agent_client import AgentError
from ..deps import Caller, Manager
from ..models import ErrorBody, Strict

log = logging.getLogger(__name__)
ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 500, 507)}
router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/files", tags=["files"], responses=ERRORS)
Path = Annotated[str, Query(min_length=1, max_length=4096, description="a path in the sandbox; relative to /home/user")]
SHA256 = re.compile(r"^[0-9a-f]{64}$")
DRAIN_BYTES = 256 << 20
DRAIN_SECONDS = 30.0
EXPECTED = ("x-nullspace-expected-size", "x-nullspace-expected-sha256")


class EntryInfo(BaseModel):
    name: str = Field(..., max_length=4096)
    path: str = Field(..., max_length=8192)
    type: Literal["file", "dir", "symlink", "other"]
    size: int = Field(..., ge=0)
    mode: int = Field(..., ge=0, le=0o7777)
    permissions: str = Field(..., max_length=16)
    owner: str = Field(..., max_length=256)
    group: str = Field(..., max_length=256)
    modified_time: datetime
    symlink_target: str | None = Field(None, max_length=8192)


class WriteInfo(BaseModel):
    path: str = Field(..., max_length=8192)
    name: str = Field(..., max_length=4096)
    type: Literal["file"]
    size: int = Field(..., ge=0)
    sha256: str = Field(..., pattern=SHA256.pattern)


class MakeDirResult(BaseModel):
    created: bool
    entry: EntryInfo


class Rename(Strict):
    source: str = Field(..., min_length=1, max_length=4096)
    destination: str = Field(..., min_length=1, max_length=4096)


class MakeDir(Strict):
    path: str = Field(..., min_length=1, max_length=4096)


class _Upload:
    """The request body as an async iterable, resumable: what httpx did not send can be drained."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()
        self.received = 0

    def __aiter__(self) -> _Upload:
        return self

    async def __anext__(self) -> bytes:
        chunk = await anext(self._chunks)
        self.received += len(chunk)
        return chunk

    async def drain(self) -> None:
        """Read (and drop) the rest of the body, within bounds, so the client gets our answer
        rather than a reset connection."""
        deadline = time.monotonic() + DRAIN_SECONDS
        drained = 0
        try:
            async for chunk in self._chunks:
                drained += len(chunk)
                if drained > DRAIN_BYTES or time.monotonic() > deadline:
                    return
        except (ClientDisconnect, RuntimeError):
            return


@router.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"}},
)
async def read_file(sandbox_id: str, path: Path, manager: Manager, caller: Caller) -> StreamingResponse:
    """Download a regular file (streamed, with Content-Length)."""
    live = await manager.require_live(sandbox_id, caller)
    stack = AsyncExitStack()
    async with manager.agent_errors(live):
        size, chunks = await stack.enter_async_context(live.agent.download({"path": path}))

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except AgentError as exc:  # e.g. the file shrank while it was read: the body ends short,
            log.warning("sandbox %s: download of %r cut short: %s", sandbox_id, path[:200], exc)
            return  # uvicorn closes the connection: the client sees an incomplete response
        finally:
            await stack.aclose()

    headers = {"Content-Length": str(size), "Cache-Control": "no-store"}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


@router.put(
    "",
    response_model=WriteInfo,
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def write_file(sandbox_id: str, path: Path, request: Request, manager: Manager, caller: Caller) -> Any:
    """Upload a file: the raw body is streamed into the sandbox and committed atomically. The
    answer's `size` and `sha256` are computed inside the sandbox. Optional headers
    `X-Nullspace-Expected-Size` / `X-Nullspace-Expected-Sha256` make the sandbox refuse (and not
    write) a body that differs."""
    upload = _Upload(request)
    try:
        live = await manager.require_live(sandbox_id, caller)
        headers = {}
        for name in EXPECTED:
            value = request.headers.get(name)
            if value is not None:
                value = value.strip().lower()
                if not (value.isdigit() and len(value) < 19 if name.endswith("size") else SHA256.match(value)):
                    raise InvalidArgumentError(f"invalid {name} header")
                headers[name] = value
        async with manager.agent_errors(live):
            reply = await live.agent.upload({"path": path}, upload, headers)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening
    except BaseException:
        await upload.drain()
        raise
    return WriteInfo.model_validate(reply)


@router.delete("", status_code=204)
async def remove_file(sandbox_id: str, path: Path, manager: Manager, caller: Caller) -> Response:
    """Remove a file, a symlink (not its target) or a directory with everything in it."""
    await manager.agent_request(sandbox_id, "DELETE", _with_path("/files", path), None, caller)
    return Response(status_code=204)


@router.get("/info", response_model=EntryInfo)
async def file_info(sandbox_id: str, path: Path, manager: Manager, caller: Caller) -> Any:
    """What `path` is: `404 not_found` if it does not exist."""
    return EntryInfo.model_validate(await manager.agent_request(sandbox_id, "GET", _with_path("/files/info", path), None, caller))


@router.get("/list", response_model=list[EntryInfo])
async def list_files(sandbox_id: str, manager: Manager, caller: Caller, path: Path = ".",
                     depth: Annotated[int, Query(ge=1, le=64)] = 1) -> Any:
    """The entries under a directory, `depth` levels deep (at most 10,000), sorted by path."""
    live = await manager.require_live(sandbox_id, caller)
    async with manager.agent_errors(live):
        reply = await live.agent.request("GET", _with_path("/files/list", path, depth=str(depth)))
    if not isinstance(reply, list):
        raise AgentError("the sandbox agent sent a malformed listing")
    return [EntryInfo.model_validate(e) for e in reply]


@router.post("/rename", response_model=EntryInfo)
async def rename_file(sandbox_id: str, body: Rename, manager: Manager, caller: Caller) -> Any:
    """Move `source` to `destination` (parents are created; a file there is replaced)."""
    return EntryInfo.model_validate(await manager.agent_request(sandbox_id, "POST", "/files/rename", body.model_dump(), caller))


@router.post("/mkdir", response_model=MakeDirResult,
             responses={201: {"model": MakeDirResult, "description": "created (200: it existed)"}})
async def make_dir(sandbox_id: str, body: MakeDir, manager: Manager, caller: Caller) -> Any:
    """Create a directory and its parents; `created` is false if it already existed."""
    result = MakeDirResult.model_validate(await manager.agent_request(sandbox_id, "POST", "/files/mkdir", body.model_dump(), caller))
    return JSONResponse(result.model_dump(mode="json"), status_code=201 if result.created else 200)


def _with_path(endpoint: str, path: str, **extra: str) -> str:
    return f"{endpoint}?{urlencode({'path': path, **extra})}"
