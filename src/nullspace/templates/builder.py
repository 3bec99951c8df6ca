"""Build a template: a Debian root filesystem (mmdebstrap + a venv of wheels), or layers.

A spec with a Debian base and nothing but apt/pip/kernels/env is built as one directory (the
`STEPS` below). A spec on a template base (`base = "template:code-interpreter"`), or with
`npm`/`files`/`run` steps, is built as layers (`_layers`): each step runs on an overlay of the
layers below it and is cached by `hash(parent layer + step content)`, so changing one step
rebuilds that step and the ones after it, and a template derived from another one costs only
what it adds.

`build` needs root (mmdebstrap's root mode, file ownership, overlay mounts), `bwrap` and
network access from the host (Debian mirror, PyPI through the host's pip configuration, the
npm registry through the host's npm). Every step runs in a temporary directory; only complete
layers and checked builds are published, so a failed build leaves the previous one current.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _kernels, _layers, _python, _rootfs, _steps, _store
from nullspace.templates._models import ProgressCallback, TemplateImage
from nullspace.templates._process import CHROOT_PATH, BuildLog, run
from nullspace.templates.mounts import check_mount_points
from nullspace.templates.spec import BUILDER_VERSION, TemplateSpec

__all__ = ["DEFAULT_ENV", "STEPS", "BuildPlan", "build", "plan_build"]

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
"""`(name, description)` of every step of a single-directory Debian build, in order."""

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


# -- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    """One step of a layered build.

    Attributes:
        name: Shown in progress events (`base`, `apt`, `pip`, `npm`, `files`, `run-N`, `config`).
        description: Human description.
        kind: `parent` (the base template's layers, nothing to build), `debian`, `apt`, `pip`,
            `npm`, `files`, `run` or `config`.
        key: The layer's cache key (None for `parent`).
        content: What the step does (packages, files with their hashes, the command …).
    """

    name: str
    description: str
    kind: str
    key: str | None = None
    content: Any = None


@dataclass(frozen=True)
class BuildPlan:
    """What building a spec means, computed without building anything.

    Attributes:
        spec: The spec as written.
        effective: What sandboxes get: for a template base, the parent's env and kernels with
            the spec's merged over them (stored as the build's spec).
        digest: The build's digest (`spec.digest` for a single-directory Debian build; else
            derived from the top layer's key, which covers the parent and every step).
        steps: The layered steps; empty for a single-directory Debian build.
        parent: The base template's current build (template bases only).
    """

    spec: TemplateSpec
    effective: TemplateSpec
    digest: str
    steps: tuple[PlanStep, ...] = ()
    parent: TemplateImage | None = None

    @property
    def layered(self) -> bool:
        return bool(self.steps)

    def step_list(self) -> list[tuple[str, str]]:
        """`(name, description)` for the progress display."""
        return [*((s.name, s.description) for s in self.steps), ("commit", "Checking and publishing")]


def plan_build(
    spec: TemplateSpec,
    data_dir: str | Path,
    on_progress: ProgressCallback | None = None,
    *,
    force: bool = False,
) -> BuildPlan:
    """Plan a build: resolve the base template, hash the files, key every layer.

    A built-in base template that was never built is built first (`on_progress` sees it).
    `force` gives this template's layers fresh keys, so they are all rebuilt.

    Raises:
        TemplateBuildError: The base template is missing, or a file cannot be read.
    """
    data_dir = Path(data_dir)
    if spec.base_kind == "debian" and not spec.layered_steps:
        return BuildPlan(spec, spec, spec.digest)  # one directory; `force` rebuilds it in place
    steps: list[PlanStep] = []
    parent: TemplateImage | None = None
    salt = f"#force={time.time_ns()}" if force else ""
    if spec.base_kind == "template":
        parent = _parent_image(spec, data_dir, on_progress)
        effective = _merge_parent(spec, parent.spec)
        previous = f"template:{parent.name}@{parent.digest}{salt}"
        steps.append(PlanStep("base", f"Base: template {parent.name} ({parent.digest[:12]})", "parent"))
        own: list[tuple[str, str, str, Any]] = []
        if spec.apt:
            own.append(("apt", "apt", f"apt-get install {' '.join(spec.apt)}", list(spec.apt)))
        if spec.pip:
            own.append(("pip", "pip", f"pip install {' '.join(spec.pip)}", list(spec.pip)))
    else:
        effective = spec
        base_spec = replace(spec, npm=(), files=(), run=(), source=None)
        key = _layers.layer_key(f"debian{salt}", "debian", base_spec.digest)
        steps.append(
            PlanStep(
                "base", f"Debian {spec.base_ref} with the apt and pip packages", "debian", key, base_spec
            )
        )
        previous = key
        own = []
    if spec.npm:
        own.append(("npm", "npm", f"npm install {' '.join(spec.npm)}", list(spec.npm)))
    if spec.files:
        own.append(
            (
                "files",
                "files",
                f"Copying {len(spec.files)} file entr{'y' if len(spec.files) == 1 else 'ies'}",
                _file_content(spec),
            )
        )
    for number, command in enumerate(spec.run, 1):
        shown = command if len(command) <= 60 else command[:57] + "..."
        own.append((f"run-{number}", "run", f"Running: {shown}", command))
    config = {**effective.to_dict(), "builder": BUILDER_VERSION}
    own.append(("config", "config", "Configuring kernels, metadata and mount points", config))
    for name, kind, description, content in own:
        key = _layers.layer_key(previous, kind, content)
        steps.append(PlanStep(name, description, kind, key, content))
        previous = key
    digest = hashlib.sha256(f"nullspace-build:{previous}".encode()).hexdigest()
    return BuildPlan(spec, effective, digest, tuple(steps), parent)


def _parent_image(spec: TemplateSpec, data_dir: Path, on_progress: ProgressCallback | None) -> TemplateImage:
    from nullspace.templates import cache  # cache imports this module

    name = spec.base_ref
    if name == spec.name:
        raise TemplateBuildError(f"template {name!r} cannot be based on itself")
    image = cache.find_template(name, data_dir)
    if image is None and name in cache.builtin_names():
        image = cache.ensure_template(name, data_dir, on_progress)
    if image is None:
        raise TemplateBuildError(
            f"base template {name!r} is not built; build it first (nullspace template build …)"
        )
    return image


def _merge_parent(spec: TemplateSpec, parent: TemplateSpec) -> TemplateSpec:
    return replace(
        spec,
        env=MappingProxyType({**parent.env, **spec.env}),
        kernels=MappingProxyType({**parent.kernels, **spec.kernels}),
        start=spec.start if spec.start is not None else parent.start,
        preload=spec.preload if spec.preload is not None else parent.preload,
    )


def _file_content(spec: TemplateSpec) -> list[dict[str, Any]]:
    if spec.spec_dir is None:
        raise TemplateBuildError(
            f"template {spec.name!r} copies files: build it from its spec file, not from a stored spec"
        )
    return [{**entry.to_dict(), "sha256": _hash_tree(spec.spec_dir / entry.src)} for entry in spec.files]


def _hash_tree(path: Path) -> str:
    """sha256 over a file or a directory tree: names, types, permissions, contents, links."""
    digest = hashlib.sha256()

    def add(item: Path, name: str) -> None:
        st = os.lstat(item)
        digest.update(f"{name}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            digest.update(os.readlink(item).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(item, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        digest.update(b"\0")

    try:
        add(path, ".")
        if path.is_dir() and not path.is_symlink():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted([*dirnames, *filenames]):
                    item = Path(dirpath) / name
                    add(item, str(item.relative_to(path)))
    except OSError as exc:
        raise TemplateBuildError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()


# -- building ------------------------------------------------------------------------------------


def build(
    spec: TemplateSpec, data_dir: str | Path, on_progress: ProgressCallback | None = None
) -> TemplateImage:
    """Build `spec` and make it the template's `current` build.

    Always builds: a single-directory build of the same digest is replaced (so do not rebuild
    a digest that running sandboxes use); a layered build reuses the layers it finds cached.
    `ensure_template` is the cached entry point.

    Raises:
        TemplateBuildError: Naming the failing step, with the step's last ~200 log lines.
            The temporary directory is removed and the previous build stays current.
    """
    data_dir = Path(data_dir)
    _preflight(spec)
    with _store.name_lock(data_dir, spec.name):
        return build_locked(spec, data_dir, on_progress)


def _preflight(spec: TemplateSpec) -> None:
    if os.geteuid() != 0:
        raise TemplateBuildError("building a template needs root (mmdebstrap root mode, overlay mounts)")
    tools = ["bwrap", "mount"]
    if spec.base_kind == "debian":
        tools += ["mmdebstrap", "unshare"]
    if spec.npm:
        tools.append("npm")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        raise TemplateBuildError(f"missing build tools: {', '.join(missing)}")


def build_locked(
    spec: TemplateSpec,
    data_dir: Path,
    on_progress: ProgressCallback | None,
    plan: BuildPlan | None = None,
) -> TemplateImage:
    """`build` for a caller already holding the per-name lock (`plan`: from `plan_build`)."""
    _preflight(spec)
    if plan is None:
        plan = plan_build(spec, data_dir, on_progress)
    root = _store.ensure_dirs(data_dir)
    _remove_stale(root, spec.name)
    # '.' cannot occur in a name, so ".build-code." never matches a build of "code-x".
    build_dir = Path(tempfile.mkdtemp(prefix=f".build-{spec.name}.", dir=root))
    try:
        os.chmod(build_dir, 0o755)
        log_fd = os.open(build_dir / "build.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # root's only
        with open(log_fd, "w", encoding="utf-8") as logfile:
            if plan.layered:
                log = BuildLog(plan.step_list(), on_progress, logfile)
                with _layers.building(data_dir):
                    image = _run_layered(plan, data_dir, build_dir, log)
            else:
                log = BuildLog(STEPS, on_progress, logfile)
                image = _run_steps(spec, data_dir, build_dir, log)
    except BaseException:
        _layers.unmount_all(build_dir)
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
            if path.name.startswith(".build-"):
                _layers.unmount_all(path)  # an overlay a killed build left mounted
            _store.remove_tree(path)
        except (OSError, TemplateBuildError):
            pass  # something is mounted inside, or it vanished meanwhile: leave it


def _run_steps(spec: TemplateSpec, data_dir: Path, build_dir: Path, log: BuildLog) -> TemplateImage:
    rootfs = build_dir / "rootfs"
    python = _debian_rootfs(spec, data_dir, rootfs, log, log.step_scope)
    with log.step_scope("commit"):
        check_mount_points(rootfs, extra=(spec.home, spec.workdir), require_exist=True)
        size = _rootfs.disk_usage(rootfs)
        built_at = datetime.now(UTC)
        meta = _store.meta_dict(spec, built_at, size, python=python)
        _rootfs.write_json(build_dir / "meta.json", meta, mode=0o600)
        log.line(f"rootfs size {size / 2**20:.0f} MiB; digest {spec.digest}")
        image = _publish(spec, data_dir, build_dir)
    return image


StepScope = Callable[[str], AbstractContextManager[None]]


def _debian_rootfs(
    spec: TemplateSpec, data_dir: Path, rootfs: Path, log: BuildLog, scope: StepScope
) -> dict[str, Any]:
    """mmdebstrap, user, venv, wheels, kernels, metadata: a complete rootfs in `rootfs`.

    Returns the Python packaging facts stored in meta.json (see `_python_info`).
    """
    with scope("bootstrap"):
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
    with scope("user"):
        _rootfs.add_user(rootfs, spec.user, spec.home)
        log.line(f"user {spec.user} ({_rootfs.USER_UID}:{_rootfs.USER_GID}), home {spec.home}")
    with scope("venv"):
        _python.create_venv(rootfs, log)
    requirements = _python.merge_requirements(spec.pip, _python.AGENT_PIP)
    with scope("wheels"):
        tags = _python.target_tags(rootfs)
        log.line(f"target: {tags.implementation}{tags.version}, {tags.platforms[0]}")
        wheels = _python.download_wheels(requirements, _store.wheel_cache(data_dir), tags, log)
    with scope("pip"):
        _python.install_wheels(rootfs, requirements, wheels, log)
    with scope("kernels"):
        _kernels.configure_kernels(rootfs, spec.kernels, log)
    with scope("finalize"):
        packages_config = _finalize(spec, rootfs, spec.digest)
    return _python_info(rootfs, tags, packages_config)


def _substeps(log: BuildLog) -> StepScope:
    """The Debian steps as parts of a layered build's `base` step: a log line each."""
    descriptions = dict(STEPS)

    @contextmanager
    def scope(name: str) -> Iterator[None]:
        log.line(f"--- {descriptions[name]}")
        yield

    return scope


def _python_info(rootfs: Path, tags: _python.TargetTags, packages_config: dict[str, str]) -> dict[str, Any]:
    """What installing packages into a running sandbox needs to know about its Python."""
    return {
        "version": _python.python_version(rootfs),
        "tags": {
            "version": tags.version,
            "implementation": tags.implementation,
            "abis": list(tags.abis),
            "platforms": list(tags.platforms),
        },
        "packages": _python.installed_packages(rootfs),
        **packages_config,
    }


def _finalize(spec: TemplateSpec, rootfs: Path, digest: str) -> dict[str, str]:
    _rootfs.create_mount_points(rootfs, user_home=spec.home)
    in_home = spec.workdir == spec.home or spec.workdir.startswith(spec.home + "/")
    user_owned = spec.user != "root" and in_home
    owner = (_rootfs.USER_UID, _rootfs.USER_GID) if user_owned else None
    _rootfs.make_dir(rootfs, spec.workdir, owner=owner)
    packages_config = _python.configure_packages(rootfs, spec.home)
    uid = 0 if spec.user == "root" else _rootfs.USER_UID
    metadata = {
        "name": spec.name,
        "digest": digest,
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
        "packages": packages_config,
        "start": spec.start,
    }
    _rootfs.write_json(_rootfs.inside(rootfs, "/opt/nullspace/template.json"), metadata)
    _rootfs.clean(rootfs)
    return packages_config


def _run_layered(plan: BuildPlan, data_dir: Path, build_dir: Path, log: BuildLog) -> TemplateImage:
    lowers: list[Path] = list(plan.parent.layers) if plan.parent is not None else []  # top first
    report: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}
    added = 0
    for step in plan.steps:
        started = time.monotonic()
        with log.step_scope(step.name):
            if step.kind == "parent":
                assert plan.parent is not None
                log.line(f"{len(lowers)} layer(s) of {plan.parent.name}, digest {plan.parent.digest}")
                log.cached()
                report.append({"name": step.name, "kind": step.kind, "cached": True, "seconds": 0.0})
                continue
            assert step.key is not None
            layer = _layers.find(data_dir, step.key)
            cached = layer is not None
            if layer is None:
                staged = build_dir / f"layer-{step.key}"
                staged.mkdir()
                result = _build_layer(plan, step, lowers, staged, data_dir, build_dir, log)
                _strip_setid(staged / "fs", log)
                size = _rootfs.disk_usage(staged / "fs")
                added += size
                log.line(f"layer {step.key}: {size / 2**20:.1f} MiB")
                meta = {"step": step.name, "kind": step.kind, "description": step.description,
                        "template": plan.spec.name, "size_bytes": size, **result}  # fmt: skip
                layer = _layers.publish(data_dir, step.key, staged, meta)
            else:
                log.line(f"layer {step.key} is cached")
                log.cached()
            if step.kind in ("debian", "config"):
                facts = _layer_facts(layer)
            lowers.insert(0, layer)
            seconds = round(time.monotonic() - started, 3)
            report.append(
                {"name": step.name, "kind": step.kind, "key": step.key, "cached": cached, "seconds": seconds}
            )
    with log.step_scope("commit"):
        built_at = datetime.now(UTC)
        meta = _store.meta_dict(
            plan.effective, built_at, added, digest=plan.digest,
            layers=[_layers.relative(data_dir, p) for p in reversed(lowers)],
            steps=report, source=str(plan.spec.source) if plan.spec.source else None,
            python=facts.get("python"), npm=facts.get("npm"),
        )  # fmt: skip
        _rootfs.write_json(build_dir / "meta.json", meta, mode=0o600)
        ran = [s["name"] for s in report if not s["cached"]]
        log.line(
            f"{len(lowers)} layers, {len(ran)} step(s) ran ({', '.join(ran) or 'none'}); digest {plan.digest}"
        )
        return _publish(plan.spec, data_dir, build_dir, plan.digest)


def _strip_setid(tree: Path, log: BuildLog) -> None:
    """Clear setuid/setgid bits in a new layer. Sandboxes mount templates nosuid, so the bits
    do nothing there; on the host, a root-owned setuid file in a world-readable layer would be
    a way up for any local user (a `run` command can make one)."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
                log.line(f"cleared setuid/setgid on {os.path.relpath(path, tree)}")


def _layer_facts(layer: Path) -> dict[str, Any]:
    try:
        meta = json.loads((layer.parent / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise TemplateBuildError(f"layer {layer.parent.name} has unreadable metadata: {exc}") from exc
    return {key: meta.get(key) for key in ("python", "npm")}


def _build_layer(
    plan: BuildPlan,
    step: PlanStep,
    lowers: list[Path],
    staged: Path,
    data_dir: Path,
    build_dir: Path,
    log: BuildLog,
) -> dict[str, Any]:
    """Run one step into `staged/fs`; returns facts for the layer's meta.json."""
    if step.kind == "debian":
        python = _debian_rootfs(step.content, data_dir, staged / "fs", log, _substeps(log))
        return {"python": python, "npm": None}
    scratch = _steps.scratch_dir(build_dir)
    try:
        with _layers.mounted(lowers, staged / "fs", staged / "work", build_dir / "merged") as root:
            return _run_step(plan, step, root, data_dir, scratch, log)
    finally:
        shutil.rmtree(staged / "work", ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _run_step(
    plan: BuildPlan, step: PlanStep, root: Path, data_dir: Path, scratch: Path, log: BuildLog
) -> dict[str, Any]:
    spec = plan.effective
    if step.kind == "apt":
        _steps.apt_install(root, step.content, log)
    elif step.kind == "pip":
        _steps.pip_install(root, step.content, _store.wheel_cache(data_dir), scratch, log)
    elif step.kind == "npm":
        _steps.npm_install(root, step.content, spec.home, _store.npm_cache(data_dir), scratch, log)
    elif step.kind == "files":
        assert plan.spec.spec_dir is not None
        _steps.copy_files(root, plan.spec.files, plan.spec.spec_dir, log)
    elif step.kind == "run":
        _steps.run_command(root, step.content, {**DEFAULT_ENV, **spec.env}, log)
    elif step.kind == "config":
        return _configure(plan, root, log)
    else:  # pragma: no cover - plan_build makes only the kinds above
        raise TemplateBuildError(f"unknown step kind {step.kind!r}")
    return {}


def _configure(plan: BuildPlan, root: Path, log: BuildLog) -> dict[str, Any]:
    """The last layer: user, the spec's own kernels, template.json, mount points, checks."""
    spec = plan.effective
    if spec.user != "root" and not _has_user(root, spec.user):
        _rootfs.add_user(root, spec.user, spec.home)
    if plan.spec.kernels:
        _kernels.configure_kernels(root, plan.spec.kernels, log)
    packages_config = _finalize(spec, root, plan.digest)
    check_mount_points(root, extra=(spec.home, spec.workdir), require_exist=True)
    tags = _python.target_tags(root)
    npm = None
    project = _rootfs.inside(root, _steps.NPM_PROJECT)
    if (project / "package.json").is_file():
        npm = {"project": _steps.NPM_PROJECT, "files": _npm_files(project)}
    log.line(f"kernels: {', '.join(f'{k}={v}' for k, v in spec.kernels.items()) or 'none'}")
    return {"python": _python_info(root, tags, packages_config), "npm": npm}


def _npm_files(project: Path) -> dict[str, str]:
    """package.json and package-lock.json of the template's npm project (seed per-sandbox ones)."""
    files = {}
    for name in ("package.json", "package-lock.json"):
        path = project / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 4 << 20:
            files[name] = path.read_text()
    return files


def _has_user(root: Path, name: str) -> bool:
    passwd = _rootfs.inside(root, "/etc/passwd")
    try:
        return any(line.split(":", 1)[0] == name for line in passwd.read_text().splitlines())
    except OSError:
        return False


def _publish(spec: TemplateSpec, data_dir: Path, build_dir: Path, digest: str | None = None) -> TemplateImage:
    """Rename the finished build into `<name>/<digest>` and point `current` at it."""
    digest = digest or spec.digest
    name_dir = _store.template_dir(data_dir, spec.name)
    name_dir.mkdir(exist_ok=True)
    os.chmod(name_dir, 0o755)
    target = name_dir / digest
    if target.exists():
        _store.remove_tree(target)
    os.rename(build_dir, target)
    _store.write_current(data_dir, spec.name, digest)
    image = _store.read_image(data_dir, spec.name, digest)
    if image is None:
        raise TemplateBuildError(f"published build {target} cannot be read back")
    return image
