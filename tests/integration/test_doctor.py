"""`nullspace doctor` on this host (it passes) and with a prerequisite hidden (it says so and how to fix it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _skip_reason, new_data_dir

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))
DATA_DIR: Path | None = None


@pytest.fixture(scope="module", autouse=True)
def data_dir() -> Iterator[Path]:
    """The checks probe mounts under the data dir: a test's own, with the shared builds."""
    global DATA_DIR
    DATA_DIR = new_data_dir()
    try:
        yield DATA_DIR
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "nullspace", "doctor", "--no-server", "--data-dir", str(DATA_DIR), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_doctor_passes_on_this_host() -> None:
    done = doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("root", "cgroups", "user namespaces", "bubblewrap", "seccomp", "overlayfs", "disk",
                 "memory", "subreaper", "templates"):
        assert name in done.stdout
    assert "this host can run sandboxes" in done.stdout
    assert "✗" not in done.stdout
    assert "built: code-interpreter" in done.stdout
    assert not list(DATA_DIR.glob(".doctor-*"))  # the probe mount was undone


def test_doctor_reports_a_missing_cgroup_filesystem_and_its_fix(tmp_path: Path) -> None:
    done = doctor("--cgroup-fs", str(tmp_path))
    assert done.returncode == 1
    assert f"no cgroup filesystem at {tmp_path}" in done.stdout
    assert f"fix: mount -t cgroup2 none {tmp_path}" in done.stdout
    assert "block sandboxes: cgroups" in done.stdout


def test_doctor_reports_a_v2_tree_without_memory(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    done = doctor("--cgroup-fs", str(tmp_path))
    assert done.returncode == 1
    assert "does not offer memory, pids" in done.stdout


def test_doctor_reports_disabled_user_namespaces(tmp_path: Path) -> None:
    fake_proc = tmp_path / "proc"
    (fake_proc / "sys" / "user").mkdir(parents=True)
    (fake_proc / "sys" / "user" / "max_user_namespaces").write_text("0\n")
    for name in ("filesystems", "meminfo"):
        (fake_proc / name).write_text(Path("/proc", name).read_text())
    (fake_proc / "self").mkdir()
    (fake_proc / "self" / "status").write_text(Path("/proc/self/status").read_text())
    done = doctor("--proc", str(fake_proc))
    assert done.returncode == 1
    assert "user.max_user_namespaces = 0" in done.stdout
    assert "sysctl -w user.max_user_namespaces=15000" in done.stdout
