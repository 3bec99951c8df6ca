"""The agent's wheel unpacker (fast path of /packages) on synthetic wheels."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest

from nullspace.agent import wheels

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def make_wheel(
    directory: Path, members: dict[str, str], name: str = "demo_nspkg-1.0-py3-none-any.whl"
) -> Path:
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


DEMO = {
    "demo_nspkg/__init__.py": "VALUE = 42\n",
    "demo_nspkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo-nspkg\nVersion: 1.0\n",
    "demo_nspkg-1.0.dist-info/RECORD": "demo_nspkg/__init__.py,,\n",
    "demo_nspkg-1.0.dist-info/entry_points.txt": "[console_scripts]\ndemo-hello = demo_nspkg.cli:main.run [extra]\n",
    "demo_nspkg-1.0.data/scripts/raw-script": "#!python\nprint('hi')\n",
    "demo_nspkg-1.0.data/data/share/demo/readme.txt": "data\n",
}


def test_unpack_lays_out_like_pip_prefix(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, DEMO)
    staging, site = tmp_path / "staging", tmp_path / "prefix/lib/python/site-packages"
    installed, log, old = wheels.install([str(wheel)], str(staging), VERSION, str(site))
    assert installed == [("demo_nspkg", "1.0")] and old == []
    assert "Successfully installed demo_nspkg-1.0" in log
    staged = staging / "lib" / f"python{VERSION}" / "site-packages"
    assert (staged / "demo_nspkg/__init__.py").read_text() == "VALUE = 42\n"
    assert (staging / "share/demo/readme.txt").read_text() == "data\n"
    raw = (staging / "bin/raw-script").read_text()
    assert raw.startswith(f"#!{sys.executable}\n") and os.access(staging / "bin/raw-script", os.X_OK)
    hello = (staging / "bin/demo-hello").read_text()
    assert "from demo_nspkg.cli import main" in hello and "sys.exit(main.run())" in hello
    record = (staged / "demo_nspkg-1.0.dist-info/RECORD").read_text().splitlines()
    assert "demo_nspkg/__init__.py,," in record and "../../../bin/demo-hello,," in record
    assert (staged / "demo_nspkg-1.0.dist-info/INSTALLER").read_text() == "nullspace\n"


@pytest.mark.parametrize("member", ["../evil.py", "/abs.py", "a/./b.py", "demo_nspkg-1.0.data/headers/x.h"])
def test_unusual_wheels_go_to_pip(tmp_path: Path, member: str) -> None:
    wheel = make_wheel(tmp_path, {**DEMO, member: "x"})
    assert wheels.install([str(wheel)], str(tmp_path / "s"), VERSION, str(tmp_path / "site")) is None
    assert not (tmp_path / "evil.py").exists()
    bad_name = make_wheel(tmp_path, DEMO, name="not-a-wheel.whl")
    assert wheels.install([str(bad_name)], str(tmp_path / "s2"), VERSION, str(tmp_path / "site")) is None


def test_already_installed_at_that_version_is_skipped(tmp_path: Path) -> None:
    import pytest as installed_here  # any distribution the test interpreter has

    version = installed_here.__version__
    wheel = make_wheel(tmp_path, {}, name=f"pytest-{version}-py3-none-any.whl")
    installed, log, old = wheels.install([str(wheel)], str(tmp_path / "s"), VERSION, str(tmp_path / "site"))
    assert installed == [] and old == [] and any("already satisfied" in line for line in log)
    newer = make_wheel(tmp_path, {}, name="pytest-999.0-py3-none-any.whl")
    with pytest.raises(wheels.Conflict, match="part of this sandbox's template"):
        wheels.install([str(newer)], str(tmp_path / "s3"), VERSION, str(tmp_path / "site"))


def test_uninstall_removes_what_record_lists_inside_the_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    site = prefix / "lib/python3.11/site-packages"
    (site / "old_pkg/sub").mkdir(parents=True)
    (site / "old_pkg/__init__.py").write_text("")
    (site / "old_pkg/sub/m.py").write_text("")
    (site / "shared_ns").mkdir()
    (site / "shared_ns/other.py").write_text("")  # another distribution's file
    (prefix / "bin").mkdir()
    (prefix / "bin/old-tool").write_text("")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    info = site / "old_pkg-0.1.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "old_pkg/__init__.py,sha256=x,0\nold_pkg/sub/m.py,,\n../../../bin/old-tool,,\n"
        "../../../../outside.txt,,\nold_pkg-0.1.dist-info/RECORD,,\n"
    )
    wheels.uninstall(str(info), str(site))
    assert not (site / "old_pkg").exists() and not info.exists() and not (prefix / "bin/old-tool").exists()
    assert outside.read_text() == "keep" and (site / "shared_ns/other.py").exists()
