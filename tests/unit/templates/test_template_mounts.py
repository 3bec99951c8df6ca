"""`check_mount_points`: no symlink (or wrong file type) at or above any mount destination."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import MOUNT_FILES, MOUNT_POINTS, check_mount_points


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for point in MOUNT_POINTS:
        path = root / point.lstrip("/")
        if point in MOUNT_FILES:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        else:
            path.mkdir(parents=True, exist_ok=True)
    (root / "outside").mkdir()
    return root


def replace_with_symlink(root: Path, point: str, target: str) -> None:
    path = root / point.lstrip("/")
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(target, path)


def test_mount_points_cover_what_the_runtime_mounts() -> None:
    assert set(MOUNT_POINTS) >= {
        "/proc", "/dev", "/tmp", "/run", "/run/nullspace", "/opt/nullspace/lib",
        "/home/user", "/etc/resolv.conf",
    }  # fmt: skip
    assert all(p.startswith("/") for p in MOUNT_POINTS)
    assert MOUNT_FILES <= set(MOUNT_POINTS)


def test_clean_rootfs_passes(rootfs: Path) -> None:
    check_mount_points(rootfs, require_exist=True)
    check_mount_points(str(rootfs))


@pytest.mark.parametrize("point", MOUNT_POINTS)
def test_symlink_at_a_mount_point_is_rejected(rootfs: Path, point: str) -> None:
    replace_with_symlink(rootfs, point, "/outside")
    with pytest.raises(TemplateBuildError, match=f"{point} is a symlink"):
        check_mount_points(rootfs)


@pytest.mark.parametrize(
    ("parent", "point"),
    [("/opt", "/opt/nullspace/lib"), ("/opt/nullspace", "/opt/nullspace/lib"),
     ("/run", "/run/nullspace"), ("/home", "/home/user"), ("/etc", "/etc/resolv.conf")],
)  # fmt: skip
def test_symlink_at_a_parent_is_rejected(rootfs: Path, parent: str, point: str) -> None:
    # Even a relative link that stays inside the rootfs: bwrap would follow it on the host.
    target = rootfs / "outside" / "copy"
    shutil.copytree(rootfs / parent.lstrip("/"), target, symlinks=True)
    replace_with_symlink(rootfs, parent, os.path.relpath(target, (rootfs / parent.lstrip("/")).parent))
    with pytest.raises(TemplateBuildError, match=f"{parent} is a symlink"):
        check_mount_points(rootfs)


def test_dangling_symlink_is_rejected(rootfs: Path) -> None:
    replace_with_symlink(rootfs, "/tmp", "/nonexistent/../../etc")
    with pytest.raises(TemplateBuildError, match="/tmp is a symlink"):
        check_mount_points(rootfs)


def test_wrong_types_are_rejected(rootfs: Path) -> None:
    (rootfs / "etc/resolv.conf").unlink()
    (rootfs / "etc/resolv.conf").mkdir()
    with pytest.raises(TemplateBuildError, match="resolv.conf must be a regular file"):
        check_mount_points(rootfs)
    (rootfs / "etc/resolv.conf").rmdir()
    (rootfs / "etc/resolv.conf").write_text("")
    shutil.rmtree(rootfs / "tmp")
    (rootfs / "tmp").write_text("not a dir")
    with pytest.raises(TemplateBuildError, match="/tmp must be a directory"):
        check_mount_points(rootfs)


def test_fifo_at_resolv_conf_is_rejected(rootfs: Path) -> None:
    (rootfs / "etc/resolv.conf").unlink()
    os.mkfifo(rootfs / "etc/resolv.conf")
    with pytest.raises(TemplateBuildError, match="must be a regular file"):
        check_mount_points(rootfs)


def test_missing_points(rootfs: Path) -> None:
    shutil.rmtree(rootfs / "run")
    check_mount_points(rootfs)  # bwrap would create them in the writable upper layer
    with pytest.raises(TemplateBuildError, match="/run is missing"):
        check_mount_points(rootfs, require_exist=True)


def test_extra_points_are_checked(rootfs: Path) -> None:
    (rootfs / "srv").mkdir()
    os.symlink("/", rootfs / "srv" / "work")
    with pytest.raises(TemplateBuildError, match="/srv/work is a symlink"):
        check_mount_points(rootfs, extra=["/srv/work"])
    with pytest.raises(TemplateBuildError, match="not normalized"):
        check_mount_points(rootfs, extra=["/srv/../etc"])


def test_rootfs_itself_must_be_a_directory(tmp_path: Path, rootfs: Path) -> None:
    os.symlink(rootfs, tmp_path / "link")
    with pytest.raises(TemplateBuildError, match="not a directory"):
        check_mount_points(tmp_path / "link")
