"""On-disk layout of built templates.

    <data_dir>/templates/
        <name>/current                  {"digest": ...}  the build sandboxes get
        <name>/<digest>/rootfs/         the read-only root filesystem (single-layer builds)
        <name>/<digest>/meta.json       name, digest, built_at, size_bytes, spec, and for
                                        layered builds "layers" (base first, relative to
                                        templates/) and "steps"; "python"/"npm" package info
        <name>/<digest>/build.log       the full build output
        .layers/<key>/                  layers of layered builds (see `_layers`)
        .build-<name>.XXXX/             a build in progress (renamed to <name>/<digest>)
        .lock-<name>                    flock: one build/delete of <name> at a time
    <data_dir>/cache/wheels/            wheels shared by all builds and package installs
    <data_dir>/cache/npm/               npm's cache (content-addressed by npm itself)

A `<digest>` directory appears by one atomic rename, complete with its meta.json, so its
existence means a finished build. `current` is replaced atomically too.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nullspace._exceptions import TemplateBuildError
from nullspace.templates._models import TemplateImage
from nullspace.templates.spec import NAME_RE, TemplateSpec, parse_spec

_DIGEST_LEN = 64
_HEX = "0123456789abcdef"


def templates_dir(data_dir: Path) -> Path:
    """`<data_dir>/templates`."""
    return Path(data_dir) / "templates"


def wheel_cache(data_dir: Path) -> Path:
    """`<data_dir>/cache/wheels`."""
    return Path(data_dir) / "cache" / "wheels"


def npm_cache(data_dir: Path) -> Path:
    """`<data_dir>/cache/npm` (npm's own content-addressed cache)."""
    return Path(data_dir) / "cache" / "npm"


def template_dir(data_dir: Path, name: str) -> Path:
    """`<data_dir>/templates/<name>`; the name is validated so it can never escape."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"invalid template name {name!r}")
    return templates_dir(data_dir) / name


def ensure_dirs(data_dir: Path) -> Path:
    """Create `<data_dir>/templates` (0755) and let sandbox uids traverse the data dir to it
    (search only: the data dir itself stays unlistable, 0711 as the server makes it)."""
    root = templates_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    for path, need in ((Path(data_dir), 0o711), (root, 0o755)):
        if path.stat().st_mode & need != need:
            os.chmod(path, path.stat().st_mode | need)
    return root


@contextmanager
def name_lock(data_dir: Path, name: str) -> Iterator[None]:
    """Hold the exclusive per-name lock (blocks until a concurrent build of `name` ends)."""
    root = ensure_dirs(data_dir)
    template_dir(data_dir, name)  # validates
    path = root / f".lock-{name}"
    while True:
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if not _same_file(handle.fileno(), path):
                    continue  # `delete_template` removed this lock file while we waited
                yield
                return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)


def remove_lock(data_dir: Path, name: str) -> None:
    """Remove `.lock-<name>`; call while holding it (waiters notice and take a fresh one)."""
    (templates_dir(data_dir) / f".lock-{name}").unlink(missing_ok=True)


def read_current(data_dir: Path, name: str) -> str | None:
    """The digest `current` names, or None if missing or unreadable."""
    try:
        digest = json.loads((template_dir(data_dir, name) / "current").read_text())["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(digest, str) or len(digest) != _DIGEST_LEN or digest.strip(_HEX):
        return None
    return digest


def write_current(data_dir: Path, name: str, digest: str) -> None:
    """Point `current` at `digest` (atomic replace)."""
    directory = template_dir(data_dir, name)
    body = {"digest": digest, "updated_at": datetime.now(UTC).isoformat()}
    fd, tmp = tempfile.mkstemp(prefix=".current-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / "current")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def meta_dict(
    spec: TemplateSpec, built_at: datetime, size_bytes: int, *, digest: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The content of `meta.json` (`digest` defaults to the spec's; `extra` keys are added)."""
    return {
        "name": spec.name,
        "digest": digest or spec.digest,
        "built_at": built_at.isoformat(),
        "size_bytes": size_bytes,
        "spec": spec.to_dict(),
        **extra,
    }


def read_meta(data_dir: Path, name: str, digest: str) -> dict[str, Any] | None:
    """The raw meta.json of a build, or None."""
    try:
        meta = json.loads((template_dir(data_dir, name) / digest / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def read_image(data_dir: Path, name: str, digest: str) -> TemplateImage | None:
    """The finished build `<name>/<digest>`, or None if it does not exist or is damaged."""
    build = template_dir(data_dir, name) / digest
    root = templates_dir(data_dir)
    try:
        meta = json.loads((build / "meta.json").read_text())
        spec = parse_spec(meta["spec"], path=build / "meta.json")
        stored = meta.get("layers")
        if stored is None:
            layers: tuple[Path, ...] = (build / "rootfs",)
        else:
            if not stored or not all(isinstance(p, str) and ".." not in p.split("/") for p in stored):
                return None
            layers = tuple(root / p for p in reversed(stored))  # top first
        image = TemplateImage(
            name=name,
            digest=digest,
            rootfs=layers[0],
            spec=spec,
            built_at=datetime.fromisoformat(meta["built_at"]),
            size_bytes=int(meta.get("size_bytes", 0)),
            layers=layers,
            build_dir=build,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, TemplateBuildError):
        return None
    if spec.name != name or meta.get("digest") != digest or not all(p.is_dir() for p in layers):
        return None
    return image


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (from /proc/self/mountinfo)."""
    prefix = os.path.realpath(path).rstrip("/")
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                point = fields[4].encode().decode("unicode_escape") if len(fields) > 4 else ""
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def remove_tree(path: Path) -> None:
    """Delete a build or template directory; refuse if anything is mounted inside it.

    A leftover bind mount of e.g. /dev inside a rootfs would make `rmtree` delete host files.
    The tree is first renamed to a `.trash-*` sibling, so it disappears atomically.
    """
    if not path.exists() and not path.is_symlink():
        return
    mounted = mounts_under(path)
    if mounted:
        raise TemplateBuildError(
            f"refusing to delete {path}: still mounted inside it: {', '.join(mounted[:5])}"
        )
    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=path.parent))
    os.rename(path, trash / "t")
    try:
        shutil.rmtree(trash)
    except OSError:
        # e.g. a killed build's last child still wrote a file; retry once, then leave the
        # trash for the next build of this data dir to sweep (it is already out of sight).
        time.sleep(0.5)
        shutil.rmtree(trash, ignore_errors=True)
