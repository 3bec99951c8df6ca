"""Paths the runtime mounts over inside a template rootfs, and the check that keeps them safe.

Debian 12's bubblewrap 0.8.0 follows symlinks at mount destinations: a template whose `/tmp`
(or `/opt`, a parent) is a symlink to `/../../etc` would make the runtime mount over a host
path. So every destination, and every parent of it, must be a real directory (or, for files
such as `/etc/resolv.conf`, a regular file) inside the rootfs. ARCHITECTURE.md §7 item 8.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from nullspace._exceptions import TemplateBuildError

__all__ = ["MOUNT_FILES", "MOUNT_POINTS", "check_mount_points"]

MOUNT_POINTS: tuple[str, ...] = (
    "/proc",
    "/dev",
    "/tmp",
    "/run",
    "/run/nullspace",
    "/opt/nullspace/lib",
    "/opt/nullspace/cache",
    "/home/user",
    "/etc/resolv.conf",
)
"""Absolute paths inside a sandbox that the runtime mounts something over."""

MOUNT_FILES: frozenset[str] = frozenset({"/etc/resolv.conf"})
"""The members of `MOUNT_POINTS` that are files (bind-mounted files); the rest are directories."""


def check_mount_points(rootfs: str | Path, extra: Iterable[str] = (), *, require_exist: bool = False) -> None:
    """Refuse a rootfs where a mount destination or one of its parents is not a plain dir/file.

    Each path component is inspected with `lstat`, never followed.

    Args:
        rootfs: The template root filesystem on the host.
        extra: More absolute paths to check (e.g. the template's home and workdir).
        require_exist: Also refuse missing destinations (the builder creates them all).

    Raises:
        TemplateBuildError: Naming the offending path and what it is.
    """
    root = Path(rootfs)
    if root.is_symlink() or not root.is_dir():
        raise TemplateBuildError(f"template rootfs {root} is not a directory")
    for point in (*MOUNT_POINTS, *extra):
        _check_one(root, point, is_file=point in MOUNT_FILES, require_exist=require_exist)


def _check_one(root: Path, point: str, *, is_file: bool, require_exist: bool) -> None:
    if not point.startswith("/"):
        raise TemplateBuildError(f"mount point {point!r} is not an absolute path")
    parts = [p for p in point.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise TemplateBuildError(f"mount point {point!r} is not normalized")
    current = root
    for depth, part in enumerate(parts, 1):
        current = current / part
        shown = "/" + "/".join(parts[:depth])
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if require_exist:
                raise TemplateBuildError(
                    f"unsafe template rootfs {root}: mount point {shown} is missing"
                ) from None
            return  # the rest cannot exist either; nothing to follow
        if stat.S_ISLNK(mode):
            target = os.readlink(current)
            raise TemplateBuildError(
                f"unsafe template rootfs {root}: {shown} is a symlink (-> {target}); "
                f"the runtime mounts over {point}"
            )
        last = depth == len(parts)
        if last and is_file:
            if not stat.S_ISREG(mode):
                raise TemplateBuildError(f"unsafe template rootfs {root}: {shown} must be a regular file")
        elif not stat.S_ISDIR(mode):
            raise TemplateBuildError(f"unsafe template rootfs {root}: {shown} must be a directory")
