"""Host-side rootfs edits: user, mount points, cleanup, size; and kernel configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import MOUNT_POINTS, _python, _rootfs, check_mount_points


@pytest.fixture
def chowned(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int]]:
    """chown calls, recorded instead of done (no root needed)."""
    calls: dict[str, tuple[int, int]] = {}
    monkeypatch.setattr(_rootfs.os, "chown", lambda p, u, g: calls.__setitem__(str(p), (u, g)))
    return calls


@pytest.fixture
def rootfs(tmp_path: Path, chowned: dict[str, tuple[int, int]]) -> Path:
    """A skeleton of a minbase rootfs."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\nusers:x:100:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    for name in ("proc", "dev", "tmp", "run", "root"):
        (root / name).mkdir()
    return root


def test_add_user(rootfs: Path, chowned: dict[str, tuple[int, int]]) -> None:
    _rootfs.add_user(rootfs, "user", "/home/user")
    assert "user:x:1000:1000::/home/user:/bin/bash" in (rootfs / "etc/passwd").read_text()
    assert "user:x:1000:" in (rootfs / "etc/group").read_text().splitlines()
    assert (rootfs / "etc/shadow").read_text().splitlines()[-1].startswith("user:!:")
    assert (rootfs / "etc/gshadow").read_text().splitlines()[-1] == "user:!::"
    assert (rootfs / "home/user").is_dir()
    assert chowned[str(rootfs / "home/user")] == (1000, 1000)
    with pytest.raises(ValueError, match="already has an entry"):
        _rootfs.add_user(rootfs, "user", "/home/user")


def test_add_user_refuses_a_taken_uid(rootfs: Path) -> None:
    with (rootfs / "etc/passwd").open("a") as f:
        f.write("someone:x:1000:1000::/home/someone:/bin/sh\n")
    with pytest.raises(ValueError, match="already uses id 1000"):
        _rootfs.add_user(rootfs, "user", "/home/user")


def test_root_user_is_a_no_op(rootfs: Path) -> None:
    before = (rootfs / "etc/passwd").read_text()
    _rootfs.add_user(rootfs, "root", "/root")
    assert (rootfs / "etc/passwd").read_text() == before


def test_create_mount_points_makes_a_checkable_rootfs(rootfs: Path) -> None:
    _rootfs.create_mount_points(rootfs, user_home="/home/user")
    check_mount_points(rootfs, require_exist=True)
    assert (rootfs / "etc/resolv.conf").read_text() == ""
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert "localhost" in (rootfs / "etc/hosts").read_text()
    for point in MOUNT_POINTS:
        assert (rootfs / point.lstrip("/")).exists()


def test_resolv_conf_symlink_is_replaced_not_followed(rootfs: Path, tmp_path: Path) -> None:
    victim = tmp_path / "host-file"
    victim.write_text("precious")
    (rootfs / "etc/resolv.conf").unlink()
    os.symlink(victim, rootfs / "etc/resolv.conf")
    _rootfs.create_mount_points(rootfs, user_home="/home/user")
    assert victim.read_text() == "precious"
    assert not (rootfs / "etc/resolv.conf").is_symlink()


def test_make_dir_refuses_symlinked_parents(rootfs: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path, rootfs / "opt")
    with pytest.raises(ValueError, match="is a symlink"):
        _rootfs.make_dir(rootfs, "/opt/nullspace/lib")


def test_clean_and_disk_usage(rootfs: Path) -> None:
    archives = rootfs / "var/cache/apt/archives"
    (archives / "partial").mkdir(parents=True)
    (archives / "x.deb").write_bytes(b"x" * 10000)
    (rootfs / "root/.cache/pip").mkdir(parents=True)
    (rootfs / "tmp/leftover").write_text("x")
    before = _rootfs.disk_usage(rootfs)
    _rootfs.clean(rootfs)
    assert not (archives / "x.deb").exists() and (archives / "partial").is_dir()
    assert not (rootfs / "root/.cache").exists() and not (rootfs / "tmp/leftover").exists()
    assert 0 < _rootfs.disk_usage(rootfs) < before


def make_venv(rootfs: Path, ipython: str | None = "9.1.0") -> Path:
    site = rootfs / "opt/venv/lib/python3.11/site-packages"
    (site / "ipykernel-6.29.5.dist-info").mkdir(parents=True)
    (site / "ipython_pygments_lexers-1.1.1.dist-info").mkdir()
    if ipython:
        (site / f"ipython-{ipython}.dist-info").mkdir()
    kernel = rootfs / "opt/venv/share/jupyter/kernels/python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": True},
            }
        )  # fmt: skip
    )
    return site


@pytest.mark.parametrize(("ipython", "spelling"), [("9.1.0", "'nocolor'"), ("8.26.0", "'NoColor'")])
def test_configure_python_kernel(rootfs: Path, ipython: str, spelling: str) -> None:
    make_venv(rootfs, ipython)
    _python.configure_python_kernel(rootfs, "python3")
    spec = json.loads((rootfs / "opt/venv/share/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["argv"] == [
        "/opt/venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"
    ]  # fmt: skip
    assert spec["metadata"] == {"debugger": True}  # the rest of ipykernel's spec is kept
    config = (rootfs / "opt/venv/etc/ipython/ipython_kernel_config.py").read_text()
    assert f"c.InteractiveShell.colors = {spelling}" in config
    assert _python.installed_version(rootfs, "IPython") == ipython


def test_python_kernel_with_another_kernelspec_name(rootfs: Path) -> None:
    make_venv(rootfs)
    _python.configure_python_kernel(rootfs, "py311")
    path = rootfs / "opt/venv/share/jupyter/kernels/py311/kernel.json"
    assert json.loads(path.read_text())["argv"][0] == "/opt/venv/bin/python"


def test_python_kernel_needs_ipykernel(rootfs: Path) -> None:
    (rootfs / "opt/venv/lib/python3.11/site-packages").mkdir(parents=True)
    with pytest.raises(TemplateBuildError, match="needs 'ipykernel'"):
        _python.configure_python_kernel(rootfs, "python3")


def test_other_languages_need_an_existing_kernelspec(rootfs: Path) -> None:
    with pytest.raises(TemplateBuildError, match="no kernelspec 'ir' for language 'r'"):
        _python.require_kernelspec(rootfs, "r", "ir")
    kernel = rootfs / "usr/share/jupyter/kernels/ir"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text("{}")
    _python.require_kernelspec(rootfs, "r", "ir")


def test_requirements_merge_and_names() -> None:
    assert _python.project_name("Jupyter_Client>=8") == "jupyter-client"
    assert _python.project_name("zope.interface") == "zope-interface"
    merged = _python.merge_requirements(["uvicorn==0.30.1", "numpy"], _python.AGENT_PIP)
    assert merged == ["uvicorn==0.30.1", "numpy", "jupyter_client", "starlette"]


def test_target_tags_pip_args() -> None:
    tags = _python.TargetTags("3.11", "cp", ("cp311", "abi3", "none"),
                              ("manylinux_2_36_x86_64", "linux_x86_64", "any"))  # fmt: skip
    args = tags.pip_args()
    assert args[:4] == ["--python-version", "3.11", "--implementation", "cp"]
    assert args.count("--abi") == 3 and "any" not in args
    assert "manylinux_2_36_x86_64" in args


@pytest.mark.parametrize(
    ("line", "name"),
    [("Saved ./numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl",
      "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl"),
     ("  File was already downloaded /var/lib/nullspace/cache/wheels/idna-3.20-py3-none-any.whl\n",
      "idna-3.20-py3-none-any.whl")],
)  # fmt: skip
def test_pip_download_output_is_parsed(line: str, name: str) -> None:
    match = _python._SAVED_RE.match(line)
    assert match and Path(match.group("path")).name == name
