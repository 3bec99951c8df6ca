"""`AsyncArtifact`: a file a run produced, readable through the sandbox's file API."""

from __future__ import annotations

import hashlib
import os
from contextlib import aclosing
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..._exceptions import IntegrityError
from .._artifacts import ArtifactInfo, check

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox


class AsyncArtifact(ArtifactInfo):
    """A file that a run created or changed (`execution.artifacts`), with its content a call away.

    The content is read from the sandbox when asked for, so the sandbox must still be running.
    Both methods check it against the `sha256` taken when the run ended, and raise
    `IntegrityError` if the file changed since (pass `verify=False` to take it as it is).
    """

    def __init__(self, info: ArtifactInfo, sandbox: AsyncSandbox) -> None:
        """Bind `info` to `sandbox` (done by `run_code`; not needed by users)."""
        super().__init__(**{f.name: getattr(info, f.name) for f in fields(ArtifactInfo)})
        self._sandbox = sandbox

    async def read(self, verify: bool = True, request_timeout: float | None = None) -> bytes:
        """The file's content.

        Raises:
            IntegrityError: `verify` is set and the content is not what the run left behind.
            NotFoundError: the file is gone.
        """
        data = await self._sandbox.files.read(self.path, format="bytes", request_timeout=request_timeout)
        if verify:
            check(self, data)
        return data

    async def download(
        self,
        local_path: str | os.PathLike[str],
        verify: bool = True,
        request_timeout: float | None = None,
    ) -> Path:
        """Stream the file to `local_path` (into it, under `name`, when it is a directory).

        The file appears only once complete and verified (written to a temporary file, then
        renamed). Returns the path written.

        Raises:
            IntegrityError: `verify` is set and the content is not what the run left behind.
            NotFoundError: the file is gone.
        """
        target = Path(local_path)
        if target.is_dir():
            target = target / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            stream = await self._sandbox.files.read(
                self.path, format="stream", request_timeout=request_timeout
            )
            async with aclosing(stream):
                with open(tmp, "wb") as fh:
                    async for chunk in stream:
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            if verify and self.sha256 is not None and digest.hexdigest() != self.sha256:
                raise IntegrityError(
                    f"{self.path} changed since the run ended: sha256 {digest.hexdigest()} "
                    f"(size {size}), expected {self.sha256} (size {self.size})"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
