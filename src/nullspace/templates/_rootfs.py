"""Host-side edits of a bootstrapped rootfs: the sandbox user, mount points, final cleanup.

All edits are plain file operations from the trusted side; no code from the rootfs runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nullspace.templates.mounts import MOUNT_FILES, MOUNT_POINTS

USER_UID = 1000
USER_GID = 1000
_DAYS_SINCE_EPOCH = 19000  # a fixed "last password change" keeps builds reproducible

_HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
"""


def inside(rootfs: Path, path: str) -> Path:
    """`rootfs` joined with an absolute in-sandbox path."""
    return rootfs / path.lstrip("/")


def add_user(rootfs: Path, name: str, home: str) -> None:
    """Create `name` (uid/gid 1000, shell /bin/bash) by editing passwd/group/shadow/gshadow."""
    if name == "root":
        return
    etc = inside(rootfs, "/etc")
    _add_entry(etc / "passwd", name, f"{name}:x:{USER_UID}:{USER_GID}::{home}:/bin/bash")
    _add_entry(etc / "group", name, f"{name}:x:{USER_GID}:")
    _add_entry(etc / "shadow", name, f"{name}:!:{_DAYS_SINCE_EPOCH}:0:99999:7:::", mode=0o640)
    _add_entry(etc / "gshadow", name, f"{name}:!::", mode=0o640)
    make_dir(rootfs, home, mode=0o755, owner=(USER_UID, USER_GID))


def _add_entry(path: Path, name: str, line: str, *, mode: int = 0o644) -> None:
    existing = path.read_text().splitlines() if path.exists() else []
    for entry in existing:
        fields = entry.split(":")
        if fields[0] == name:
            raise ValueError(f"{path.name} already has an entry for {name!r}")
        if len(fields) > 2 and path.name in ("passwd", "group") and fields[2] == str(USER_UID):
            raise ValueError(f"{path.name} already uses id {USER_UID} ({fields[0]!r})")
    if path.is_symlink():
        raise ValueError(f"{path} is a symlink")
    path.write_text("\n".join([*existing, line]) + "\n")
    if not existing:
        os.chmod(path, mode)


def make_dir(
    rootfs: Path, path: str, *, mode: int | None = None, owner: tuple[int, int] | None = None
) -> None:
    """Create an in-sandbox directory (parents 0755) without following symlinks.

    `mode` and `owner`, when given, are applied to the last component even if it existed.
    """
    current = rootfs
    for part in [p for p in path.split("/") if p]:
        current = current / part
        if current.is_symlink():
            raise ValueError(f"{path}: {current} is a symlink")
        if not current.exists():
            current.mkdir()
            os.chmod(current, 0o755)
    if mode is not None:
        os.chmod(current, mode)
    if owner is not None:
        os.chown(current, *owner)


def create_mount_points(rootfs: Path, *, user_home: str) -> None:
    """Empty destinations for everything the runtime mounts (see `MOUNT_POINTS`)."""
    for point in MOUNT_POINTS:
        if point in MOUNT_FILES:
            continue
        if point == "/tmp":
            make_dir(rootfs, point, mode=0o1777)
        elif point == "/home/user":
            owner = (USER_UID, USER_GID) if user_home == "/home/user" else None
            make_dir(rootfs, point, owner=owner)
        else:
            make_dir(rootfs, point)
    resolv = inside(rootfs, "/etc/resolv.conf")
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()  # also replaces a symlink, never writing through it
    resolv.write_text("")
    os.chmod(resolv, 0o644)
    hosts = inside(rootfs, "/etc/hosts")
    if not hosts.exists() and not hosts.is_symlink():
        hosts.write_text(_HOSTS)


def write_json(path: Path, data: Mapping[str, Any], *, mode: int = 0o644) -> None:
    """Write pretty JSON (parents created, mode set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.chmod(path, mode)


def clean(rootfs: Path) -> None:
    """Drop caches a sandbox never needs: apt archives and lists, pip caches, /tmp leftovers."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "root/.cache",
        "home/*/.cache",
        "tmp/*",
        "var/tmp/*",
    ):
        for path in rootfs.glob(pattern):
            if path.name in ("lock", "partial", "auxfiles"):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def disk_usage(path: Path) -> int:
    """Bytes allocated below `path` (like `du -s`, hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_blocks * 512
    return total
