"""The template's Python: `/opt/venv`, wheels fetched on the host, kernels configured.

Package installs follow ARCHITECTURE.md §7 item 4: the trusted host only *downloads* wheels
(`--only-binary :all:`, so no package code runs on the host); the chroot installs them with
`--no-index` from read-only binds, without network and without capabilities. Nothing from an
installed package is executed during the build (the IPython version is read from metadata).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nullspace._exceptions import TemplateBuildError
from nullspace.templates._process import BuildLog, bwrap_argv, run
from nullspace.templates._rootfs import inside, write_json

VENV = "/opt/venv"
CACHE_VIEW = "/opt/nullspace/cache"
"""Where a sandbox sees its read-only package cache (`wheels/`, `npm/`); bound by the runtime."""
AGENT_APT: tuple[str, ...] = ("python3", "python3-venv")
"""Debian packages every template gets: the agent runs on the template's own Python."""
AGENT_PIP: tuple[str, ...] = ("jupyter_client", "uvicorn", "starlette")
"""The agent's pip dependencies, added unless the spec already names them."""

_KERNEL_DIRS = (f"{VENV}/share/jupyter/kernels", "/usr/local/share/jupyter/kernels",
                "/usr/share/jupyter/kernels")  # fmt: skip
_SAVED_RE = re.compile(r"^\s*(?:Saved|File was already downloaded)\s+(?P<path>\S.*?)\s*$")

_TAGS_SCRIPT = """
import json, sys
from pip._vendor.packaging import tags
found = list(tags.sys_tags())
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "implementation": tags.interpreter_name(),
    "abis": list(dict.fromkeys(t.abi for t in found)),
    "platforms": list(dict.fromkeys(t.platform for t in found)),
}))
"""


@dataclass(frozen=True)
class TargetTags:
    """What wheels the template's interpreter accepts (asked from the interpreter itself)."""

    version: str
    implementation: str
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    def pip_args(self) -> list[str]:
        """`pip download` options that select wheels for this interpreter."""
        args = ["--python-version", self.version, "--implementation", self.implementation]
        for abi in self.abis:
            args += ["--abi", abi]
        for platform in self.platforms:
            if platform != "any":
                args += ["--platform", platform]
        return args


def project_name(requirement: str) -> str:
    """The normalized project name of a validated requirement string (PEP 503)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0) if match else requirement).lower()


def merge_requirements(requested: Sequence[str], required: Sequence[str]) -> list[str]:
    """`requested` plus each `required` project the spec does not already name."""
    named = {project_name(r) for r in requested}
    return [*requested, *(r for r in required if project_name(r) not in named)]


def create_venv(rootfs: Path, log: BuildLog) -> None:
    """`/usr/bin/python3 -m venv /opt/venv` inside the rootfs."""
    if not inside(rootfs, "/usr/bin/python3").exists():
        raise TemplateBuildError("the rootfs has no /usr/bin/python3 (add python3 to apt)")
    run(bwrap_argv(rootfs, ["/usr/bin/python3", "-m", "venv", VENV]), log, label="python3 -m venv")


def target_tags(rootfs: Path) -> TargetTags:
    """Ask the venv's interpreter (stdlib + pip only, before any install) for its wheel tags."""
    argv = bwrap_argv(rootfs, [f"{VENV}/bin/python", "-I", "-c", _TAGS_SCRIPT])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise TemplateBuildError(f"cannot read the template's wheel tags: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    return TargetTags(
        version=data["version"],
        implementation=data["implementation"],
        abis=tuple(data["abis"]),
        platforms=tuple(data["platforms"]),
    )


def pip_download_argv(
    requirements: Sequence[str],
    dest: Path,
    tags: TargetTags,
    *,
    constraints: Path | None = None,
    offline: bool = False,
) -> list[str]:
    """`python -m pip download` (host side) of wheels only, for the target interpreter.

    `requirements` must already be validated (they follow a `--`, so none can be an option).
    `offline` resolves from `dest` alone (`--no-index --find-links dest`): no network at all.
    """
    argv = [
        sys.executable, "-m", "pip", "download",
        "--only-binary", ":all:", "--no-input", "--disable-pip-version-check",
        "--progress-bar", "off", *tags.pip_args(), "--dest", str(dest),
    ]  # fmt: skip
    if offline:
        argv += ["--no-index", "--find-links", str(dest)]
    if constraints is not None:
        argv += ["--constraint", str(constraints)]
    return [*argv, "--", *requirements]


def saved_wheel(line: str) -> str | None:
    """The file name in a `pip download` "Saved …" / "File was already downloaded …" line."""
    match = _SAVED_RE.match(line)
    return Path(match.group("path")).name if match else None


def check_host_pip() -> None:
    """Raise if the host Python cannot download wheels."""
    if importlib.util.find_spec("pip") is None:
        raise TemplateBuildError(
            f"the host Python ({sys.executable}) has no pip to download wheels with "
            "(install it, e.g. `python -m ensurepip`)"
        )


def download_wheels(
    requirements: Sequence[str],
    cache: Path,
    tags: TargetTags,
    log: BuildLog,
    *,
    constraints: Path | None = None,
) -> list[Path]:
    """Resolve `requirements` on the host and download wheels into the shared `cache`.

    Returns:
        The exact wheel files of this resolution (new or already cached).
    """
    check_host_pip()
    cache.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []

    def collect(line: str) -> None:
        name = saved_wheel(line)
        if name:
            saved.append(name)

    argv = pip_download_argv(requirements, cache, tags, constraints=constraints)
    with open(cache / ".lock", "a") as lock:  # one download into the cache at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(argv, log, cwd=cache, on_line=collect, label="pip download")
    wheels = [cache / name for name in dict.fromkeys(saved)]
    bad = [w.name for w in wheels if w.suffix != ".whl" or not w.is_file()]
    if bad or (requirements and not wheels):
        raise TemplateBuildError(f"pip download reported no usable wheels (unexpected: {bad})")
    return wheels


def install_wheels(rootfs: Path, requirements: Sequence[str], wheels: Sequence[Path], log: BuildLog) -> None:
    """`pip install --no-index` inside the rootfs, from read-only binds of exactly `wheels`."""
    binds = [(w, f"/tmp/wheels/{w.name}") for w in wheels]
    argv = [
        f"{VENV}/bin/python", "-m", "pip", "install",
        "--no-index", "--find-links", "/tmp/wheels", "--only-binary", ":all:",
        "--no-cache-dir", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
        "--no-warn-script-location", "--", *requirements,
    ]  # fmt: skip
    run(bwrap_argv(rootfs, argv, ro_binds=binds), log, label="pip install")


def site_packages(rootfs: Path) -> Path:
    """The venv's site-packages directory on the host."""
    found = sorted(inside(rootfs, f"{VENV}/lib").glob("python3*/site-packages"))
    if not found:
        raise TemplateBuildError(f"no site-packages under {VENV}/lib")
    return found[-1]


def installed_version(rootfs: Path, project: str) -> str | None:
    """Version of an installed distribution, read from its `.dist-info` directory name."""
    return installed_packages(rootfs).get(project_name(project))


def installed_packages(rootfs: Path) -> dict[str, str]:
    """Normalized project name → version of everything installed in the venv."""
    found = {}
    for info in site_packages(rootfs).glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if name and version:
            found[project_name(name)] = version
    return dict(sorted(found.items()))


def python_version(rootfs: Path) -> str:
    """`"3.11"`: the venv's Python version, from its site-packages path."""
    return site_packages(rootfs).parent.name.removeprefix("python")


def user_prefix(home: str) -> str:
    """Where packages installed into a running sandbox go (`pip install --prefix`)."""
    return f"{home.rstrip('/')}/.local"


def user_site(home: str, version: str) -> str:
    """The site-packages directory under `user_prefix(home)` for Python `version`."""
    return f"{user_prefix(home)}/lib/python{version}/site-packages"


_SITE_MODULE = """\
\"\"\"Written by the nullspace template builder; imported at start-up via nullspace-packages.pth.

Puts {site} on sys.path (after the venv's own packages) and creates it for the sandbox user,
so that packages installed into a running sandbox (sandbox.install_packages, `pip install`)
are importable, also in kernels that were already running.
\"\"\"

import os
import sys

SITE = {site!r}
HINT = (
    "\\nnullspace: this sandbox has no network access. pip here installs only packages that are "
    "already in the sandbox's package cache ({cache}/wheels). To add packages, call "
    "sandbox.install_packages([...]) from the SDK (POST /v1/sandboxes/{{id}}/packages); they "
    "become importable in the running kernels without a restart.\\n"
)

if SITE not in sys.path:
    sys.path.append(SITE)
if os.getuid() != 0:  # never while a template is being built
    try:
        os.makedirs(SITE, exist_ok=True)
    except OSError:
        pass


def pip_main() -> int:
    \"\"\"pip's own entry point, plus a hint where installs can come from when it fails.\"\"\"
    from pip._internal.cli.main import main

    code = main()
    if code and any(arg in ("install", "download", "wheel") for arg in sys.argv[1:]):
        sys.stderr.write(HINT)
    return code
"""

_PIP_MAIN = """\
# Rewritten by the nullspace template builder: pip's entry point plus a hint on failure.
import os
import sys

if sys.path[0] in ("", os.getcwd()):
    sys.path.pop(0)
if __package__ == "":
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

if __name__ == "__main__":
    from _nullspace_site import pip_main

    sys.exit(pip_main())
"""

_PIP_SCRIPT = """\
#!{venv}/bin/python
# Written by the nullspace template builder.
import sys

from _nullspace_site import pip_main

if __name__ == "__main__":
    sys.exit(pip_main())
"""


def configure_packages(rootfs: Path, home: str) -> dict[str, str]:
    """Make packages installed at run time importable and `pip install` fail helpfully.

    Writes `_nullspace_site.py` + `nullspace-packages.pth` into the venv (the user site dir
    goes on `sys.path` of every interpreter), `/opt/venv/pip.conf` (no index; find-links on
    the sandbox's cache view; `--prefix` in the user's home), and pip entry points that add
    a hint pointing at `sandbox.install_packages` when an install fails. Idempotent: files
    already holding the right content are left alone (no needless copy-up in a layer).

    Returns:
        `{"python_prefix", "python_site", "cache"}` for template.json.
    """
    site_dir = site_packages(rootfs)
    version = python_version(rootfs)
    site = user_site(home, version)
    _write_if_changed(site_dir / "_nullspace_site.py", _SITE_MODULE.format(site=site, cache=CACHE_VIEW))
    _write_if_changed(site_dir / "nullspace-packages.pth", "import _nullspace_site\n")
    pip_conf = (
        "# Written by the nullspace template builder: a sandbox has no network; installs come\n"
        "# from its read-only package cache (sandbox.install_packages fills it).\n"
        "[global]\n"
        "no-index = true\n"
        f"find-links = {CACHE_VIEW}/wheels\n"
        "disable-pip-version-check = true\n"
        "\n[install]\n"
        f"prefix = {user_prefix(home)}\n"
        "no-warn-script-location = true\n"
    )
    _write_if_changed(inside(rootfs, f"{VENV}/pip.conf"), pip_conf)
    if (site_dir / "pip" / "__main__.py").is_file():
        _write_if_changed(site_dir / "pip" / "__main__.py", _PIP_MAIN)
    bin_dir = inside(rootfs, f"{VENV}/bin")
    for script in ("pip", "pip3", f"pip{version}"):
        path = bin_dir / script
        if path.is_file() and not path.is_symlink():
            _write_if_changed(path, _PIP_SCRIPT.format(venv=VENV), mode=0o755)
    return {"python_prefix": user_prefix(home), "python_site": site, "cache": CACHE_VIEW}


def _write_if_changed(path: Path, text: str, *, mode: int = 0o644) -> None:
    if path.is_symlink():
        raise TemplateBuildError(f"refusing to write through the symlink {path}")
    if path.is_file() and path.read_text(errors="replace") == text:
        return
    path.write_text(text)
    os.chmod(path, mode)


def configure_python_kernel(rootfs: Path, kernelspec: str) -> None:
    """Absolute-path kernel.json argv and sys.prefix-level IPython config (no-color tracebacks)."""
    if installed_version(rootfs, "ipykernel") is None:
        raise TemplateBuildError("language 'python' needs 'ipykernel' in the pip list")
    kernels = inside(rootfs, f"{VENV}/share/jupyter/kernels")
    spec_file = kernels / kernelspec / "kernel.json"
    source = spec_file if spec_file.exists() else kernels / "python3" / "kernel.json"
    data = json.loads(source.read_text()) if source.exists() else {}
    data["argv"] = [f"{VENV}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    data["language"] = "python"
    data.setdefault("display_name", "Python 3 (ipykernel)")
    write_json(spec_file, data)

    ipython = installed_version(rootfs, "ipython") or "0"
    match = re.match(r"\d+", ipython)
    major = int(match.group(0)) if match else 0
    # IPython 9 renamed the color schemes to lower case ("nocolor"); 8 spells it "NoColor".
    colors = "nocolor" if major >= 9 else "NoColor"
    config = inside(rootfs, f"{VENV}/etc/ipython/ipython_kernel_config.py")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"# Written by the nullspace template builder for IPython {ipython}.\n"
        "c = get_config()  # noqa: F821\n"
        f"c.InteractiveShell.colors = {colors!r}\n"
        "# Keep history in memory: no history.sqlite appearing in the user's home.\n"
        "c.HistoryManager.hist_file = ':memory:'\n"
    )


def require_kernelspec(rootfs: Path, language: str, kernelspec: str) -> None:
    """For languages without a built-in installer yet: the kernelspec must already exist."""
    for directory in _KERNEL_DIRS:
        if (inside(rootfs, directory) / kernelspec / "kernel.json").is_file():
            return
    raise TemplateBuildError(
        f"no kernelspec {kernelspec!r} for language {language!r} in the rootfs "
        f"(looked in {', '.join(_KERNEL_DIRS)}); install it via apt/pip"
    )


KERNEL_SETUP: Mapping[str, Callable[[Path, str], None]] = {"python": configure_python_kernel}
"""Language → function that installs/configures its kernel. R, JS/TS, Java, Bash come later."""


def configure_kernels(rootfs: Path, kernels: Mapping[str, str], log: BuildLog) -> None:
    """Configure every kernel named in the spec."""
    for language, kernelspec in kernels.items():
        log.line(f"kernel {language}: {kernelspec}")
        setup = KERNEL_SETUP.get(language)
        if setup is not None:
            setup(rootfs, kernelspec)
        else:
            require_kernelspec(rootfs, language, kernelspec)
