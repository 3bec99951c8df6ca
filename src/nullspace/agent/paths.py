"""Sandbox paths: resolve a path the way the kernel would, refusing what leaves the sandbox, and
open what was resolved without following anything that changed since.

The agent runs inside the sandbox, so ``/`` is the sandbox's root and a host path means nothing
here. Code in the sandbox can flip symlinks while a request is served; `resolve` gives a
symlink-free path and `open_resolved` walks it one directory fd at a time with ``O_NOFOLLOW``: a
component that became a symlink (say, to /proc) since `resolve` is refused with ``409 conflict``
instead of being followed (the kernel's ``openat2(RESOLVE_NO_SYMLINKS)``, walked by hand because
the template's Python has no binding for it and each step costs a few µs).
"""

from __future__ import annotations

import collections
import errno
import os
import stat
from typing import Any

from .contexts import AgentError

MAX_PATH = 4096
MAX_LINKS = 40
REFUSED_ROOTS = ("/proc", "/sys")


def changed(path: str) -> AgentError:
    return AgentError(409, "conflict", f"{path} changed while it was being opened (a symlink or directory "
                                       "was replaced meanwhile); try again")


def lexical(path: Any, workdir: str) -> str:
    """An absolute, normalized path; relative paths start at `workdir`. Refuses ``..`` above /."""
    if not isinstance(path, str) or not path:
        raise AgentError(400, "invalid_argument", "path must be a non-empty string")
    if "\0" in path or len(path) > MAX_PATH:
        raise AgentError(400, "invalid_argument", "path has a NUL byte or is too long")
    parts: list[str] = [] if path.startswith("/") else [p for p in workdir.split("/") if p]
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise AgentError(400, "invalid_argument", f"path {path!r} leaves the sandbox: '..' goes above /")
            parts.pop()
        else:
            parts.append(comp)
    return "/" + "/".join(parts)


def resolve(path: Any, workdir: str, *, follow_last: bool = True) -> str:
    """Resolve symlinks like the kernel would, but refuse any that leads above / or into /proc
    or /sys. Missing components are kept as they are (a write may create them)."""
    start = lexical(path, workdir)
    todo = collections.deque(p for p in start.split("/") if p)
    done: list[str] = []
    links = 0
    last_link = ""
    while todo:
        comp = todo.popleft()
        if comp in ("", "."):
            continue
        if comp == "..":
            if not done:
                raise AgentError(
                    400, "invalid_argument", f"path {path!r} leaves the sandbox: the symlink {last_link} points above /"
                )
            done.pop()
            continue
        candidate = "/" + "/".join([*done, comp])
        if not todo and not follow_last:
            done.append(comp)
            break
        try:
            st = os.lstat(candidate)
        except OSError:
            done.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise AgentError(400, "invalid_argument", f"too many levels of symlinks in {path!r}")
            try:
                target = os.readlink(candidate)
            except OSError:  # no longer a symlink: replaced between lstat and readlink
                raise changed(start) from None
            last_link = f"{candidate} -> {target}"
            if target.startswith("/"):
                done = []
            todo.extendleft(reversed(target.split("/")))
            continue
        done.append(comp)
    real = "/" + "/".join(done)
    for root in REFUSED_ROOTS:
        if real == root or real.startswith(root + "/"):
            raise AgentError(400, "invalid_argument", f"path {path!r} resolves to {real}: kernel interfaces are not files")
    return real


def open_dir(real: str) -> int:
    """An ``O_PATH`` fd of the directory `real` (from `resolve`), reached without following any
    symlink. Raises OSError as open(2) would, or 409 when a component became a symlink."""
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for comp in (p for p in real.split("/") if p):
            step = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = step
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                raise changed(real)
            if not stat.S_ISDIR(mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), real)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_resolved(real: str, flags: int, mode: int = 0o600) -> int:
    """open(2) the path `real` (from `resolve`) with `flags`, following no symlink on the way or
    at the end: one that appeared since `resolve` is a 409, never followed."""
    parent, name = os.path.split(real)
    if not name:
        return os.open("/", flags | os.O_CLOEXEC)
    dir_fd = open_dir(parent)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise changed(real) from None
        raise
    finally:
        os.close(dir_fd)
