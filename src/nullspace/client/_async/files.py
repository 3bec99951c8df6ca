"""`AsyncFiles` (`sandbox.files`): move data in and out of the sandbox, verified."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal, overload

import httpx

from ..._exceptions import InvalidArgumentError, NotFoundError, SandboxNotFoundError, TransportError
from .._errors import json_body, map_errors
from .._files import (
    CHUNK,
    READ_LIMIT,
    EntryInfo,
    Upload,
    WriteData,
    WriteInfo,
    aiter_chunks,
    note_cut_short,
    read_size,
    write_entries,
)
from ._http import AsyncAPIClient


class AsyncFiles:
    """`sandbox.files`: read, write, list and manage files in the sandbox.

    Paths are sandbox paths; relative ones start at the template's workdir (/home/user). A path
    that leaves the sandbox (`..` above /, a symlink pointing above /, /proc) is refused with
    `InvalidArgumentError`; a host path simply does not exist in the sandbox.
    """

    def __init__(self, api: AsyncAPIClient, base_path: str) -> None:
        """Created by the sandbox; use `sandbox.files`."""
        self._api = api
        self._base = base_path

    def _path(self, *parts: str) -> str:
        return "/".join([self._base, *parts])

    # -- reading ---------------------------------------------------------------------------

    @overload
    async def read(
        self,
        path: str,
        format: Literal["text"] = "text",
        request_timeout: float | None = None,
        max_bytes: int | None = READ_LIMIT,
    ) -> str: ...

    @overload
    async def read(
        self,
        path: str,
        format: Literal["bytes"],
        request_timeout: float | None = None,
        max_bytes: int | None = READ_LIMIT,
    ) -> bytes: ...

    @overload
    async def read(
        self,
        path: str,
        format: Literal["stream"],
        request_timeout: float | None = None,
        max_bytes: int | None = READ_LIMIT,
    ) -> AsyncGenerator[bytes, None]: ...

    async def read(
        self,
        path: str,
        format: Literal["text", "bytes", "stream"] = "text",
        request_timeout: float | None = None,
        max_bytes: int | None = READ_LIMIT,
    ) -> str | bytes | AsyncIterator[bytes]:
        """Read a regular file.

        Args:
            path: The file's path in the sandbox.
            format: "text" (decoded as UTF-8, invalid bytes replaced), "bytes", or "stream":
                an iterator of byte chunks that never holds the whole file (iterate it to the
                end, or close it, to release the connection).
            request_timeout: Seconds for connecting and between two received bytes.
            max_bytes: "text" and "bytes" hold the whole file in memory: a file larger than
                this (256 MiB by default; the sandbox announces the size before sending) is
                refused before any of it is read. Raise it, pass None for no limit, or read
                with format="stream". Not applied to "stream".

        Raises:
            NotFoundError: no such file in the sandbox.
            PayloadTooLargeError: the file is larger than `max_bytes` (nothing was read).
            InvalidArgumentError: it is a directory or a special file, or the path leaves
                the sandbox.
            TransportError: the connection broke, or fewer bytes than announced arrived.
        """
        if format not in ("text", "bytes", "stream"):
            raise InvalidArgumentError(f"format must be 'text', 'bytes' or 'stream', not {format!r}")
        response = await self._api.open_stream(
            "GET", self._path("files"), params={"path": path}, timeout=request_timeout
        )
        if format == "stream":
            return self._chunks_of(response, path)
        try:
            size = read_size(response, path, max_bytes)
            data = bytearray()
            with note_cut_short(path), map_errors(f"reading {path}"):
                async for chunk in response.aiter_bytes():  # noqa: UP028
                    data += chunk
                    if len(data) > size:
                        raise TransportError(f"reading {path}: the server sent more than the {size} bytes it announced")
        finally:
            await response.aclose()
        return bytes(data) if format == "bytes" else data.decode("utf-8", "replace")

    async def _chunks_of(self, response: httpx.Response, path: str) -> AsyncGenerator[bytes, None]:
        try:
            with note_cut_short(path), map_errors(f"reading {path}"):
                async for chunk in response.aiter_bytes():  # noqa: UP028
                    yield chunk
        finally:
            await response.aclose()

    # -- writing ---------------------------------------------------------------------------

    async def _content(self, upload: Upload) -> AsyncGenerator[bytes, None]:
        async for chunk in aiter_chunks(upload.source):
            yield upload.take(chunk)

    async def _pieces(self, payload: bytes) -> AsyncIterator[bytes]:
        # A big body goes in CHUNK pieces: httpcore re-slices one buffer after every partial
        # send, which is quadratic; over a unix socket (small send buffer) 50 MB took 12 s.
        for start in range(0, len(payload), CHUNK):
            yield payload[start : start + CHUNK]

    async def write(
        self, path: str, data: WriteData, request_timeout: float | None = None
    ) -> WriteInfo:
        """Write a file (parents are created; an existing file is replaced atomically).

        The data streams into the sandbox; the sandbox hashes what it writes, and the result
        is checked against what was sent.

        Args:
            path: Where, in the sandbox.
            data: str (written as UTF-8), bytes, a binary file object, or an iterator (sync or
                async) of bytes; file objects and iterators are streamed, never held whole.
            request_timeout: Seconds for connecting and between two transferred chunks.

        Returns:
            `WriteInfo` with the path, size and SHA-256 measured inside the sandbox.

        Raises:
            DiskFullError: the sandbox's disk (`disk_mb`) is full; the file was not written.
            IntegrityError: what landed differs from what was sent (str/bytes: nothing was
                written; a stream: the file was removed).
            InvalidArgumentError: the path is a directory or special file, or leaves the
                sandbox.
        """
        upload = Upload(data)
        if upload.payload is None:
            content: Any = self._content(upload)
        elif len(upload.payload) > CHUNK:
            content = self._pieces(upload.payload)
        else:
            content = upload.payload
        response = await self._api.open_stream(
            "PUT",
            self._path("files"),
            params={"path": path},
            content=content,
            headers=upload.headers(),
            timeout=request_timeout,
        )
        try:
            with map_errors(f"writing {path}"):
                await response.aread()
        finally:
            await response.aclose()
        info = WriteInfo.from_dict(json_body(response))
        error = upload.mismatch(info)
        if error is not None:
            if upload.payload is None:
                await self.remove(info.path, request_timeout)
            raise error
        return info

    async def write_files(
        self, files: builtins.list[Any], request_timeout: float | None = None
    ) -> builtins.list[WriteInfo]:
        """Write several files, one after the other, each verified as in `write`.

        Args:
            files: `WriteEntry(path, data)`s, `(path, data)` pairs or `{"path", "data"}` dicts.
            request_timeout: As in `write`.
        """
        return [
            await self.write(entry.path, entry.data, request_timeout)
            for entry in write_entries(files)
        ]

    # -- metadata --------------------------------------------------------------------------

    async def list(
        self, path: str = ".", depth: int = 1, request_timeout: float | None = None
    ) -> builtins.list[EntryInfo]:
        """The entries under a directory, `depth` levels deep, sorted by path (symlinked
        directories are listed, not descended; at most 10,000 entries)."""
        data = await self._api.request(
            "GET",
            self._path("files", "list"),
            params={"path": path, "depth": depth},
            timeout=request_timeout,
        )
        return [EntryInfo.from_dict(item) for item in data or []]

    async def get_info(self, path: str, request_timeout: float | None = None) -> EntryInfo:
        """What is at `path` (a symlink is described, not followed, except for its type).

        Raises:
            NotFoundError: nothing is there.
        """
        data = await self._api.request(
            "GET", self._path("files", "info"), params={"path": path}, timeout=request_timeout
        )
        return EntryInfo.from_dict(data)

    async def exists(self, path: str, request_timeout: float | None = None) -> bool:
        """True if something is at `path` in the sandbox."""
        try:
            await self.get_info(path, request_timeout)
        except SandboxNotFoundError:
            raise
        except NotFoundError:
            return False
        return True

    async def remove(self, path: str, request_timeout: float | None = None) -> None:
        """Remove a file, a symlink (not its target), or a directory and everything in it.

        Raises:
            NotFoundError: nothing is there.
        """
        await self._api.request(
            "DELETE", self._path("files"), params={"path": path}, timeout=request_timeout
        )

    async def rename(
        self, old_path: str, new_path: str, request_timeout: float | None = None
    ) -> EntryInfo:
        """Move `old_path` to `new_path` (parents are created; a file there is replaced)."""
        data = await self._api.request(
            "POST",
            self._path("files", "rename"),
            json={"source": old_path, "destination": new_path},
            timeout=request_timeout,
        )
        return EntryInfo.from_dict(data)

    async def make_dir(self, path: str, request_timeout: float | None = None) -> bool:
        """Create a directory and its parents.

        Returns:
            True if it was created, False if it already existed.

        Raises:
            ConflictError: something that is not a directory is there.
        """
        data = await self._api.request(
            "POST", self._path("files", "mkdir"), json={"path": path}, timeout=request_timeout
        )
        return bool(isinstance(data, dict) and data.get("created"))
