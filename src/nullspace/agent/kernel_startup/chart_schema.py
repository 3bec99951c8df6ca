"""Pieces of the chart dict shared by the matplotlib and plotly extractors (docs/charts.md).

Everything here returns plain JSON data: str, bool, None, finite float/int, lists and dicts.
NaN and infinities become ``None``; dates become ISO-8601 strings.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from typing import Any

CHART_MIME = "application/vnd.nullspace.chart+json"
SCHEMA_VERSION = 1

MAX_POINTS = 10_000
"""Points (or bars, wedges) kept per element; the rest is cut and the element says so."""


_UNIT = re.compile(r"[(\[]([^()\[\]]+)[)\]]\s*$")
_MATH_WRAPPERS = ("\\mathdefault{", "\\mathregular{", "\\mathrm{", "\\mathit{", "\\mathbf{")
_MATH_SYMBOLS = (("\\times", "×"), ("\\cdot", "·"), ("\\minus", "-"), ("\\%", "%"), ("\\,", " "))
_SIMPLE_GROUP = re.compile(r"([\^_])\{([^{}]*)\}")


def unknown(reason: str, *, source: str, title: str | None = None) -> dict[str, Any]:
    """A chart we could not understand: its type is ``unknown`` and ``reason`` says why."""
    return {
        "type": "unknown",
        "version": SCHEMA_VERSION,
        "source": source,
        "title": title,
        "reason": reason,
        "elements": [],
    }


def text(value: Any) -> str | None:
    """A label or title: None for empty, mathtext markup removed (``$10^{2}$`` → ``10^2``)."""
    if value is None:
        return None
    s = str(value)
    dollars = s.count("$") - s.count("\\$")
    if dollars >= 2 and dollars % 2 == 0:  # matplotlib's rule for mathtext
        s = _strip_mathtext(s)
    s = s.replace("\u2212", "-").strip()
    return s or None


def _strip_mathtext(s: str) -> str:
    for wrapper in _MATH_WRAPPERS:
        while (start := s.find(wrapper)) >= 0:
            depth, end = 1, start + len(wrapper)
            while end < len(s) and depth:
                depth += {"{": 1, "}": -1}.get(s[end], 0)
                end += 1
            inner = s[start + len(wrapper) : end - 1] if depth == 0 else s[start + len(wrapper) :]
            s = s[:start] + inner + s[end:]
    for symbol, plain in _MATH_SYMBOLS:
        s = s.replace(symbol, plain)
    s = _SIMPLE_GROUP.sub(r"\1\2", s)
    return s.replace("$", "")


def unit_of(label: str | None) -> str | None:
    """The unit written at the end of an axis label: ``Distance (km)`` → ``km``, ``T [°C]`` → ``°C``."""
    if not label:
        return None
    match = _UNIT.search(label)
    return match.group(1).strip() or None if match else None


def number(value: Any) -> float | int | None:
    """A finite float, a Python int, or None (NaN, inf, masked, not a number)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    if kind in ("i", "u"):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def scalar(value: Any) -> Any:
    """One data value as JSON: a number, an ISO date string, a string, or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    iso = getattr(value, "isoformat", None)  # pandas.Timestamp
    if callable(iso):
        try:
            return str(iso())
        except Exception:
            return str(value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") in "mM":  # numpy datetime64/timedelta64
        return str(value) if str(value) != "NaT" else None
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict):
        try:
            value = value.item()  # numpy scalar → python scalar
        except Exception:
            return str(value)
        if isinstance(value, str | _dt.date):
            return scalar(value)
    if isinstance(value, int | float | bool):
        return number(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def capped(items: list[Any], element: dict[str, Any], key: str, total: int | None = None) -> dict[str, Any]:
    """Put `items` under `key`, keeping at most `MAX_POINTS`; when some were cut, ``truncated``
    and ``total`` (`total`: the count before the caller already cut `items`)."""
    total = len(items) if total is None else total
    if total > MAX_POINTS or len(items) > MAX_POINTS:
        element[key] = items[:MAX_POINTS]
        element["truncated"] = True
        element["total"] = total
    else:
        element[key] = items
    return element


def jsonable(value: Any) -> Any:
    """Deep-convert to JSON data (a last line of defence: the extractors already do)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return number(value)
    return scalar(value)


def finish(chart: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Stamp version/source and make sure the chart serializes as strict JSON."""
    chart = {"type": chart.get("type", "unknown"), "version": SCHEMA_VERSION, "source": source, **chart}
    chart = jsonable(chart)
    json.dumps(chart, allow_nan=False)  # raises on anything that slipped through
    return chart
