"""Files: ``/files`` (docs/api.md, "Files").

The agent runs inside the sandbox as the sandbox user, so every path is resolved in the
sandbox's own mount namespace: a host path means nothing here. On top of that, paths are
resolved component by component (`paths.resolve`): a ``..`` that climbs above ``/``, in the path
or in a symlink on the way, is refused, and so is anything under /proc or /sys; reads and writes
then open what was resolved without following a symlink that appeared meanwhile
(`paths.open_resolved`: ``409 conflict``). Only regular files are read or replaced (never a
FIFO, device or socket).

A write streams the body into a temporary file next to the target, hashing as it goes, then
fsyncs and renames it over the target: readers see the old file or the new one, never half of
one. If the disk fills up, the temporary file is deleted, the rest of the body is read and
dropped, and the answer is ``507 disk_full``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import stat
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .contexts import AgentError
from .paths import lexical as lexical
from .paths import open_dir, open_resolved, resolve
from .web import json_body

MAX_ENTRIES = 10_000
MAX_DEPTH = 64
READ_CHUNK = 1 << 20
XATTR_PREFIX = "user.e2b."
UPLOAD_TEMP = re.compile(r"^\.[^/]*\.[0-9a-f]{12}\.nsupload$", re.DOTALL)  # what _write names its temp files
MAX_METADATA = 64
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EFBIG}


def _os_error(exc: OSError, path: str, verb: str) -> AgentError:
    code = exc.errno
    if code == errno.ENOENT:
        return AgentError(
            404,
            "not_found",
            f"{path} does not exist in the sandbox "
            "(paths are resolved inside the sandbox, never on the host)",
        )
    if code in DISK_ERRORS:
        return AgentError(507, "disk_full", _disk_full_message(path, code))
    reasons = {
        errno.EACCES: "permission denied (the sandbox user may not do that)",
        errno.EPERM: "operation not permitted",
        errno.EEXIST: "it already exists",
        errno.ENOTDIR: "a parent is not a directory",
        errno.EISDIR: "it is a directory",
        errno.ENOTEMPTY: "the directory is not empty",
        errno.EROFS: "that part of the sandbox is read-only",
        errno.ELOOP: "too many levels of symlinks",
        errno.ENAMETOOLONG: "the name is too long",
        errno.EXDEV: "cannot move across file systems",
    }
    status, kind = (409, "conflict") if code in (errno.EEXIST, errno.ENOTEMPTY) else (400, "invalid_argument")
    return AgentError(
        status, kind, f"cannot {verb} {path}: {reasons.get(code or 0, exc.strerror or str(exc))}"
    )


def _disk_full_message(path: str, code: int | None) -> str:
    try:
        vfs = os.statvfs("/")
        limit = f" ({vfs.f_blocks * vfs.f_frsize / (1 << 20):.0f} MiB)"
    except OSError:
        limit = ""
    if code == errno.ENOMEM:
        return (
            f"the sandbox ran out of memory while writing {path}: its files live in memory and count "
            "against its memory limit; nothing was written"
        )
    return f"the sandbox's disk is full{limit}: {path} was not written"


# -- entries ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@functools.lru_cache(maxsize=64)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def entry(path: str, workdir: str) -> dict[str, Any]:
    """EntryInfo of `path` (absolute, its parent resolved). A symlink reports its target's type
    (``symlink`` when the target is missing or refused) and ``symlink_target``."""
    st = os.lstat(path)
    target = None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        try:
            st = os.stat(resolve(path, workdir))
        except (OSError, AgentError):
            pass
    return {
        "name": os.path.basename(path) or "/",
        "path": path,
        "type": _kind(st.st_mode),
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode),
        "permissions": stat.filemode(st.st_mode),
        "owner": _user(st.st_uid),
        "group": _group(st.st_gid),
        "modified_time": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
        "symlink_target": target,
        "metadata": metadata_of(path),
    }


def metadata_of(path: str) -> dict[str, str] | None:
    """The file's metadata: its ``user.e2b.*`` extended attributes (E2B's), None when it has none."""
    try:
        names = [n for n in os.listxattr(path, follow_symlinks=False) if n.startswith(XATTR_PREFIX)]
        found = {n[len(XATTR_PREFIX) :]: os.getxattr(path, n, follow_symlinks=False) for n in names}
    except OSError:
        return None
    return {k: v.decode("utf-8", "replace") for k, v in found.items()} or None


def _metadata(request: Request) -> dict[str, str]:
    """``X-Nullspace-Metadata: {"key": "value", ...}``: metadata to store with the file."""
    raw = request.headers.get("x-nullspace-metadata")
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or len(data) > MAX_METADATA or not all(
        isinstance(k, str) and 0 < len(k) <= 200 and "\0" not in k and isinstance(v, str) and len(v) <= 4096
        for k, v in data.items()
    ):
        raise AgentError(400, "invalid_argument", f"metadata must be at most {MAX_METADATA} short string pairs")
    return data


def list_dir(path: str, depth: int, workdir: str) -> list[dict[str, Any]]:
    """Entries under `path` down to `depth` levels, sorted by path; symlinks are not descended."""
    out: list[dict[str, Any]] = []
    level = [path]
    for _ in range(depth):
        below = []
        for directory in level:
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                if directory == path:
                    raise
                continue  # unreadable subdirectory: listed, not descended
            for name in names:
                child = os.path.join(directory, name)
                try:
                    info = entry(child, workdir)
                except OSError:
                    continue  # vanished meanwhile
                out.append(info)
                if len(out) > MAX_ENTRIES:
                    raise AgentError(
                        400,
                        "invalid_argument",
                        f"more than {MAX_ENTRIES} entries under {path}; list a smaller part or lower depth",
                    )
                if info["type"] == "dir" and info["symlink_target"] is None:
                    below.append(child)
        level = below
    return sorted(out, key=lambda e: e["path"])


# -- reading ---------------------------------------------------------------------------------------


def open_regular(path: str) -> tuple[int, int]:
    """(fd, size) of a regular file; refuses everything else without opening it."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise AgentError(400, "invalid_argument", f"{path} is a directory (use the list endpoint)")
        if not stat.S_ISREG(st.st_mode):
            raise AgentError(
                400, "invalid_argument", f"{path} is not a regular file (FIFO, device or socket)"
            )
        fd = open_resolved(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise _os_error(exc, path, "read") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise AgentError(400, "invalid_argument", f"{path} is not a regular file")
    return fd, st.st_size


class FileStream(Response):
    """Exactly `size` bytes of `fd` (the size it had when opened), then closes it. A file that
    shrinks meanwhile cannot send what it announced: the response is cut short (the server and
    the SDK report "the file shrank while it was read"), never padded."""

    def __init__(self, fd: int, size: int) -> None:
        self.status_code = 200
        self.background = None
        self.fd, self.size = fd, size
        self.raw_headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(size).encode()),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            offset = 0
            while offset < self.size:
                chunk = await asyncio.to_thread(
                    os.pread, self.fd, min(READ_CHUNK, self.size - offset), offset
                )
                if not chunk:
                    return  # the file shrank: end without completing the response
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": offset < self.size})
            if self.size == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)


# -- writing ---------------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _expected(request: Request) -> tuple[int | None, str | None]:
    size = request.headers.get("x-nullspace-expected-size")
    sha = request.headers.get("x-nullspace-expected-sha256")
    if size is not None and not size.isdigit():
        raise AgentError(400, "invalid_argument", "X-Nullspace-Expected-Size must be a number of bytes")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise AgentError(400, "invalid_argument", "X-Nullspace-Expected-Sha256 must be 64 hex digits")
    return (int(size) if size is not None else None), (sha.lower() if sha else None)


async def _drain(request: Request) -> None:
    try:
        async for _ in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):  # RuntimeError: the body was already read
        pass


async def write_file(request: Request) -> Response:
    workdir = _workdir(request)
    try:
        path = resolve(request.query_params.get("path"), workdir)
        expected_size, expected_sha = _expected(request)
        stage = request.query_params.get("stage") in ("1", "true")
        return JSONResponse(await _write(request, path, expected_size, expected_sha, _metadata(request), stage))
    except ClientDisconnect:
        return Response(status_code=400)
    except AgentError:
        await _drain(request)  # answer only once the whole body was read: no early close
        raise


async def _write(
    request: Request,
    path: str,
    expected_size: int | None,
    expected_sha: str | None,
    metadata: dict[str, str] | None = None,
    stage: bool = False,
) -> dict[str, Any]:
    """Write the body to a temp file next to `path`, then rename it over `path`; with `stage`,
    leave it there and answer its name (``staged``) for `commit_files` / `discard_files`."""
    parent, name = os.path.split(path)
    if not name:
        raise AgentError(400, "invalid_argument", "cannot write to /")
    mode = 0o644
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _os_error(exc, path, "write") from exc
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise AgentError(400, "invalid_argument", f"{path} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise AgentError(
                400,
                "invalid_argument",
                f"refusing to write to {path}: not a regular file (FIFO, device or socket)",
            )
        mode = stat.S_IMODE(st.st_mode)
    tmp = f".{name[:64]}.{secrets.token_hex(6)}.nsupload"
    try:
        os.makedirs(parent, exist_ok=True)
        dir_fd = open_dir(parent)  # the file is made and renamed in this directory, whatever flips
    except OSError as exc:
        raise _os_error(exc, path, "write") from exc
    try:
        return await _write_in(request, dir_fd, tmp, path, mode, expected_size, expected_sha, metadata, stage)
    finally:
        os.close(dir_fd)


async def _write_in(
    request: Request,
    dir_fd: int,
    tmp: str,
    path: str,
    mode: int,
    expected_size: int | None,
    expected_sha: str | None,
    metadata: dict[str, str] | None,
    stage: bool,
) -> dict[str, Any]:
    name = os.path.basename(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise _os_error(exc, path, "write") from exc
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            async for chunk in request.stream():
                if chunk:
                    digest.update(chunk)
                    _write_all(fd, chunk)
                    size += len(chunk)
            await asyncio.to_thread(os.fsync, fd)
            os.fchmod(fd, mode)
            for key, value in (metadata or {}).items():
                os.setxattr(fd, XATTR_PREFIX + key, value.encode())
            written = os.fstat(fd).st_size
        finally:
            os.close(fd)
        sha = digest.hexdigest()
        if written != size:
            raise AgentError(500, "internal", f"{path}: {written} bytes on disk but {size} received")
        if expected_size is not None and size != expected_size:
            raise AgentError(
                422,
                "integrity_error",
                f"{path} was not written: received {size} bytes, expected {expected_size}",
            )
        if expected_sha is not None and sha != expected_sha:
            raise AgentError(
                422,
                "integrity_error",
                f"{path} was not written: received sha256 {sha}, expected {expected_sha}",
            )
        if not stage:
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _os_error(exc, path, "write") from exc
        raise
    info: dict[str, Any] = {"path": path, "name": name, "type": "file", "size": size, "sha256": sha}
    if metadata:
        info["metadata"] = metadata
    if stage:
        info["staged"] = os.path.join(os.path.dirname(path), tmp)
    return info


def _staged(item: Any) -> tuple[str, str]:
    """(temp file, target) of one staged upload, checked: the temp file is one of ours, beside
    its target."""
    if not isinstance(item, dict) or not isinstance(item.get("staged"), str) or not isinstance(item.get("path"), str):
        raise AgentError(400, "invalid_argument", "each item needs staged and path")
    tmp, path = item["staged"], item["path"]
    if os.path.dirname(tmp) != os.path.dirname(path) or not UPLOAD_TEMP.match(os.path.basename(tmp)):
        raise AgentError(400, "invalid_argument", f"{tmp} is not a staged upload for {path}")
    return tmp, path


async def _staged_list(request: Request) -> list[tuple[str, str]]:
    items = (await json_body(request)).get("files")
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise AgentError(400, "invalid_argument", "files must be a list")
    return [_staged(item) for item in items]


async def commit_files(request: Request) -> Response:
    """``{"files": [{"staged", "path"}, ...]}``: move staged uploads over their targets, together:
    every one is checked first (a regular file, reached without following a symlink), then the
    renames run, inside each target's directory fd (nothing left to fail but the file system)."""
    moves: list[tuple[int, str, str]] = []
    path = ""
    try:
        for tmp, path in await _staged_list(request):
            dir_fd = open_dir(os.path.dirname(path))
            moves.append((dir_fd, os.path.basename(tmp), os.path.basename(path)))
            if not stat.S_ISREG(os.stat(moves[-1][1], dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise AgentError(400, "invalid_argument", f"{tmp} is not a staged upload")
        for dir_fd, tmp_name, name in moves:
            os.rename(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        raise _os_error(exc, path, "write") from exc
    finally:
        for dir_fd, _, _ in moves:
            os.close(dir_fd)
    return Response(status_code=204)


async def discard_files(request: Request) -> Response:
    """``{"files": [{"staged", "path"}, ...]}``: delete staged uploads (missing ones are fine)."""
    for tmp, _ in await _staged_list(request):
        try:
            dir_fd = open_dir(os.path.dirname(tmp))
        except (OSError, AgentError):
            continue
        try:
            os.unlink(os.path.basename(tmp), dir_fd=dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    return Response(status_code=204)


# -- endpoints -------------------------------------------------------------------------------------


def _workdir(request: Request) -> str:
    return request.app.state.registry.config.workdir


async def read_file(request: Request) -> Response:
    path = resolve(request.query_params.get("path"), _workdir(request))
    fd, size = open_regular(path)
    return FileStream(fd, size)


async def file_info(request: Request) -> Response:
    workdir = _workdir(request)
    path = resolve(request.query_params.get("path"), workdir, follow_last=False)
    try:
        return JSONResponse(entry(path, workdir))
    except OSError as exc:
        raise _os_error(exc, path, "stat") from exc


async def list_files(request: Request) -> Response:
    workdir = _workdir(request)
    path = resolve(request.query_params.get("path") or ".", workdir)
    depth = request.query_params.get("depth") or "1"
    if not depth.isdigit() or not 1 <= int(depth) <= MAX_DEPTH:
        raise AgentError(400, "invalid_argument", f"depth must be 1..{MAX_DEPTH}")
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise AgentError(400, "invalid_argument", f"{path} is not a directory")
        entries = await asyncio.to_thread(list_dir, path, int(depth), workdir)
    except OSError as exc:
        raise _os_error(exc, path, "list") from exc
    return JSONResponse(entries)


async def remove_file(request: Request) -> Response:
    path = resolve(request.query_params.get("path"), _workdir(request), follow_last=False)
    if path == "/":
        raise AgentError(400, "invalid_argument", "refusing to remove /")
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            await asyncio.to_thread(shutil.rmtree, path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise _os_error(exc, path, "remove") from exc
    return Response(status_code=204)


async def rename_file(request: Request) -> Response:
    body = await json_body(request)
    workdir = _workdir(request)
    source = resolve(body.get("source"), workdir, follow_last=False)
    destination = resolve(body.get("destination"), workdir, follow_last=False)
    if "/" in (source, destination):
        raise AgentError(400, "invalid_argument", "cannot rename /")
    try:
        os.lstat(source)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            await asyncio.to_thread(shutil.move, source, destination)
        return JSONResponse(entry(destination, workdir))
    except OSError as exc:
        raise _os_error(exc, source if exc.filename == source else destination, "rename") from exc


async def make_dir(request: Request) -> Response:
    body = await json_body(request)
    workdir = _workdir(request)
    path = resolve(body.get("path"), workdir)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _os_error(exc, path, "create") from exc
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise AgentError(409, "conflict", f"{path} already exists and is not a directory")
    try:
        if st is None:
            os.makedirs(path)
        return JSONResponse(
            {"created": st is None, "entry": entry(path, workdir)}, status_code=201 if st is None else 200
        )
    except OSError as exc:
        raise _os_error(exc, path, "create") from exc


routes = [
    Route("/files", read_file, methods=["GET"]),
    Route("/files", write_file, methods=["PUT"]),
    Route("/files", remove_file, methods=["DELETE"]),
    Route("/files/info", file_info, methods=["GET"]),
    Route("/files/list", list_files, methods=["GET"]),
    Route("/files/rename", rename_file, methods=["POST"]),
    Route("/files/mkdir", make_dir, methods=["POST"]),
    Route("/files/commit", commit_files, methods=["POST"]),
    Route("/files/discard", discard_files, methods=["POST"]),
]
