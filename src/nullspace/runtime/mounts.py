"""The per-sandbox root filesystem: a size-limited tmpfs holding an overlay's upper layer.

Layout under ``<data dir>/sandboxes/<id>/`` (all root-owned; see `prepare`):

    fs/        tmpfs, size=disk limit, nr_inodes bounded   (the only writable storage)
    fs/upper   overlay upper dir
    fs/work    overlay work dir
    root/      overlay(lower=template layers, upper, work) → bound as / by bwrap
    layers     the lower dirs, one a line (the mount names them /proc/self/fd/N only)

Mounts go through mount(2)/umount2(2) directly (0.1 ms) rather than the mount(8) binary,
which would also be a child process the reaper must not steal.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: Path, fstype: str, flags: int, options: str) -> None:
    if _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target} ({options}): {os.strerror(err)}")


def umount(target: Path) -> None:
    """Lazily detach a mount; a path that is not mounted is fine."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


@dataclass(frozen=True)
class SandboxFilesystem:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def storage(self) -> Path:
        return self.base / "fs"


def prepare(
    base: Path,
    lower: Path | Sequence[Path],
    *,
    uid: int,
    gid: int,
    disk_bytes: int,
    home: str,
    max_inodes: int = 65536,
) -> SandboxFilesystem:
    """Mount tmpfs + overlay for one sandbox; `home` is made writable for the sandbox user.

    `lower` is the template's rootfs, or its layers top first (`lowerdir=top:...:base`).
    """
    lowers = [lower] if isinstance(lower, Path) else list(lower)
    sfs = SandboxFilesystem(base)
    base.mkdir(mode=0o710, parents=True, exist_ok=False)
    os.chown(base, 0, gid)  # the sandbox uid may traverse to root/, nobody else
    sfs.storage.mkdir(mode=0o700)
    sfs.root.mkdir(mode=0o755)
    try:
        mount(
            "nullspace", sfs.storage, "tmpfs", MS_NOSUID | MS_NODEV,
            f"size={disk_bytes},nr_inodes={max_inodes},mode=0700",
        )
        upper, work = sfs.storage / "upper", sfs.storage / "work"
        upper.mkdir(mode=0o755)
        work.mkdir(mode=0o700)
        home_dir = upper / home.lstrip("/")
        home_dir.mkdir(mode=0o750, parents=True)
        os.chown(home_dir, uid, gid)
        # what the mount holds, for `template prune` (its options only say /proc/self/fd/N)
        (base / "layers").write_text("".join(f"{Path(p).resolve()}\n" for p in lowers))
        _mount_overlay(sfs.root, lowers, upper, work)
    except BaseException:
        teardown(base)
        raise
    return sfs


def _mount_overlay(target: Path, lowers: Sequence[Path], upper: Path, work: Path) -> None:
    """Mount the overlay naming its layers by ``/proc/self/fd/N``: the kernel keeps the option
    strings as given and shows them in the sandbox's /proc/self/mountinfo, which then names no
    host path or sandbox id (the paths resolve at mount time; the fds are closed after)."""
    fds: list[int] = []
    try:
        for path in (*lowers, upper, work):
            fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        *lower_fds, upper_fd, work_fd = (f"/proc/self/fd/{fd}" for fd in fds)
        mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV,
              f"lowerdir={':'.join(lower_fds)},upperdir={upper_fd},workdir={work_fd}")
    finally:
        for fd in fds:
            os.close(fd)


def resize(base: Path, disk_bytes: int) -> None:
    """Change the size limit of a sandbox's writable layer (a pooled sandbox being claimed)."""
    mount("nullspace", SandboxFilesystem(base).storage, "tmpfs",
          MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={disk_bytes}")


def teardown(base: Path) -> None:
    """Unmount everything under `base` and delete it; safe to call twice."""
    for point in mounts_under(base):
        umount(point)
    shutil.rmtree(base, ignore_errors=True)
