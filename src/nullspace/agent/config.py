"""Agent settings: the template's kernels and workdir, language names, tunables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_TEMPLATE_JSON = "/opt/nullspace/template.json"
DEFAULT_RUNTIME_DIR = "/run/nullspace"
DEFAULT_KERNELS = {"python": "python3"}

# The same aliases as nullspace._protocol.languages (which the agent cannot import).
ALIASES = {"js": "javascript", "ts": "typescript", "py": "python", "sh": "bash"}

# IPC socket paths are <runtime_dir>/k<n>-ipc-<port>; a unix socket path must stay < 108 bytes.
MAX_RUNTIME_DIR = 80


class ConfigError(Exception):
    """The template description or an option is unusable."""


def normalize_language(language: str | None) -> str:
    """None/"" → python; case-insensitive; js → javascript, ts → typescript."""
    if language is None or not language.strip():
        return "python"
    name = language.strip().lower()
    return ALIASES.get(name, name)


@dataclass(frozen=True)
class AgentConfig:
    kernels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_KERNELS))
    """language → kernelspec name"""
    workdir: str = field(default_factory=os.getcwd)
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    max_output_bytes: int = 8 * 1024 * 1024
    chunk_bytes: int = 64 * 1024
    keepalive_interval: float = 5.0
    interrupt_grace: float = 3.0
    startup_timeout: float = 60.0
    poll_interval: float = 0.3
    oom_score_adj: int = 500
    kernel_output: str = "null"
    """"null": kernel process stdout/stderr go to /dev/null; "inherit": to the agent's."""
    boot_language: str = "python"
    prestart: tuple[str, ...] = ()
    """Languages whose default context starts in the background after boot (languages.py)."""
    prestart_delay: float = 1.0
    """Seconds the sandbox must be idle before each prestart."""

    def kernel_for(self, language: str) -> str | None:
        """The kernelspec name for a normalized language (typescript falls back to javascript)."""
        if language in self.kernels:
            return self.kernels[language]
        if language == "typescript" and "javascript" in self.kernels:
            return self.kernels["javascript"]
        return None

    def supported(self) -> list[str]:
        names = set(self.kernels)
        if "javascript" in names:
            names.add("typescript")
        return sorted(names)


def load_template(path: str) -> tuple[dict[str, str], str | None]:
    """Read ``{"kernels": {...}, "workdir": ...}``; a missing file gives the python default."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return dict(DEFAULT_KERNELS), None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    kernels = data.get("kernels") or dict(DEFAULT_KERNELS)
    if not isinstance(kernels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in kernels.items()
    ):
        raise ConfigError(f"{path}: 'kernels' must map language names to kernelspec names")
    workdir = data.get("workdir")
    if workdir is not None and not isinstance(workdir, str):
        raise ConfigError(f"{path}: 'workdir' must be a string")
    return {normalize_language(k): v for k, v in kernels.items()}, workdir
