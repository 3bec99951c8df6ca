"""Build a template's root filesystem from its spec (mmdebstrap + a venv of wheels).

`build` needs root (mmdebstrap's root mode, file ownership), `mmdebstrap`, `bwrap` and
network access from the host (Debian mirror, PyPI through the host's pip configuration).
Every step runs in a temporary directory; only a complete, checked build is published.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _kernels, _python, _rootfs, _store
from nullspace.templates._models import ProgressCallback, TemplateImage
from nullspace.templates._process import CHROOT_PATH, BuildLog, run
from nullspace.templates.mounts import check_mount_points
from nullspace.templates.spec import BUILDER_VERSION, TemplateSpec

__all__ = ["DEFAULT_ENV", "STEPS", "build"]

STEPS: tuple[tuple[str, str], ...] = (
    ("bootstrap", "Bootstrapping Debian with mmdebstrap"),
    ("user", "Creating the sandbox user"),
    ("venv", f"Creating {_python.VENV}"),
    ("wheels", "Downloading wheels on the host"),
    ("pip", "Installing pip packages"),
    ("kernels", "Configuring kernels"),
    ("finalize", "Writing metadata and mount points"),
    ("commit", "Checking and publishing the rootfs"),
)
"""`(name, description)` of every build step, in order."""

DEFAULT_ENV: dict[str, str] = {"PATH": CHROOT_PATH, "LANG": "C.UTF-8"}
"""Environment every template starts from; the spec's `env` overrides it."""

_DPKG_OPTS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
_ROLLING_SUITES = ("sid", "unstable", "experimental")


def debian_mirror() -> str:
    """The Debian mirror (`NULLSPACE_DEBIAN_MIRROR`, default deb.debian.org)."""
    return os.environ.get("NULLSPACE_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")


def debian_sources(suite: str) -> list[str]:
    """sources.list lines for `suite`: main, plus -updates and -security for releases."""
    mirror = debian_mirror()
    lines = [f"deb {mirror} {suite} main"]
    if suite not in _ROLLING_SUITES:
        security = mirror.rsplit("/", 1)[0] + "/debian-security"
        lines += [f"deb {mirror} {suite}-updates main", f"deb {security} {suite}-security main"]
    return lines


def build(
    spec: TemplateSpec, data_dir: str | Path, on_progress: ProgressCallback | None = None
) -> TemplateImage:
    """Build `spec` and make it the template's `current` build.

    Always builds (an existing build of the same digest is replaced, so do not rebuild a
    digest that running sandboxes use); `ensure_template` is the cached entry point.

    Raises:
        TemplateBuildError: Naming the failing step, with the step's last ~200 log lines.
            The temporary directory is removed and the previous build stays current.
    """
    data_dir = Path(data_dir)
    _preflight(spec)
    with _store.name_lock(data_dir, spec.name):
        return build_locked(spec, data_dir, on_progress)


def _preflight(spec: TemplateSpec) -> None:
    if spec.base_kind != "debian":
        raise TemplateBuildError(f"base {spec.base!r} is not supported yet (use 'debian:<suite>')")
    if os.geteuid() != 0:
        raise TemplateBuildError("building a template needs root (mmdebstrap root mode)")
    missing = [tool for tool in ("mmdebstrap", "bwrap", "unshare") if not shutil.which(tool)]
    if missing:
        raise TemplateBuildError(f"missing build tools: {', '.join(missing)}")


def build_locked(spec: TemplateSpec, data_dir: Path, on_progress: ProgressCallback | None) -> TemplateImage:
    """`build` for a caller already holding the per-name lock."""
    _preflight(spec)
    root = _store.ensure_dirs(data_dir)
    _remove_stale(root, spec.name)
    # '.' cannot occur in a name, so ".build-code." never matches a build of "code-x".
    build_dir = Path(tempfile.mkdtemp(prefix=f".build-{spec.name}.", dir=root))
    try:
        os.chmod(build_dir, 0o755)
        with open(build_dir / "build.log", "w", encoding="utf-8") as logfile:
            log = BuildLog(STEPS, on_progress, logfile)
            image = _run_steps(spec, data_dir, build_dir, log)
    except BaseException:
        _store.remove_tree(build_dir)
        raise
    return image


def _remove_stale(root: Path, name: str) -> None:
    """Leftovers of crashed builds of `name` (we hold its lock, so none is running), and trash
    older than an hour that a failed removal left behind."""
    now = time.time()
    for path in [*root.glob(f".build-{name}.*"), *root.glob(".trash-*"), *root.glob("*/.trash-*")]:
        try:
            if path.name.startswith(".trash-") and now - path.stat().st_mtime < 3600:
                continue  # possibly being deleted right now
            _store.remove_tree(path)
        except (OSError, TemplateBuildError):
            pass  # something is mounted inside, or it vanished meanwhile: leave it


def _run_steps(spec: TemplateSpec, data_dir: Path, build_dir: Path, log: BuildLog) -> TemplateImage:
    rootfs = build_dir / "rootfs"
    with log.step_scope("bootstrap"):
        packages = list(dict.fromkeys([*_python.AGENT_APT, *spec.apt]))
        run(
            [
                "unshare", "--mount", "--propagation", "private",  # mounts die with it
                "mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
                f"--include={','.join(packages)}",
                *(f"--dpkgopt={opt}" for opt in _DPKG_OPTS),
                "--aptopt=Acquire::Retries \"3\"",
                # man pages are excluded, but update-alternatives (openjdk) links into man1
                '--setup-hook=mkdir -p "$1/usr/share/man/man1"',
                spec.base_ref, str(rootfs), *debian_sources(spec.base_ref),
            ],
            log,
        )  # fmt: skip
    with log.step_scope("user"):
        _rootfs.add_user(rootfs, spec.user, spec.home)
        log.line(f"user {spec.user} ({_rootfs.USER_UID}:{_rootfs.USER_GID}), home {spec.home}")
    with log.step_scope("venv"):
        _python.create_venv(rootfs, log)
    requirements = _python.merge_requirements(spec.pip, _python.AGENT_PIP)
    with log.step_scope("wheels"):
        tags = _python.target_tags(rootfs)
        log.line(f"target: {tags.implementation}{tags.version}, {tags.platforms[0]}")
        wheels = _python.download_wheels(requirements, _store.wheel_cache(data_dir), tags, log)
    with log.step_scope("pip"):
        _python.install_wheels(rootfs, requirements, wheels, log)
    with log.step_scope("kernels"):
        _kernels.configure_kernels(rootfs, spec.kernels, log)
    with log.step_scope("finalize"):
        _finalize(spec, rootfs)
    with log.step_scope("commit"):
        check_mount_points(rootfs, extra=(spec.home, spec.workdir), require_exist=True)
        size = _rootfs.disk_usage(rootfs)
        built_at = datetime.now(UTC)
        _rootfs.write_json(build_dir / "meta.json", _store.meta_dict(spec, built_at, size))
        log.line(f"rootfs size {size / 2**20:.0f} MiB; digest {spec.digest}")
        image = _publish(spec, data_dir, build_dir)
    return image


def _finalize(spec: TemplateSpec, rootfs: Path) -> None:
    _rootfs.create_mount_points(rootfs, user_home=spec.home)
    in_home = spec.workdir == spec.home or spec.workdir.startswith(spec.home + "/")
    user_owned = spec.user != "root" and in_home
    owner = (_rootfs.USER_UID, _rootfs.USER_GID) if user_owned else None
    _rootfs.make_dir(rootfs, spec.workdir, owner=owner)
    uid = 0 if spec.user == "root" else _rootfs.USER_UID
    metadata = {
        "name": spec.name,
        "digest": spec.digest,
        "base": spec.base,
        "builder_version": BUILDER_VERSION,
        "kernels": dict(spec.kernels),
        "prestart": _kernels.prestart_languages(spec.kernels),
        "env": {**DEFAULT_ENV, **spec.env},
        "user": spec.user,
        "uid": uid,
        "gid": uid,
        "home": spec.home,
        "workdir": spec.workdir,
        "python": f"{_python.VENV}/bin/python",
        "start": spec.start,
    }
    _rootfs.write_json(_rootfs.inside(rootfs, "/opt/nullspace/template.json"), metadata)
    _rootfs.clean(rootfs)


def _publish(spec: TemplateSpec, data_dir: Path, build_dir: Path) -> TemplateImage:
    """Rename the finished build into `<name>/<digest>` and point `current` at it."""
    name_dir = _store.template_dir(data_dir, spec.name)
    name_dir.mkdir(exist_ok=True)
    os.chmod(name_dir, 0o755)
    target = name_dir / spec.digest
    if target.exists():
        _store.remove_tree(target)
    os.rename(build_dir, target)
    _store.write_current(data_dir, spec.name, spec.digest)
    image = _store.read_image(data_dir, spec.name, spec.digest)
    if image is None:
        raise TemplateBuildError(f"published build {target} cannot be read back")
    return image
