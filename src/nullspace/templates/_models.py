"""The two small records the template API hands out: a built image and a progress event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from nullspace.templates.spec import TemplateSpec

__all__ = ["BuildProgress", "ProgressCallback", "TemplateImage"]


@dataclass(frozen=True)
class TemplateImage:
    """A built template: read-only root filesystem layers and the spec it was built from.

    A template built from a Debian base alone is one directory (`rootfs`). A template built
    on another template (or with `npm`/`files`/`run` steps) is a stack of layers that the
    runtime mounts as the lower directories of an overlay; `rootfs` is then its top layer.

    Attributes:
        name: Template name.
        digest: The build's digest; also the directory its record lives in.
        rootfs: `<data_dir>/templates/<name>/<digest>/rootfs` for a single-layer template;
            for a layered one, the top layer (holding `/opt/nullspace/template.json`). Never
            write to it.
        spec: The spec it was built from; for a template on a template base, with the
            parent's env, kernels and start command merged in (what sandboxes get).
        built_at: When the build finished (UTC).
        size_bytes: Disk usage of the rootfs, measured at build time (for a layered template,
            of the layers it added).
        layers: The overlay lower directories, top first (`lowerdir=top:...:base`); just
            `(rootfs,)` for a single-layer template.
        build_dir: `<data_dir>/templates/<name>/<digest>`: `meta.json` and `build.log`.
    """

    name: str
    digest: str
    rootfs: Path
    spec: TemplateSpec
    built_at: datetime
    size_bytes: int = 0
    layers: tuple[Path, ...] = ()
    build_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.layers:
            object.__setattr__(self, "layers", (self.rootfs,))

    @property
    def metadata_path(self) -> Path:
        """`/opt/nullspace/template.json` seen from the host (what the agent reads)."""
        return self.rootfs / "opt" / "nullspace" / "template.json"


@dataclass(frozen=True)
class BuildProgress:
    """One build event: a step starting or finishing, or one line of a step's output.

    Attributes:
        step: Step name (`bootstrap`, `user`, `venv`, `wheels`, `pip`, `kernels`, `finalize`,
            `commit` for a Debian base; `base`, `apt`, `pip`, `npm`, `files`, `run-N`,
            `finalize`, `commit` for layered builds).
        index: 1-based position of the step.
        total: Number of steps.
        message: The log line, or the step's description for `start`/`done`.
        kind: `"start"`, `"log"` or `"done"`.
        cached: On `done`: the step's layer was already built and was reused, nothing ran.
    """

    step: str
    index: int
    total: int
    message: str
    kind: Literal["start", "log", "done"] = "log"
    cached: bool = False


ProgressCallback = Callable[[BuildProgress], None]
