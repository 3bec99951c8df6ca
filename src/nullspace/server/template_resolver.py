"""Template name → built root filesystem; builds built-in templates on first use.

The build runs in a child process (`nullspace template build`) started through the reaper:
the server reaps every child itself, so it cannot run the builder's own subprocesses in-process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from .. import templates
from .._exceptions import TemplateBuildError, TemplateNotFoundError
from ..runtime.reaper import Reaper


class TemplateResolver:
    def __init__(self, data_dir: Path, reaper: Reaper) -> None:
        self.data_dir = data_dir
        self.reaper = reaper
        self._build_lock = asyncio.Lock()

    async def resolve(self, name: str) -> templates.TemplateImage:
        image = templates.find_template(name, self.data_dir)
        if image is not None:
            return image
        if name not in templates.builtin_names():
            known = sorted({t.name for t in templates.list_templates(self.data_dir)} | set(templates.builtin_names()))
            raise TemplateNotFoundError(f"template {name!r} does not exist; known templates: {', '.join(known)}")
        async with self._build_lock:
            image = templates.find_template(name, self.data_dir)
            if image is None:
                await self._build(name)
                image = templates.find_template(name, self.data_dir)
        if image is None:
            raise TemplateBuildError(f"template {name!r} was built but cannot be found")
        return image

    async def _build(self, name: str) -> None:
        log_path = self.data_dir / "logs" / f"build-{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log_file:
            _, exited = await self.reaper.spawn(
                [sys.executable, "-m", "nullspace", "template", "build", name, "--data-dir", str(self.data_dir)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            )
            code = await exited
        if code != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise TemplateBuildError(f"building template {name!r} failed (exit {code}); log: {log_path}", log=tail)
