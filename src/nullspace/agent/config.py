"""Agent settings: the template's kernels, workdir and prestart list, language names, tunables.

Stdlib only and cheap to import: ``__main__`` reads it before it launches the boot kernel."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_TEMPLATE_JSON = "/opt/nullspace/template.json"
DEFAULT_RUNTIME_DIR = "/run/nullspace"
DEFAULT_KERNELS = {"python": "python3"}
PRESTART_ENV = "NULLSPACE_PRESTART"
PRELOAD_ENV = "NULLSPACE_PRELOAD"
MAX_CONTEXTS_ENV = "NULLSPACE_MAX_CONTEXTS"  # the server's Settings.max_contexts
"""Set by the server for warm-pool sandboxes only: Python modules to import before "ready"."""
AGENT_ONLY_ENV = (PRELOAD_ENV,)
"""Variables for the agent alone: kernels and commands do not get them."""

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
    max_contexts: int = 16
    """Contexts (kernels) a sandbox may have at once; one more is refused with 409."""
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
    preload: tuple[str, ...] = ()
    """Python modules the boot kernel imports before the agent reports ready (``PRELOAD_ENV``)."""

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


def load_prestart(template_json: str) -> list[str] | None:
    """template.json ``prestart`` (None: the file or key is missing or unusable)."""
    try:
        with open(template_json, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    value = data.get("prestart") if isinstance(data, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return [normalize_language(v) for v in value]


def resolve_prestart(
    template: Iterable[str] | None,
    kernels: Mapping[str, str],
    boot_language: str,
    override: str | None = None,
) -> tuple[str, ...]:
    """The languages to prestart: the override (``NULLSPACE_PRESTART``) if set, else the
    template's list; only languages the template has, never the boot language, no repeats."""
    if override is not None:
        text = override.strip().lower()
        if text in ("", "none", "0", "false", "no"):
            wanted: Iterable[str] = ()
        elif text == "all":
            wanted = list(kernels)
        else:
            wanted = [normalize_language(part) for part in text.split(",") if part.strip()]
    else:
        wanted = template or ()
    chosen: list[str] = []
    for language in wanted:
        if language in kernels and language != boot_language and language not in chosen:
            chosen.append(language)
    return tuple(chosen)


def prestart_override() -> str | None:
    return os.environ.get(PRESTART_ENV)


def preload_modules(value: str | None) -> tuple[str, ...]:
    """``numpy,pandas`` → the module names (the server validated them against the spec)."""
    names = (part.strip() for part in (value or "").split(","))
    return tuple(m for m in names if m and all(p.isidentifier() for p in m.split(".")))
