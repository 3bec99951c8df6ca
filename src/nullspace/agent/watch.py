"""``/watchers``: directory watches (inotify, through ctypes: the template's Python has no
watchdog), for the E2B door's ``WatchDir`` and ``CreateWatcher``/``GetWatcherEvents``.

A watcher watches one directory (and, with ``recursive``, every directory below it, including
ones created later) and keeps its events in a bounded queue: ``GET /watchers/{id}/events`` drains
it, ``GET /watchers/{id}/stream`` follows it as NDJSON (``start`` first, keepalives in silences).
Event names are relative to the watched directory; ``op`` is one of create, write, remove,
rename, chmod (fsnotify's vocabulary, which envd uses). A sandbox has at most `MAX_WATCHERS`;
one nobody polled or followed for `IDLE` seconds is closed when a new one is made.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import os
import secrets
import stat
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import messages
from .contexts import AgentError
from .files import UPLOAD_TEMP, entry, resolve
from .web import NDJSONFollow, json_body

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR, IN_ISDIR = 0x4000, 0x8000, 0x01000000, 0x40000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
MASK = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
OPS = (
    (IN_CREATE | IN_MOVED_TO, "create"),
    (IN_MODIFY, "write"),
    (IN_DELETE | IN_DELETE_SELF, "remove"),
    (IN_MOVED_FROM | IN_MOVE_SELF, "rename"),
    (IN_ATTRIB, "chmod"),
)
HEADER = struct.Struct("iIII")
MAX_WATCHERS = 64
MAX_DIRS = 10_000  # watched directories per recursive watcher
MAX_EVENTS = 10_000  # queued per watcher; past that, events are dropped (and counted)
IDLE = 600.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


class Watcher:
    def __init__(self, root: str, recursive: bool, include_entry: bool, workdir: str) -> None:
        self.id = "w_" + secrets.token_hex(8)
        self.root, self.recursive, self.include_entry, self.workdir = root, recursive, include_entry, workdir
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.dropped = 0
        self.touched = time.monotonic()
        self.following = 0
        self.closed = False
        self._root_gone = False
        self._changed = asyncio.Event()
        self._dirs: dict[int, str] = {}  # watch descriptor -> directory
        self._uploads: collections.deque[int] = collections.deque(maxlen=64)  # rename cookies
        self.fd = _check(_libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        try:
            self._add(root, IN_ONLYDIR)
            if recursive:
                self._add_below(root)
        except BaseException:
            os.close(self.fd)
            raise
        asyncio.get_running_loop().add_reader(self.fd, self._read)

    def _add(self, directory: str, extra: int = 0) -> None:
        if len(self._dirs) >= MAX_DIRS:
            raise AgentError(400, "invalid_argument", f"more than {MAX_DIRS} directories to watch under {self.root}")
        wd = _check(_libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK | extra), directory)
        self._dirs[wd] = directory

    def _add_below(self, top: str) -> None:
        for current, dirs, _ in os.walk(top):  # does not follow symlinks
            for name in dirs:
                path = os.path.join(current, name)
                try:
                    self._add(path, IN_ONLYDIR)
                except OSError:
                    continue  # unreadable or vanished

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
            offset = 0
            while offset + HEADER.size <= len(data):
                wd, mask, cookie, length = HEADER.unpack_from(data, offset)
                raw = data[offset + HEADER.size : offset + HEADER.size + length].rstrip(b"\0")
                offset += HEADER.size + length
                self._handle(wd, mask, cookie, os.fsdecode(raw))
        self._changed.set()
        self._changed = asyncio.Event()
        if self._root_gone:
            self.close()

    def _handle(self, wd: int, mask: int, cookie: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self.dropped += 1
            return
        directory = self._dirs.get(wd)
        if mask & IN_IGNORED:
            self._dirs.pop(wd, None)
            self._root_gone |= directory == self.root
            return
        if directory is None or not name:
            return  # a directory's own deletion or move: its parent reports it by name
        path = os.path.join(directory, name)
        if UPLOAD_TEMP.match(name):  # an upload in progress: only its landing counts
            if mask & IN_MOVED_FROM:
                self._uploads.append(cookie)
            return
        if mask & IN_MOVED_TO and cookie in self._uploads:
            self._uploads.remove(cookie)
            self._push(path, "create")  # as envd reports a write: the file appears, is written
            self._push(path, "write")
            return
        if self.recursive and mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
            try:
                self._add(path, IN_ONLYDIR)
                self._add_below(path)
            except (OSError, AgentError):
                pass
        for bits, op in OPS:
            if mask & bits:
                self._push(path, op)

    def _push(self, path: str, op: str) -> None:
        if len(self.events) >= MAX_EVENTS:
            self.dropped += 1
            return
        event: dict[str, Any] = {"type": "fs", "name": os.path.relpath(path, self.root), "op": op}
        if self.include_entry and op != "remove":
            try:
                event["entry"] = entry(path, self.workdir)
            except OSError:
                pass  # gone again
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        self.touched = time.monotonic()
        out = list(self.events)
        self.events.clear()
        return out

    async def follow(self, keepalive: float) -> AsyncIterator[dict[str, Any]]:
        self.following += 1
        try:
            yield {"type": "start"}
            while not self.closed:
                for event in self.drain():
                    yield event
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), keepalive)
                except TimeoutError:
                    yield messages.keepalive()
            for event in self.drain():
                yield event
            why = f"the watched directory {self.root} is gone" if self._root_gone else "the watcher was removed"
            yield {"type": "end", "error": why}
        finally:
            self.following -= 1
            self.touched = time.monotonic()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.fd)
        os.close(self.fd)
        self._changed.set()


class Watchers:
    def __init__(self) -> None:
        self.all: dict[str, Watcher] = {}

    def create(self, body: dict[str, Any], workdir: str) -> Watcher:
        path = resolve(body.get("path"), workdir)
        recursive, include_entry = body.get("recursive", False), body.get("include_entry", False)
        if not isinstance(recursive, bool) or not isinstance(include_entry, bool):
            raise AgentError(400, "invalid_argument", "recursive and include_entry must be booleans")
        now = time.monotonic()
        for watcher in list(self.all.values()):
            if watcher.closed or (not watcher.following and now - watcher.touched > IDLE):
                self.remove(watcher.id)
        if len(self.all) >= MAX_WATCHERS:
            raise AgentError(409, "conflict", f"at most {MAX_WATCHERS} watchers per sandbox: remove one first")
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                raise AgentError(400, "invalid_argument", f"{path} is not a directory")
            watcher = Watcher(path, recursive, include_entry, workdir)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise AgentError(404, "not_found", f"{path} does not exist in the sandbox") from exc
            raise AgentError(400, "invalid_argument", f"cannot watch {path}: {exc.strerror}") from exc
        self.all[watcher.id] = watcher
        return watcher

    def get(self, watcher_id: str) -> Watcher:
        watcher = self.all.get(watcher_id)
        if watcher is None:
            raise AgentError(404, "not_found", f"watcher {watcher_id} does not exist")
        return watcher

    def remove(self, watcher_id: str) -> None:
        watcher = self.all.pop(watcher_id, None)
        if watcher is not None:
            watcher.close()


# -- HTTP ------------------------------------------------------------------------------------------


def _watchers(request: Request) -> Watchers:
    state = request.app.state
    if getattr(state, "watchers", None) is None:
        state.watchers = Watchers()
    return state.watchers


async def create_watcher(request: Request) -> Response:
    watcher = _watchers(request).create(await json_body(request), request.app.state.registry.config.workdir)
    return JSONResponse({"id": watcher.id, "path": watcher.root}, status_code=201)


async def watcher_events(request: Request) -> Response:
    watcher = _watchers(request).get(request.path_params["watcher_id"])
    return JSONResponse({"events": watcher.drain(), "dropped": watcher.dropped})


async def watcher_stream(request: Request) -> Response:
    watcher = _watchers(request).get(request.path_params["watcher_id"])
    return NDJSONFollow(watcher.follow(request.app.state.registry.config.keepalive_interval))


async def remove_watcher(request: Request) -> Response:
    watchers = _watchers(request)
    watchers.get(request.path_params["watcher_id"])
    watchers.remove(request.path_params["watcher_id"])
    return Response(status_code=204)


routes = [
    Route("/watchers", create_watcher, methods=["POST"]),
    Route("/watchers/{watcher_id}/events", watcher_events, methods=["GET"]),
    Route("/watchers/{watcher_id}/stream", watcher_stream, methods=["GET"]),
    Route("/watchers/{watcher_id}", remove_watcher, methods=["DELETE"]),
]
