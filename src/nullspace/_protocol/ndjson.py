"""NDJSON encoding for execute streams: one object per line, ASCII only.

ASCII-only output matters: httpx splits lines on U+2028/U+2029 and other separators, so a raw
U+2028 inside stdout text would cut an event in two.
"""

from __future__ import annotations

import json
from typing import Any

MEDIA_TYPE = "application/x-ndjson"
# Event types after which a stream always ends (a run's, a command's). Writers send the last
# event with the end of the body, readers read up to the end of the body: that keeps the
# connection reusable.
FINAL_TYPES = frozenset({"end_of_execution", "end"})


def encode(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def decode(line: str | bytes) -> dict[str, Any] | None:
    """Decode one line; blank or non-object lines give None (readers skip them)."""
    line = line.strip()
    if not line:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("type"), str) else None
