"""Sans-I/O core of artifacts: the files a run created or changed (the ``artifacts`` event).

`ArtifactInfo` is the data; `AsyncArtifact` (hand-written, `_async/artifacts.py`) and the generated
`Artifact` add `read()` / `download()` through the sandbox's file API (`sandbox.files`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from .._exceptions import IntegrityError


@dataclass
class ArtifactInfo:
    """A file that a run created or changed under its context's working directory.

    Attributes:
        path: Absolute path in the sandbox.
        size: Size in bytes when the run ended.
        mime_type: Guessed from the file name, e.g. "image/png".
        sha256: Hex SHA-256 of the content when the run ended (None for very large runs).
        change: "created" or "modified".
        name: The last path component.
        modified_at: Last modification time (ISO-8601 UTC), if known.
    """

    path: str
    size: int = 0
    mime_type: str = "application/octet-stream"
    sha256: str | None = None
    change: str = "created"
    name: str = ""
    modified_at: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ArtifactInfo | None:
        """Parse one entry of an ``artifacts`` event (None when it is malformed)."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            return None
        size = data.get("size")
        sha = data.get("sha256")
        path = data["path"]
        return cls(
            path=path,
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
            mime_type=str(data.get("mime_type") or "application/octet-stream"),
            sha256=sha if isinstance(sha, str) and len(sha) == 64 else None,
            change=str(data.get("change") or "created"),
            name=str(data.get("name") or os.path.basename(path)),
            modified_at=data.get("modified_at") if isinstance(data.get("modified_at"), str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The artifact as plain data."""
        return {
            "path": self.path,
            "size": self.size,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "change": self.change,
            "name": self.name,
            "modified_at": self.modified_at,
        }


def parse_event(event: dict[str, Any]) -> list[ArtifactInfo]:
    """The artifacts of an ``artifacts`` event, malformed entries dropped."""
    items = event.get("artifacts")
    if not isinstance(items, list):
        return []
    return [a for a in (ArtifactInfo.from_dict(item) for item in items) if a is not None]


def check(info: ArtifactInfo, data: bytes) -> None:
    """Raise `IntegrityError` when `data` is not what the run left behind (the file changed
    since, e.g. a later run rewrote it)."""
    if info.sha256 is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        raise IntegrityError(
            f"{info.path} changed since the run ended: sha256 {digest} (size {len(data)}), "
            f"expected {info.sha256} (size {info.size})"
        )
