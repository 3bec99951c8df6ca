"""Sans-I/O core of `sandbox.files`: public types, and upload sources that count and hash what
is sent so the SDK can check it against what the sandbox says it wrote.

`AsyncFiles` and the generated `Files` share this; `aiter_chunks` / `iter_chunks` turn the
accepted kinds of data (bytes, str, a file object, an iterator) into byte chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from .._exceptions import (
    IntegrityError,
    InvalidArgumentError,
    PayloadTooLargeError,
    ServerError,
    TransportError,
)

CHUNK = 1 << 20
READ_LIMIT = 256 << 20  # files.read(format="text"/"bytes") holds the file in memory


@contextlib.contextmanager
def note_cut_short(path: str) -> Iterator[None]:
    """A download whose body ended before its announced size: say what that means."""
    try:
        yield
    except TransportError as exc:
        if isinstance(exc.__cause__, httpx.RemoteProtocolError):
            raise TransportError(
                f"reading {path}: the body ended before the size announced: the file shrank while it "
                f"was read (or the sandbox went away); read it again ({exc})"
            ) from exc
        raise


def read_size(response: httpx.Response, path: str, max_bytes: int | None) -> int:
    """The size the server announced for a download (the sandbox tells it first), checked
    against `max_bytes` before a byte of the body is read."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
        raise InvalidArgumentError("max_bytes must be a non-negative integer or None")
    length = response.headers.get("content-length", "")
    size = int(length) if length.isdigit() and len(length) <= 18 else None
    if max_bytes is not None and (size is None or size > max_bytes):
        announced = f"{size} bytes" if size is not None else "of unknown size"
        raise PayloadTooLargeError(
            f"{path} is {announced}, over this read's max_bytes of {max_bytes}: pass a larger "
            "max_bytes (None for no limit) or read it with format='stream'"
        )
    return size if size is not None else 1 << 62
WriteData = Any  # str | bytes | a binary file object | an (async) iterable of bytes/str


@dataclass
class EntryInfo:
    """A file, directory or symlink in the sandbox.

    Attributes:
        name: Its last path component.
        path: Its absolute path in the sandbox.
        type: "file", "dir", "other" (FIFO, device, socket) or "symlink" (only for a symlink
            whose target is missing or outside the sandbox; others have their target's type).
        size: Size in bytes (of the target, for a symlink).
        mode: Permission bits, e.g. 0o644.
        permissions: `ls -l` style, e.g. "-rw-r--r--".
        owner: Owning user's name in the sandbox.
        group: Owning group's name in the sandbox.
        modified_time: Last modification time (UTC), if known.
        symlink_target: What the symlink points to, or None when it is not a symlink.
    """

    name: str
    path: str
    type: str
    size: int = 0
    mode: int = 0
    permissions: str = ""
    owner: str = ""
    group: str = ""
    modified_time: datetime | None = None
    symlink_target: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> EntryInfo:
        """Parse an EntryInfo from the server's JSON."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ServerError(f"malformed entry in server response: {data!r}"[:500])
        modified = data.get("modified_time")
        try:
            modified_time = datetime.fromisoformat(modified) if isinstance(modified, str) else None
        except ValueError:
            modified_time = None
        return cls(
            name=str(data.get("name") or ""),
            path=data["path"],
            type=str(data.get("type") or ""),
            size=int(data.get("size") or 0),
            mode=int(data.get("mode") or 0),
            permissions=str(data.get("permissions") or ""),
            owner=str(data.get("owner") or ""),
            group=str(data.get("group") or ""),
            modified_time=modified_time,
            symlink_target=data.get("symlink_target"),
        )


@dataclass
class WriteInfo:
    """What the sandbox wrote, measured inside the sandbox.

    Attributes:
        path: Absolute path of the file in the sandbox.
        name: Its last path component.
        size: Bytes written.
        sha256: Hex SHA-256 of the bytes written.
        type: Always "file".
    """

    path: str
    name: str
    size: int
    sha256: str
    type: str = "file"

    @classmethod
    def from_dict(cls, data: Any) -> WriteInfo:
        """Parse a WriteInfo from the server's JSON."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("path"), str)
            or not isinstance(data.get("size"), int)
            or not isinstance(data.get("sha256"), str)
        ):
            raise ServerError(f"malformed write result in server response: {data!r}"[:500])
        return cls(
            path=data["path"],
            name=str(data.get("name") or ""),
            size=data["size"],
            sha256=data["sha256"],
            type=str(data.get("type") or "file"),
        )


@dataclass
class WriteEntry:
    """One file for `files.write_files()`: where it goes and what goes in it."""

    path: str
    data: WriteData


def write_entries(files: Any) -> list[WriteEntry]:
    """Accept `WriteEntry`s, `(path, data)` pairs and `{"path", "data"}` dicts."""
    out = []
    for item in files:
        if isinstance(item, WriteEntry):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(WriteEntry(item[0], item[1]))
        elif isinstance(item, dict) and "path" in item and "data" in item:
            out.append(WriteEntry(item["path"], item["data"]))
        else:
            raise InvalidArgumentError(
                f"write_files takes WriteEntry, (path, data) or {{'path', 'data'}}, not {item!r}"[:300]
            )
    return out


class Upload:
    """What `files.write` sends: counted and hashed as it goes out.

    Bytes and str are sent as one body with the expected size and SHA-256 in headers, so the
    sandbox refuses (and does not write) anything else. Streams are checked after the fact.
    """

    def __init__(self, data: WriteData) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.payload: bytes | None = None
        self.source: Any = None
        if isinstance(data, str):
            self.payload = self.take(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            self.payload = self.take(bytes(data))
        elif hasattr(data, "read") or hasattr(data, "__iter__") or hasattr(data, "__aiter__"):
            self.source = data
        else:
            raise InvalidArgumentError(
                f"data must be str, bytes, a binary file object or an iterator of bytes, not {type(data).__name__}"
            )

    def take(self, chunk: Any) -> bytes:
        """Count and hash one chunk (str is sent as UTF-8)."""
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        elif isinstance(chunk, bytearray | memoryview):
            chunk = bytes(chunk)
        elif not isinstance(chunk, bytes):
            raise InvalidArgumentError(f"upload chunks must be bytes or str, not {type(chunk).__name__}")
        data: bytes = chunk
        self.digest.update(data)
        self.size += len(data)
        return data

    def headers(self) -> dict[str, str]:
        """Headers that make the sandbox check a body whose size and hash are known up front."""
        if self.payload is None:
            return {"Content-Type": "application/octet-stream"}
        return {
            "Content-Type": "application/octet-stream",
            "X-Nullspace-Expected-Size": str(self.size),
            "X-Nullspace-Expected-Sha256": self.digest.hexdigest(),
        }

    def mismatch(self, info: WriteInfo) -> IntegrityError | None:
        """The error to raise when the sandbox wrote something else than was sent."""
        sent = self.digest.hexdigest()
        if info.size == self.size and info.sha256.lower() == sent:
            return None
        return IntegrityError(
            f"{info.path}: the sandbox wrote {info.size} bytes with sha256 {info.sha256}, "
            f"but {self.size} bytes with sha256 {sent} were sent"
        )


def _read(source: Any) -> Any:
    try:
        return source.read(CHUNK)
    except TypeError:  # read() without a size argument
        return source.read()


def iter_chunks(source: Any) -> Iterator[bytes]:
    """Byte chunks of a file object or an iterable (the sync SDK)."""
    if hasattr(source, "read"):
        while True:
            chunk = _read(source)
            if inspect.isawaitable(chunk):
                if hasattr(chunk, "close"):
                    chunk.close()
                raise InvalidArgumentError("an async file object needs AsyncSandbox")
            if not chunk:
                return
            yield chunk
    elif hasattr(source, "__iter__"):
        yield from source
    else:
        raise InvalidArgumentError("an async iterator needs AsyncSandbox")


async def aiter_chunks(source: Any) -> AsyncIterator[bytes]:
    """Byte chunks of a (sync or async) file object, an async iterable or an iterable."""
    if hasattr(source, "read"):
        while True:
            chunk = _read(source)
            if inspect.isawaitable(chunk):
                chunk = await chunk
            if not chunk:
                return
            yield chunk
    elif hasattr(source, "__aiter__"):
        async for chunk in source:
            yield chunk
    else:
        for chunk in source:
            yield chunk
