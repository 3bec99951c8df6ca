"""The steps of a layered build, each run on a mounted overlay (`root`) whose upper dir becomes
the step's layer: apt, pip, npm, files, run.

Everything that writes into `root` runs inside it under bubblewrap (as root, no network unless
said otherwise, few capabilities), so a symlink in the parent template can never redirect a
write to the host. The host only downloads: wheels with `pip download --only-binary :all:`,
npm packages with `npm install --ignore-scripts` into a staging directory (ARCHITECTURE §7.4).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _python
from nullspace.templates._process import FILE_CAPS, BuildLog, bwrap_argv, run
from nullspace.templates.spec import FileSpec

NPM_PROJECT = "/opt/nullspace/npm"
"""Where a template's npm packages live (package.json, package-lock.json, node_modules); the
user's home gets `node_modules` and `package.json` symlinks to it (Node and Deno resolve bare
specifiers by walking up from the working directory)."""

APT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE",
)  # fmt: skip
"""Docker's default set without CAP_MKNOD and CAP_NET_RAW: enough for dpkg and its scripts."""

_APT_SCRIPT = """set -e
export DEBIAN_FRONTEND=noninteractive
apt-get -o Acquire::Retries=3 update
apt-get -o Acquire::Retries=3 install -y --no-install-recommends -- "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
"""


def apt_install(root: Path, packages: Sequence[str], log: BuildLog) -> None:
    """`apt-get install` inside the new root, with the host's network (Debian's mirror)."""
    argv = ["/bin/sh", "-c", _APT_SCRIPT, "apt", *packages]
    run(bwrap_argv(root, argv, caps=APT_CAPS, network=True), log, label="apt-get install")


def pip_install(root: Path, requirements: Sequence[str], cache: Path, scratch: Path, log: BuildLog) -> None:
    """Download wheels on the host (pinned to what `root` already has), install them inside."""
    tags = _python.target_tags(root)
    log.line(f"target: {tags.implementation}{tags.version}, {tags.platforms[0]}")
    constraints = write_constraints(_python.installed_packages(root), requirements, scratch)
    wheels = _python.download_wheels(requirements, cache, tags, log, constraints=constraints)
    _python.install_wheels(root, requirements, wheels, log)


def write_constraints(installed: Mapping[str, str], requested: Sequence[str], directory: Path) -> Path:
    """A pip constraints file pinning every installed project the request does not name, so
    that adding packages never silently changes the versions the template already has."""
    named = {_python.project_name(r) for r in requested}
    lines = [f"{name}=={version}" for name, version in sorted(installed.items()) if name not in named]
    path = directory / "constraints.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def npm_command(project: Path, packages: Sequence[str], cache: Path) -> list[str]:
    """`npm install` on the host into `project`: no scripts, no audit; `packages` validated."""
    npm = shutil.which("npm")
    if npm is None:
        raise TemplateBuildError("npm packages need `npm` on the host (apt-get install npm)")
    return [
        npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
        "--no-progress", "--cache", str(cache), "--prefix", str(project), "--", *packages,
    ]  # fmt: skip


def npm_env() -> dict[str, str]:
    """The host environment for npm (its own config: registry, proxy CA …) minus prompts."""
    env = dict(os.environ)
    env.update({"npm_config_update_notifier": "false", "npm_config_yes": "false", "CI": "1"})
    return env


def npm_install(
    root: Path, packages: Sequence[str], home: str, cache: Path, scratch: Path, log: BuildLog
) -> None:
    """Resolve and fetch on the host (`--ignore-scripts`), then copy the project into the root."""
    project = scratch / "npm"
    project.mkdir()
    run(npm_command(project, packages, cache), log, cwd=project, env=npm_env(), label="npm install")
    script = f"""set -e
umask 022
rm -rf -- {NPM_PROJECT}
mkdir -p -- {NPM_PROJECT}
cp -R -- /tmp/nullspace-npm/. {NPM_PROJECT}/
ln -sfn -- {NPM_PROJECT}/node_modules {shlex.quote(home)}/node_modules
ln -sfn -- {NPM_PROJECT}/package.json {shlex.quote(home)}/package.json
"""
    argv = ["/bin/sh", "-c", script]
    run(
        bwrap_argv(root, argv, ro_binds=[(project, "/tmp/nullspace-npm")], caps=FILE_CAPS),
        log,
        label="copy npm packages",
    )
    log.line(f"npm packages in {NPM_PROJECT}; {home}/node_modules links to them")


def copy_files(root: Path, files: Sequence[FileSpec], spec_dir: Path, log: BuildLog) -> None:
    """Copy each source (bound read-only) to its destination, inside the root."""
    binds = []
    lines = ["set -e", "umask 022"]
    for index, entry in enumerate(files):
        source = (spec_dir / entry.src).resolve()
        staged = f"/tmp/nullspace-files/{index}"
        binds.append((source, staged))
        dest = shlex.quote(entry.dest)
        parent = shlex.quote(os.path.dirname(entry.dest))
        lines += [
            f"mkdir -p -- {parent}",
            f"rm -rf -- {dest}",
            f"cp -R --preserve=mode,timestamps -- {staged} {dest}",
        ]
        if entry.mode is not None:
            lines.append(f"chmod {entry.mode} -- {dest}")
        log.line(f"{entry.src} -> {entry.dest}")
    argv = ["/bin/sh", "-c", "\n".join(lines)]
    run(bwrap_argv(root, argv, ro_binds=binds, caps=FILE_CAPS), log, label="copy files")


def run_command(root: Path, command: str, env: Mapping[str, str], log: BuildLog) -> None:
    """One `run` command: `/bin/sh -c` as root inside the root, no network, file caps only."""
    argv = ["/bin/sh", "-c", command]
    run(bwrap_argv(root, argv, caps=FILE_CAPS, env=env), log, label="command")


def scratch_dir(parent: Path) -> Path:
    """A private directory for host-side downloads of one step."""
    return Path(tempfile.mkdtemp(prefix="step-", dir=parent))
