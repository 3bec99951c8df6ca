"""Language names accepted by run_code / create_context, and their aliases."""

from __future__ import annotations

ALIASES: dict[str, str] = {"js": "javascript", "ts": "typescript", "py": "python", "sh": "bash"}


def normalize_language(language: str | None) -> str:
    """`None` → python; case-insensitive; aliases resolved. Validity is the template's call."""
    if language is None or not language.strip():
        return "python"
    name = language.strip().lower()
    return ALIASES.get(name, name)
