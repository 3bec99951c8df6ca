"""The two small records the template API hands out: a built image and a progress event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from nullspace.templates.spec import TemplateSpec

__all__ = ["BuildProgress", "ProgressCallback", "TemplateImage"]


@dataclass(frozen=True)
class TemplateImage:
    """A built template: a read-only root filesystem and the spec it was built from.

    Attributes:
        name: Template name.
        digest: The spec digest; also the directory the rootfs lives in.
        rootfs: `<data_dir>/templates/<name>/<digest>/rootfs`. Never write to it.
        spec: The spec it was built from.
        built_at: When the build finished (UTC).
        size_bytes: Disk usage of the rootfs, measured at build time.
    """

    name: str
    digest: str
    rootfs: Path
    spec: TemplateSpec
    built_at: datetime
    size_bytes: int = 0

    @property
    def metadata_path(self) -> Path:
        """`/opt/nullspace/template.json` seen from the host (what the agent reads)."""
        return self.rootfs / "opt" / "nullspace" / "template.json"


@dataclass(frozen=True)
class BuildProgress:
    """One build event: a step starting or finishing, or one line of a step's output.

    Attributes:
        step: Step name (`bootstrap`, `user`, `venv`, `wheels`, `pip`, `kernels`, `finalize`,
            `commit`).
        index: 1-based position of the step.
        total: Number of steps.
        message: The log line, or the step's description for `start`/`done`.
        kind: `"start"`, `"log"` or `"done"`.
    """

    step: str
    index: int
    total: int
    message: str
    kind: Literal["start", "log", "done"] = "log"


ProgressCallback = Callable[[BuildProgress], None]
