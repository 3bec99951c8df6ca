"""Build the real `code-interpreter` template in the default data dir and check the rootfs.

Needs root, mmdebstrap, bwrap and network (Debian mirror, PyPI via the host's pip) on a cold
cache (~45 s); later runs hit the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from nullspace.templates import (
    MOUNT_POINTS,
    builtin_spec,
    check_mount_points,
    default_data_dir,
    ensure_template,
    find_template,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="building templates needs root"),
    pytest.mark.skipif(
        not (shutil.which("mmdebstrap") and shutil.which("bwrap")),
        reason="mmdebstrap and bubblewrap are needed (apt-get install mmdebstrap bubblewrap)",
    ),
]

IMPORTS = "import ipykernel, numpy, pandas, matplotlib, uvicorn, starlette, jupyter_client, PIL"


@pytest.fixture(scope="module")
def image():
    data_dir = default_data_dir()
    started = time.monotonic()
    built = ensure_template("code-interpreter", data_dir)
    print(f"ensure_template took {time.monotonic() - started:.1f} s -> {built.rootfs}")
    return built


def test_rootfs_imports_the_stack(image) -> None:  # noqa: ANN001
    proc = subprocess.run(
        ["chroot", str(image.rootfs), "/opt/venv/bin/python", "-c", IMPORTS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_template_json(image) -> None:  # noqa: ANN001
    meta = json.loads(image.metadata_path.read_text())
    assert meta["name"] == "code-interpreter"
    assert meta["digest"] == image.digest == builtin_spec("code-interpreter").digest
    assert meta["kernels"] == dict(builtin_spec("code-interpreter").kernels)
    assert meta["kernels"]["python"] == "python3"
    assert meta["user"] == "user" and meta["uid"] == 1000 and meta["workdir"] == "/home/user"
    assert meta["python"] == "/opt/venv/bin/python"
    assert meta["env"]["PATH"].startswith("/opt/venv/bin:")
    # where packages installed at run time go, and the read-only cache view they come from
    assert meta["packages"]["python_site"] == "/home/user/.local/lib/python3.11/site-packages"
    assert (image.rootfs / "opt/nullspace/cache").is_dir()
    site = image.rootfs / "opt/venv/lib/python3.11/site-packages"
    assert (site / "nullspace-packages.pth").read_text() == "import _nullspace_site\n"
    assert "no-index = true" in (image.rootfs / "opt/venv/pip.conf").read_text()
    python = json.loads((image.build_dir / "meta.json").read_text())["python"]
    assert python["tags"]["version"] == "3.11" and python["packages"]["numpy"]


def test_kernel_and_layout(image) -> None:  # noqa: ANN001
    root = image.rootfs
    kernel = json.loads((root / "opt/venv/share/jupyter/kernels/python3/kernel.json").read_text())
    assert kernel["argv"][:3] == ["/opt/venv/bin/python", "-m", "ipykernel_launcher"]
    config = (root / "opt/venv/etc/ipython/ipython_kernel_config.py").read_text()
    assert "c.InteractiveShell.colors" in config
    assert "user:x:1000:1000::/home/user:/bin/bash" in (root / "etc/passwd").read_text()
    assert (root / "etc/resolv.conf").read_text() == ""
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    for point in MOUNT_POINTS:
        assert (root / point.lstrip("/")).exists(), point
    check_mount_points(root, require_exist=True)
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))
    assert not (root / "root/.cache/pip").exists()
    # sandbox uids must be able to reach the rootfs
    for path in (root, root.parent, root.parent.parent, root.parent.parent.parent):
        assert path.stat().st_mode & 0o005 == 0o005, path


def test_second_ensure_is_a_cache_hit(image) -> None:  # noqa: ANN001
    started = time.monotonic()
    again = ensure_template("code-interpreter", image.rootfs.parents[3])
    assert time.monotonic() - started < 1.0
    assert again == image
    assert find_template("code-interpreter", image.rootfs.parents[3]) == image


def test_no_build_leftovers(image) -> None:  # noqa: ANN001
    templates = image.rootfs.parents[2]
    assert not list(templates.glob(".build-*"))
    assert Path(image.rootfs.parent / "build.log").is_file()


KERNEL_SCRIPT = """
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
try:
    seen = []
    kc.execute_interactive("1/0", output_hook=seen.append, timeout=60)
    errors = [m["content"] for m in seen if m["msg_type"] == "error"]
    tb = "\\n".join(line for e in errors for line in e["traceback"])
    print("ZeroDivisionError" in tb, "\\x1b[" in tb)
finally:
    km.shutdown_kernel(now=True)
"""


@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is needed")
def test_kernel_runs_read_only_as_uid_1000_without_colors(image) -> None:  # noqa: ANN001
    argv = [
        "setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups",
        "bwrap", "--ro-bind", str(image.rootfs), "/",
        "--tmpfs", "/home/user", "--tmpfs", "/tmp", "--tmpfs", "/run",
        "--proc", "/proc", "--dev", "/dev", "--unshare-all", "--die-with-parent",
        "--clearenv", "--setenv", "HOME", "/home/user",
        "--setenv", "PATH", "/opt/venv/bin:/usr/bin",
        "--chdir", "/home/user", "/opt/venv/bin/python", "-c", KERNEL_SCRIPT,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"], proc.stdout + proc.stderr
