"""Install an already-resolved set of wheels without starting pip (the fast path of /packages).

The server resolved the request on the host (`pip download`) and hands over the exact wheel
files. Installing a wheel is unpacking it (PEP 427): the archive's files go to site-packages,
``<name>-<version>.data/{purelib,platlib,scripts,data}`` to their scheme directories, console
scripts are generated from ``entry_points.txt``, and ``RECORD``/``INSTALLER`` describe the
result so that pip can list and uninstall it later. Starting pip costs 0.3–1 s of CPU in a
1-core sandbox; this costs milliseconds.

A different version of a package installed earlier into the user site is replaced (its
RECORD says what to delete); one that belongs to the template (the venv) cannot be, and raises
`Conflict`. Anything unusual (headers, an unsafe member name, a malformed archive) returns None
and the caller falls back to ``pip install``.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Sequence

_WHEEL_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$"
)
_SCRIPT = """#!{python}
# Written by nullspace for {name}'s console script
import sys
from {module} import {head}

if __name__ == "__main__":
    sys.exit({call}())
"""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Conflict(Exception):
    """A wanted version differs from one the template itself ships (not replaceable at run time)."""


def installed_distributions() -> dict[str, tuple[str, str]]:
    """Normalized name → (version, .dist-info directory) of what this interpreter can import
    (the first one on sys.path wins, as for imports)."""
    found: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        location = getattr(dist, "_path", None)
        if name and location is not None and normalize(name) not in found:
            found[normalize(name)] = (dist.version, str(location))
    return found


def replaced(names_versions: Sequence[tuple[str, str]], site: str) -> list[str]:
    """The .dist-info dirs in the user `site` that installing `names_versions` replaces.

    Raises:
        Conflict: a project of the template (outside `site`) would need another version.
    """
    have = installed_distributions()
    old = []
    for name, version in names_versions:
        current = have.get(normalize(name))
        if current is None or normalize(current[0]) == normalize(version):
            continue
        if os.path.dirname(current[1]) != os.path.normpath(site):
            raise Conflict(
                f"{name} {current[0]} is part of this sandbox's template; {name} {version} cannot "
                "replace it in a running sandbox (build a template with the version you need)"
            )
        old.append(current[1])
    return old


def uninstall(dist_info: str, site: str) -> None:
    """Delete what a distribution's RECORD lists (inside `site`'s prefix only), and its .dist-info."""
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(os.path.normpath(site))))
    dirs = set()
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        relative = line.rsplit(",", 2)[0]
        path = os.path.normpath(os.path.join(site, relative))
        if not path.startswith(prefix + os.sep) or not os.path.lexists(path) or os.path.isdir(path):
            continue
        os.unlink(path)
        dirs.add(os.path.dirname(path))
    for directory in sorted(dirs, key=len, reverse=True):
        while directory.startswith(site + os.sep) and directory != site:
            try:
                os.rmdir(directory)  # only when empty
            except OSError:
                break
            directory = os.path.dirname(directory)
    if os.path.isdir(dist_info):
        shutil.rmtree(dist_info)


def install(
    wheel_files: Sequence[str], staging: str, python_version: str, site: str
) -> tuple[list[tuple[str, str]], list[str], list[str]] | None:
    """Unpack `wheel_files` (paths) into `staging` laid out like `pip install --prefix staging`.

    Returns:
        `(installed, log lines, .dist-info dirs to uninstall first)`, or None when pip should
        do it instead. Wheels whose project is installed at the same version are skipped.

    Raises:
        Conflict: see `replaced`.
    """
    have = installed_distributions()
    todo = []
    log = []
    for path in wheel_files:
        match = _WHEEL_NAME.match(os.path.basename(path))
        if not match:
            return None
        name, version = match.group("name"), match.group("version")
        current = have.get(normalize(name))
        if current is not None and normalize(current[0]) == normalize(version):
            log.append(f"Requirement already satisfied: {name}=={version}")
            continue
        todo.append((path, name, version))
    old = replaced([(name, version) for _, name, version in todo], site)
    site = os.path.join(staging, "lib", f"python{python_version}", "site-packages")
    scripts = os.path.join(staging, "bin")
    os.makedirs(site, exist_ok=True)
    installed = []
    try:
        for path, name, version in todo:
            if not _unpack(path, site, scripts, staging):
                return None
            installed.append((name, version))
            log.append(f"Unpacked {os.path.basename(path)}")
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError, configparser.Error):
        return None
    if installed:
        log.append("Successfully installed " + " ".join(f"{n}-{v}" for n, v in installed))
    return installed, log, old


def _unpack(path: str, site: str, scripts: str, prefix: str) -> bool:
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        info_dirs = {
            m.filename.split("/", 1)[0] for m in members if m.filename.split("/", 1)[0].endswith(".dist-info")
        }
        if len(info_dirs) != 1:
            return False
        dist_info = info_dirs.pop()
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        written = []
        for member in members:
            name = member.filename
            parts = name.split("/")
            if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
                return False
            if parts[0] == data_dir:
                if len(parts) < 3:
                    return False
                scheme, rest = parts[1], parts[2:]
                if scheme in ("purelib", "platlib"):
                    target = os.path.join(site, *rest)
                elif scheme == "scripts":
                    target = os.path.join(scripts, *rest)
                elif scheme == "data":
                    target = os.path.join(prefix, *rest)
                else:
                    return False  # headers: rare; pip places them
            else:
                target = os.path.join(site, *parts)
            if parts[0] == dist_info and parts[-1] in ("RECORD", "INSTALLER"):
                continue  # rewritten below
            os.makedirs(os.path.dirname(target), exist_ok=True)
            body = archive.read(member)
            if parts[0] == data_dir and parts[1] == "scripts" and body.startswith(b"#!python"):
                body = b"#!" + sys.executable.encode() + body[len(b"#!python") :]
            with open(target, "wb") as handle:
                handle.write(body)
            mode = (member.external_attr >> 16) & 0o777
            executable = parts[0] == data_dir and parts[1] == "scripts"
            os.chmod(target, 0o755 if executable or mode & 0o100 else 0o644)
            written.append(target)
        written += _console_scripts(os.path.join(site, dist_info, "entry_points.txt"), scripts, dist_info)
        info = os.path.join(site, dist_info)
        with open(os.path.join(info, "INSTALLER"), "w") as handle:
            handle.write("nullspace\n")
        written.append(os.path.join(info, "INSTALLER"))
        with open(os.path.join(info, "RECORD"), "w") as handle:
            for target in [*written, os.path.join(info, "RECORD")]:
                handle.write(f"{os.path.relpath(target, site)},,\n")
    return True


def _console_scripts(entry_points: str, scripts: str, dist_info: str) -> list[str]:
    if not os.path.exists(entry_points):
        return []
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    with open(entry_points, encoding="utf-8") as handle:
        parser.read_file(handle)
    if not parser.has_section("console_scripts"):
        return []
    written = []
    for script, target in parser.items("console_scripts"):
        target = target.split("[", 1)[0].strip()
        module, _, attr = target.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", script) or not module or not attr:
            raise ValueError(f"unusable console script {script!r} in {dist_info}")
        os.makedirs(scripts, exist_ok=True)
        path = os.path.join(scripts, script)
        head = attr.split(".", 1)[0]
        with open(path, "w") as handle:
            handle.write(
                _SCRIPT.format(python=sys.executable, name=dist_info, module=module, head=head, call=attr)
            )
        os.chmod(path, 0o755)
        written.append(path)
    return written
