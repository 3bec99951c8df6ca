"""The template cache: find, ensure (build on a miss), list and delete built templates."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from nullspace._exceptions import ConflictError, TemplateBuildError, TemplateNotFoundError
from nullspace._paths import default_data_dir
from nullspace.templates import _layers, _store, builder
from nullspace.templates._models import ProgressCallback, TemplateImage
from nullspace.templates.spec import NAME_RE, TemplateSpec, load_spec

__all__ = [
    "builtin_names",
    "builtin_spec",
    "default_data_dir",
    "delete_template",
    "ensure_template",
    "find_template",
    "list_templates",
    "prune_templates",
    "share_builds",
]



def builtin_names() -> list[str]:
    """Names of the templates shipped with nullspace (`builtin/<name>.toml`)."""
    folder = resources.files("nullspace.templates") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_spec(name: str) -> TemplateSpec:
    """The spec of a built-in template.

    Raises:
        TemplateNotFoundError: No built-in template has that name.
    """
    if not NAME_RE.fullmatch(name) or name not in builtin_names():
        raise TemplateNotFoundError(f"no built-in template named {name!r}")
    with resources.as_file(resources.files("nullspace.templates") / "builtin" / f"{name}.toml") as path:
        return load_spec(path)


def find_template(name: str, data_dir: str | Path | None = None) -> TemplateImage | None:
    """The `current` build of `name`, or None. Never builds."""
    if not NAME_RE.fullmatch(name):
        return None
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    digest = _store.read_current(data_dir, name)
    return _store.read_image(data_dir, name, digest) if digest else None


def ensure_template(
    template: str | TemplateSpec,
    data_dir: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    force: bool = False,
) -> TemplateImage:
    """A built template, building it only if its digest is missing (or `force`).

    For a layered template (on a template base, or with npm/files/run steps) the digest covers
    the base template's current build, every step and the content of every copied file; a
    build reuses every cached layer below the first step that changed.

    Args:
        template: A built-in name (its spec's digest decides whether to rebuild), the name of
            a template built earlier from a custom spec (returned as is), or a `TemplateSpec`.
        data_dir: Defaults to `default_data_dir()`.
        on_progress: Receives `BuildProgress` events if a build happens.
        force: Rebuild even if the digest exists (every layer of this template, too).

    Raises:
        TemplateNotFoundError: `template` is a name that is neither built-in nor built.
        TemplateBuildError: The build failed (the previous build stays current).
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if isinstance(template, str):
        if template not in builtin_names():
            image = None if force else find_template(template, data_dir)
            if image is None:
                raise TemplateNotFoundError(f"no template named {template!r}")
            return image
        spec = builtin_spec(template)
    else:
        spec = template
    plan = builder.plan_build(spec, data_dir, on_progress, force=force)
    if not force:
        image = _store.read_image(data_dir, spec.name, plan.digest)
        if image is not None and _store.read_current(data_dir, spec.name) == plan.digest:
            return image  # the common case: no lock, no build
    with _store.name_lock(data_dir, spec.name):
        if not force:
            # Built earlier (or by someone else while we waited): just make it current.
            image = _store.read_image(data_dir, spec.name, plan.digest)
            if image is not None:
                if _store.read_current(data_dir, spec.name) != plan.digest:
                    _store.write_current(data_dir, spec.name, plan.digest)
                return image
        return builder.build_locked(spec, data_dir, on_progress, plan)


def list_templates(data_dir: str | Path | None = None) -> list[TemplateImage]:
    """The `current` build of every template, sorted by name."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    root = _store.templates_dir(data_dir)
    if not root.is_dir():
        return []
    images = (find_template(p.name, data_dir) for p in sorted(root.iterdir()) if p.is_dir())
    return [image for image in images if image is not None]


def delete_template(name: str, data_dir: str | Path | None = None) -> bool:
    """Delete every build of `name`, then every layer no remaining build uses.

    Returns False if there was nothing to delete. Sandboxes still running on one of its
    builds use it as their overlay's lower layers: the caller must make sure none is running
    (the server refuses while any is).

    Raises:
        ConflictError: Another template is built on top of this one (delete that first).
        TemplateBuildError: Something is still mounted inside the template's directory.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not NAME_RE.fullmatch(name):
        return False
    directory = _store.template_dir(data_dir, name)
    if not directory.exists():
        return False
    with _store.name_lock(data_dir, name):
        users = _layers.users_of(data_dir, name)
        if users:
            raise ConflictError(
                f"template {name!r} is the base of {', '.join(map(repr, users))}; delete those first"
            )
        try:
            _store.remove_tree(directory)
        except OSError as exc:
            raise TemplateBuildError(f"cannot delete template {name!r}: {exc}") from exc
        _store.remove_lock(data_dir, name)
    _layers.collect_garbage(data_dir)
    return True


def prune_templates(data_dir: str | Path | None = None) -> list[str]:
    """Delete the builds no one can use any more; returns them as ``name/digest``.

    A rebuild (a new nullspace version, a changed spec) leaves the old build behind: 1.1 GiB for
    code-interpreter. Kept: every template's `current` build, every build another kept build
    is stacked on, and every build a running sandbox has mounted as a lower layer. Then the
    layers no remaining build uses go too.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    root = _store.templates_dir(data_dir)
    if not root.is_dir():
        return []
    in_use = _mounted_lower_dirs()
    removed = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name)):
        with _store.name_lock(data_dir, directory.name):
            if _store.read_current(data_dir, directory.name) is None:
                continue  # no readable `current`: nothing here is known to be old
            keep = _kept_builds(data_dir)
            for build in sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink()):
                real = build.resolve()  # (a linked build belongs to another data dir: share_builds)
                if f"{directory.name}/{build.name}" in keep or any(
                    lower == real or real in lower.parents for lower in in_use
                ):
                    continue
                _store.remove_tree(build)
                removed.append(f"{directory.name}/{build.name}")
    _layers.collect_garbage(data_dir)
    return removed


def _kept_builds(data_dir: Path) -> set[str]:
    """``name/digest`` of every current build and of every build those are stacked on."""
    root = _store.templates_dir(data_dir)
    kept = set()
    for directory in root.iterdir():
        digest = _store.read_current(data_dir, directory.name) if directory.is_dir() else None
        if digest is None:
            continue
        kept.add(f"{directory.name}/{digest}")
        try:
            layers = json.loads((directory / digest / "meta.json").read_text()).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        kept.update("/".join(str(layer).split("/")[:2]) for layer in layers if isinstance(layer, str))
    return kept


def _mounted_lower_dirs() -> list[Path]:
    """The lower dirs of every overlay mounted on this host (resolved)."""
    lowers = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            head, _, rest = line.partition(" - ")
            fields = rest.split()
            if len(fields) < 3 or fields[0] != "overlay":
                continue
            for option in fields[2].split(","):
                if not option.startswith("lowerdir="):
                    continue
                named = [p for p in option[len("lowerdir=") :].split(":") if p]
                if any(p.startswith("/proc/self/fd/") for p in named):  # a sandbox's: runtime/mounts.py
                    point = Path(head.split()[4].encode().decode("unicode_escape"))
                    named = _recorded_layers(point.parent / "layers")
                lowers += [Path(p).resolve() for p in named]
    return lowers


def _recorded_layers(record: Path) -> list[str]:
    """The lower dirs a sandbox's overlay was mounted with, as `mounts.prepare` wrote them."""
    try:
        return [p for p in record.read_text().splitlines() if p]
    except OSError:
        return []


def share_builds(source: str | Path, data_dir: str | Path) -> None:
    """Let a new `data_dir` use the templates built under `source` without building them again.

    Every build is linked. A built-in template gets its own `current`, naming the build of this
    version's spec when `source` has one: a server of another nullspace version sharing `source`
    may point the shared `current` at its own build (tests and benchmarks run beside such servers).
    """
    shared = Path(source) / "templates"
    templates = Path(data_dir) / "templates"
    templates.mkdir(mode=0o755)
    builtins = set(builtin_names())
    for entry in shared.iterdir():
        if entry.name not in builtins or not entry.is_dir():
            (templates / entry.name).symlink_to(entry)
            continue
        own = templates / entry.name
        own.mkdir(mode=0o755)
        for build in entry.iterdir():
            if build.name != "current":
                (own / build.name).symlink_to(build)
        digest = builtin_spec(entry.name).digest
        if not (entry / digest).is_dir():
            digest = _store.read_current(Path(source), entry.name) or digest
        _store.write_current(Path(data_dir), entry.name, digest)
