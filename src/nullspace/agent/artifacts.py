"""Artifacts: the files a run created or changed under its context's working directory.

Before a run the agent records ``path → (mtime_ns, size, inode)`` for the regular files of the
context's cwd tree; after it, it walks again and reports new or changed files as one
``{"type": "artifacts", "artifacts": [...]}`` event, before ``end_of_execution`` (docs/api.md).

Walks are bounded (`MAX_ENTRIES` directory entries, `MAX_DEPTH` levels) and skip hidden
directories (``.cache``, ``.config``, ``.ipython``, ``.local``, ...), ``__pycache__``,
``node_modules`` and pseudo file systems. When the walk before a run was cut short, a file it did
not see counts as new only if its mtime is after the run started. At most `MAX_ARTIFACTS` files
are listed (then ``truncated: true``) and at most `MAX_HASH_BYTES` are hashed per run (beyond
that ``sha256`` is null). Symlinks are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 20_000
MAX_DEPTH = 12
MAX_ARTIFACTS = 1_000
MAX_HASH_BYTES = 256 * 1024 * 1024
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "lost+found"})
SKIP_PATHS = frozenset({"/proc", "/sys", "/dev", "/run"})

Signature = tuple[int, int, int]  # (mtime_ns, size, inode)

# MIME types mimetypes may not know on a minimal system.
_EXTRA_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
    ".parquet": "application/vnd.apache.parquet",
    ".ipynb": "application/x-ipynb+json",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


@dataclass
class Tree:
    """The regular files under `root` (absolute paths) and whether the walk saw all of them."""

    root: str
    files: dict[str, Signature] = field(default_factory=dict)
    complete: bool = True
    started_ns: int = 0


def walk(root: str, max_entries: int = MAX_ENTRIES, max_depth: int = MAX_DEPTH) -> Tree:
    """Record every regular file under `root`, within the bounds."""
    tree = Tree(root=os.path.abspath(root), started_ns=time.time_ns())
    budget = max_entries
    stack: list[tuple[str, int]] = [(tree.root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    budget -= 1
                    if budget < 0:
                        tree.complete = False
                        return tree
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        tree.files[entry.path] = (st.st_mtime_ns, st.st_size, st.st_ino)
                    elif stat.S_ISDIR(st.st_mode) and _walkable(entry.name, entry.path):
                        if depth + 1 < max_depth:
                            stack.append((entry.path, depth + 1))
                        else:
                            tree.complete = False
        except OSError:
            continue
    return tree


def _walkable(name: str, path: str) -> bool:
    return not name.startswith(".") and name not in SKIP_DIRS and path not in SKIP_PATHS


def changed(before: Tree, after: Tree) -> list[tuple[str, str]]:
    """``(path, "created" | "modified")`` for the files that are new or different in `after`."""
    out = []
    for path, sig in after.files.items():
        old = before.files.get(path)
        if old is None:
            if before.complete or sig[0] >= before.started_ns:
                out.append((path, "created"))
        elif old != sig:
            out.append((path, "modified"))
    out.sort()
    return out


def mime_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return mimetypes.guess_type(path)[0] or _EXTRA_TYPES.get(ext) or "application/octet-stream"


def describe(path: str, change: str, hash_budget: list[int]) -> dict[str, Any] | None:
    """One artifact entry; `hash_budget` is a one-item list of bytes still allowed to hash."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None  # gone again, or not readable
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest: str | None = None
        if st.st_size <= hash_budget[0]:
            h = hashlib.sha256()
            with os.fdopen(os.dup(fd), "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            hash_budget[0] -= st.st_size
            digest = h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)
    return {
        "path": path,
        "name": os.path.basename(path),
        "size": st.st_size,
        "mime_type": mime_type(path),
        "sha256": digest,
        "change": change,
        "modified_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime)) + "Z",
    }


def report(
    before: Tree, max_artifacts: int = MAX_ARTIFACTS, max_hash_bytes: int = MAX_HASH_BYTES
) -> dict[str, Any] | None:
    """Walk again and build the ``artifacts`` event, or None when nothing changed."""
    after = walk(before.root)
    found = changed(before, after)
    if not found:
        return None
    budget = [max_hash_bytes]
    items = []
    for path, change in found[:max_artifacts]:
        item = describe(path, change, budget)
        if item is not None:
            items.append(item)
    event: dict[str, Any] = {"type": "artifacts", "root": before.root, "artifacts": items}
    if len(found) > max_artifacts:
        event["truncated"] = True
        event["total"] = len(found)
    return event if items else None


async def before_run(root: str) -> Tree | None:
    """The snapshot taken before a run (None if the cwd cannot be read)."""
    try:
        return await asyncio.to_thread(walk, root)
    except Exception:
        return None


async def after_run(before: Tree | None) -> dict[str, Any] | None:
    """The ``artifacts`` event of a run, or None."""
    if before is None:
        return None
    try:
        return await asyncio.to_thread(report, before)
    except Exception:
        return None
