"""templates/_kernels.py: every language's kernelspec, written from the host into a fake rootfs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _kernels
from nullspace.templates._process import BuildLog
from nullspace.templates.builder import STEPS

KERNELS = {
    "python": "python3",
    "r": "ir",
    "javascript": "deno",
    "typescript": "deno",
    "java": "java",
    "bash": "nullspace-bash",
}


def touch(root: Path, path: str, text: str = "") -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """What apt + pip leave behind for the six languages (just the files the setup checks)."""
    root = tmp_path / "rootfs"
    site = "/opt/venv/lib/python3.11/site-packages"
    touch(root, f"{site}/ipykernel-6.29.5.dist-info/METADATA")
    touch(root, f"{site}/ipython-8.30.0.dist-info/METADATA")
    touch(root, "/usr/bin/R")
    touch(root, "/usr/lib/R/site-library/IRkernel/DESCRIPTION")
    touch(root, "/opt/venv/bin/deno")
    touch(root, "/usr/bin/java")
    touch(root, "/opt/venv/share/jupyter/kernels/java/jjava.jar")
    touch(root, "/opt/venv/share/jupyter/kernels/java/kernel.json", '{"argv": ["java", "-jar", "launcher"]}')
    return root


def spec(root: Path, name: str) -> dict:
    return json.loads((root / f"opt/venv/share/jupyter/kernels/{name}/kernel.json").read_text())


def test_all_six_languages(rootfs: Path) -> None:
    log = BuildLog(STEPS, None)
    log.step = "kernels"
    _kernels.configure_kernels(rootfs, KERNELS, log)

    r = spec(rootfs, "ir")
    start = r["argv"][r["argv"].index("-f") + 1]
    assert r["argv"][0] == "/usr/bin/R" and r["argv"][-1] == "{connection_file}"
    assert "IRkernel:::Kernel$new" in (rootfs / start.lstrip("/")).read_text()

    deno = spec(rootfs, "deno")
    assert deno["argv"] == ["/opt/venv/bin/deno", "jupyter", "--kernel", "--conn", "{connection_file}"]
    assert deno["metadata"]["nullspace"] == {"transport": "tcp", "settle": 0.01}
    assert deno["interrupt_mode"] == "message"  # SIGINT would kill deno
    assert deno["env"]["DENO_DIR"].startswith("/tmp/")

    java = spec(rootfs, "java")  # the wheel's launcher (a second JVM) is bypassed
    assert java["argv"][0] == "/usr/bin/java" and "-jar" in java["argv"]
    assert java["argv"][java["argv"].index("-jar") + 1].endswith("/kernels/java/jjava.jar")
    assert "java.base/java.lang=ALL-UNNAMED" in java["argv"]  # per-run env snippet needs it
    assert java["metadata"]["nullspace"]["transport"] == "tcp"

    bash = spec(rootfs, "nullspace-bash")
    assert bash["argv"] == [
        "/opt/venv/bin/python", "-I", "/opt/nullspace/lib/nullspace_agent/bash_kernel.py",
        "-f", "{connection_file}",
    ]  # fmt: skip
    assert spec(rootfs, "python3")["argv"][0] == "/opt/venv/bin/python"


def test_missing_packages_are_named(rootfs: Path) -> None:
    (rootfs / "opt/venv/bin/deno").unlink()
    with pytest.raises(TemplateBuildError, match="pip 'deno'"):
        _kernels.configure_deno(rootfs, "deno")
    (rootfs / "usr/lib/R/site-library/IRkernel/DESCRIPTION").unlink()
    (rootfs / "usr/lib/R/site-library/IRkernel").rmdir()
    with pytest.raises(TemplateBuildError, match="r-cran-irkernel"):
        _kernels.configure_r(rootfs, "ir")
    (rootfs / "usr/bin/java").unlink()
    with pytest.raises(TemplateBuildError, match="openjdk"):
        _kernels.configure_java(rootfs, "java")
    with pytest.raises(TemplateBuildError, match="bash_kernel"):
        _kernels.configure_bash(rootfs, "bash")  # the stock kernel needs its pip package


def test_prestart_languages() -> None:
    assert _kernels.prestart_languages(KERNELS) == ["bash"]
    assert _kernels.prestart_languages({"python": "python3", "r": "ir"}) == []
