"""Content-addressed layers: the steps of a layered template build, stacked with overlayfs.

    <data_dir>/templates/.layers/
        <key>/fs/            the layer: what its step added or changed (an overlay upper dir,
                             with overlayfs whiteouts for what it deleted)
        <key>/meta.json      key, parent, step, description, created_at, size_bytes
        .lock                builds hold it shared; garbage collection exclusively

A key is `sha256(parent key + step kind + step content)`, so a layer is reused by every build
whose steps up to and including it are the same, and changing one step rebuilds that step and
the ones after it only. A step runs on an overlay whose lower dirs are the layers below it and
whose upper dir becomes the new layer. A layer appears by one atomic rename, complete; it is
never modified afterwards. Sandboxes mount the same stack (`lowerdir=top:...:base`) under
their own tmpfs upper dir.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _store

LAYER_VERSION = "1"
KEY_LEN = 32  # hex digits: 128 bits, and short paths (the overlay option string is bounded)
DIR_NAME = ".layers"
MAX_OPTIONS = 3900  # mount(2) passes the options in one page
_OVERLAY_OPTS = "redirect_dir=off,index=off,metacopy=off,xino=off"


def layers_dir(data_dir: Path) -> Path:
    """`<data_dir>/templates/.layers` (a name no template can have)."""
    return _store.templates_dir(data_dir) / DIR_NAME


def layer_dir(data_dir: Path, key: str) -> Path:
    """The directory of one layer (its `fs/` is what gets mounted)."""
    if len(key) != KEY_LEN or key.strip("0123456789abcdef"):
        raise ValueError(f"invalid layer key {key!r}")
    return layers_dir(data_dir) / key


def layer_key(parent: str, kind: str, content: Any) -> str:
    """The cache key of a step: its parent's identity, its kind and its content."""
    canonical = json.dumps(
        {"layer": LAYER_VERSION, "parent": parent, "kind": kind, "content": content},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LEN]


def find(data_dir: Path, key: str) -> Path | None:
    """The `fs/` of a finished layer, or None."""
    directory = layer_dir(data_dir, key)
    fs = directory / "fs"
    return fs if (directory / "meta.json").is_file() and fs.is_dir() else None


def relative(data_dir: Path, path: Path) -> str:
    """A layer or rootfs path as stored in a build's meta.json: relative to `templates/`."""
    return str(path.relative_to(_store.templates_dir(data_dir)))


def lowerdir(layers: Sequence[Path]) -> str:
    """`top:...:base` for overlayfs; refuses paths the option syntax cannot carry."""
    for path in layers:
        if any(c in str(path) for c in ":,\\\n"):
            raise TemplateBuildError(f"layer path {path} contains a character overlayfs cannot take")
    return ":".join(str(p) for p in layers)


@contextmanager
def mounted(lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> Iterator[Path]:
    """Mount an overlay (lower dirs top first) at `target`; unmount it on exit."""
    options = f"lowerdir={lowerdir(lowers)},upperdir={upper},workdir={work},{_OVERLAY_OPTS}"
    if len(options) > MAX_OPTIONS:
        raise TemplateBuildError(
            f"too many layers ({len(lowers)}) for one overlay mount: merge some `run` commands "
            "(one layer each) or build an intermediate template"
        )
    for path in (upper, work, target):
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(upper, 0o755)
    _mount_cmd(["mount", "-t", "overlay", "overlay", "-o", options, str(target)])
    try:
        yield target
    finally:
        try:
            _mount_cmd(["umount", str(target)])
        except TemplateBuildError:
            _mount_cmd(["umount", "--lazy", str(target)])


def unmount_all(path: Path) -> None:
    """Lazily unmount whatever a crashed build left mounted at or below `path`."""
    for point in sorted(_store.mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def _mount_cmd(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TemplateBuildError(f"{' '.join(argv[:3])} … failed: {proc.stderr.strip()[-500:]}")


def publish(data_dir: Path, key: str, staged: Path, meta: dict[str, Any]) -> Path:
    """Move a finished layer (`staged/fs`) into the store; returns its `fs/`.

    If another build published the same key meanwhile, that one is kept (same content).
    """
    target = layer_dir(data_dir, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o755)
    body = {**meta, "key": key, "created_at": datetime.now(UTC).isoformat()}
    (staged / "meta.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.chmod(staged, 0o755)
    try:
        os.rename(staged, target)
    except OSError:
        if find(data_dir, key) is None:
            raise
        _store.remove_tree(staged)
    return target / "fs"


@contextmanager
def building(data_dir: Path) -> Iterator[None]:
    """Held (shared) for a whole layered build, so that `collect_garbage` never removes a layer
    a build has just made but not yet referenced."""
    directory = layers_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def referenced(data_dir: Path) -> set[str]:
    """Every path (relative to `templates/`) that some build's meta.json stacks on."""
    used: set[str] = set()
    root = _store.templates_dir(data_dir)
    if not root.is_dir():
        return used
    for meta_file in root.glob("*/*/meta.json"):
        try:
            layers = json.loads(meta_file.read_text()).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        used.update(str(layer) for layer in layers if isinstance(layer, str))
    return used


def users_of(data_dir: Path, name: str) -> list[str]:
    """Templates (other than `name`) with a build stacked on one of `name`'s builds."""
    root = _store.templates_dir(data_dir)
    prefix = f"{name}/"
    found = set()
    for meta_file in root.glob("*/*/meta.json"):
        owner = meta_file.parent.parent.name
        if owner == name:
            continue
        try:
            layers = json.loads(meta_file.read_text()).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        if any(isinstance(layer, str) and layer.startswith(prefix) for layer in layers):
            found.add(owner)
    return sorted(found)


def collect_garbage(data_dir: Path) -> list[str]:
    """Delete layers no build references. Skipped (returns []) while any build runs."""
    directory = layers_dir(data_dir)
    if not directory.is_dir():
        return []
    removed = []
    with open(directory / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        try:
            used = referenced(data_dir)
            for entry in sorted(directory.iterdir()):
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                if f"{DIR_NAME}/{entry.name}/fs" not in used:
                    _store.remove_tree(entry)
                    removed.append(entry.name)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return removed
