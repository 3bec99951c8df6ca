"""Our execute events → the lines E2B's code-interpreter server writes (§4.3). Pure functions.

Differences in the data itself are translated here: a result's MIME bundle becomes E2B's flat
keys (`text`, `png`, ...), our chart MIME type its `chart`, a DataFrame's Table Schema its
`data` (column lists, as pandas' ``to_dict(orient="list")``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

CHART_MIME = "application/vnd.nullspace.chart+json"
TABLE_MIME = "application/vnd.dataresource+json"
RESULT_KEYS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}
_CHART_ONLY_OURS = ("version", "source")

Event = dict[str, Any]


def _strip_quotes(text: str) -> str:
    """E2B's server drops one pair of enclosing quotes from `text` ('abc' → abc)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _columns(table: Any) -> dict[str, list[Any]] | None:
    """Table Schema (``{"schema": {"fields", "primaryKey"}, "data": [rows]}``) → column lists,
    without the index columns (what ``DataFrame.to_dict(orient="list")`` gives)."""
    if not isinstance(table, dict) or not isinstance(table.get("schema"), dict) or not isinstance(table.get("data"), list):
        return None
    schema = table["schema"]
    index = set(schema.get("primaryKey") or [])
    names = [f.get("name") for f in schema.get("fields") or [] if isinstance(f, dict)]
    columns = [n for n in names if isinstance(n, str) and n not in index]
    rows = [r for r in table["data"] if isinstance(r, dict)]
    return {name: [row.get(name) for row in rows] for name in columns}


def result(event: Event) -> Event:
    bundle = event.get("data") if isinstance(event.get("data"), dict) else {}
    out: Event = {"type": "result"}
    extra: dict[str, Any] = {}
    for mime, value in bundle.items():
        if mime in RESULT_KEYS:
            key = RESULT_KEYS[mime]
            out[key] = _strip_quotes(value) if key == "text" and isinstance(value, str) else value
        elif mime == CHART_MIME:
            if isinstance(value, dict):
                out["chart"] = {k: v for k, v in value.items() if k not in _CHART_ONLY_OURS}
        elif mime == TABLE_MIME:
            columns = _columns(value)
            if columns is not None:
                out["data"] = columns
        else:
            extra[mime] = value
    out["extra"] = extra
    out["is_main_result"] = bool(event.get("is_main_result"))
    return out


def translate(event: Event) -> Event | None:
    """One of our events → E2B's line, or None for events E2B has no use for."""
    kind = event.get("type")
    if kind in ("stdout", "stderr"):
        stamp = event.get("timestamp") or datetime.now(UTC).isoformat()
        return {"type": kind, "text": str(event.get("text", "")), "timestamp": stamp}
    if kind == "result":
        return result(event)
    if kind == "error":
        return {"type": "error", "name": str(event.get("name", "")), "value": str(event.get("value", "")),
                "traceback": str(event.get("traceback", ""))}  # fmt: skip
    if kind == "number_of_executions":
        return {"type": kind, "execution_count": event.get("execution_count")}
    if kind == "limit":  # E2B has no such event: tell the user on stderr, as our own notices do
        return {"type": "stderr", "text": f"\n[nullspace: {event.get('message', 'a sandbox limit was reached')}]\n",
                "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
    if kind == "keepalive":
        return {"type": "keepalive"}
    if kind == "end_of_execution":
        return {"type": "end_of_execution"}
    return None  # artifacts, and anything newer
