"""A plotly figure (object or its JSON dict) → chart dict (docs/charts.md). Runs inside the kernel.

Works on the figure's JSON (``{"data": [...], "layout": {...}}``), so it serves both a Figure
object and the ``application/vnd.plotly.v1+json`` bundle that ``fig.show()`` publishes. Arrays
may be lists, numpy arrays or plotly's base64 typed arrays (``{"dtype": "f8", "bdata": ...}``).
Traces are grouped by the axes pair they are drawn on (``make_subplots`` → a ``superchart``).
plotly.js computes some things in the browser (histogram bins, automatic ticks); those charts are
``unknown`` or have empty tick lists. `figure_to_chart` never raises.
"""

from __future__ import annotations

import array
import base64
import re
import sys
from collections import Counter
from typing import Any

from .chart_schema import capped, finish, number, scalar, text, unit_of, unknown

SOURCE = "plotly"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

_TYPED = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "f4": "f", "f8": "d"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_AXIS_TYPES = {
    "log": "log",
    "date": "datetime",
    "category": "categorical",
    "multicategory": "categorical",
    "linear": "linear",
}
_POINT_TRACES = {"scatter", "scattergl"}


def figure_to_chart(figure: Any) -> dict[str, Any]:
    """The chart dict of a plotly Figure (or its dict); ``type: "unknown"`` when unreadable."""
    try:
        return finish(_figure(_as_dict(figure)), source=SOURCE)
    except Exception as exc:
        reason = f"could not read the figure ({type(exc).__name__}: {exc})"[:300]
        return finish(unknown(reason, source=SOURCE), source=SOURCE)


def _as_dict(figure: Any) -> dict[str, Any]:
    if isinstance(figure, dict):
        return figure
    to_json = getattr(figure, "to_plotly_json", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"not a plotly figure: {type(figure).__name__}")


def _title(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("text")
    return text(value) if isinstance(value, str) else None


def _figure(fig: dict[str, Any]) -> dict[str, Any]:
    traces = [t for t in fig.get("data") or [] if isinstance(t, dict) and t.get("visible", True) is not False]
    layout = fig.get("layout") or {}
    title = _title(layout.get("title"))
    if not traces:
        return unknown("the figure has no traces", source=SOURCE, title=title)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for index, trace in enumerate(traces):
        if trace.get("type", "scatter") in _POINT_TRACES | {"bar", "box", "histogram"}:
            key: Any = (trace.get("xaxis") or "x", trace.get("yaxis") or "y")
        else:
            key = ("trace", index)  # pies and others have a domain, not axes
        groups.setdefault(key, []).append(trace)
    charts = [_group(key, group, layout) for key, group in groups.items()]
    if len(charts) == 1:
        chart = charts[0]
        chart["title"] = chart.get("title") or title
        return chart
    return {"type": "superchart", "title": title, "elements": charts}


def _group(key: Any, traces: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    try:
        kinds = {t.get("type", "scatter") for t in traces}
        if kinds <= _POINT_TRACES:
            return _points(traces, _axes(key, traces, layout))
        if kinds == {"bar"}:
            return _bars(traces, _axes(key, traces, layout))
        if kinds == {"box"}:
            return _boxes(traces, _axes(key, traces, layout))
        if kinds == {"pie"}:
            return _pie(traces[0])
        if "histogram" in kinds:
            return _sub_unknown("histogram bins are computed by plotly.js in the browser")
        return _sub_unknown(f"unsupported trace types: {', '.join(sorted(kinds))}")
    except Exception as exc:
        return _sub_unknown(f"could not read the traces ({type(exc).__name__}: {exc})"[:300])


def _sub_unknown(reason: str) -> dict[str, Any]:
    chart = unknown(reason, source=SOURCE)
    del chart["version"], chart["source"]
    return chart


# -- values ------------------------------------------------------------------------------------


def values(data: Any) -> list[Any]:
    """A plotly array as a list of JSON scalars (lists, tuples, numpy arrays, typed arrays)."""
    if data is None:
        return []
    if isinstance(data, dict) and "bdata" in data:
        return _typed_array(data)
    dtype = getattr(data, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") == "M":  # numpy datetime64
        np = sys.modules["numpy"]
        return [None if s == "NaT" else s for s in np.datetime_as_string(data).tolist()]
    if hasattr(data, "tolist"):
        data = data.tolist()
    if isinstance(data, list | tuple):
        return [scalar(v) if not isinstance(v, list | tuple) else [scalar(x) for x in v] for v in data]
    return [scalar(data)]


def _typed_array(data: dict[str, Any]) -> list[Any]:
    code = _TYPED.get(str(data.get("dtype")))
    if code is None:
        raise ValueError(f"unknown typed array dtype {data.get('dtype')!r}")
    arr = array.array(code)
    arr.frombytes(base64.b64decode(data["bdata"]))
    if sys.byteorder != "little":
        arr.byteswap()
    return [number(v) for v in arr]


def _kind_of(vals: list[Any]) -> str:
    sample = [v for v in vals if v is not None][:50]
    if not sample:
        return "linear"
    if all(isinstance(v, str) and _DATE.match(v) for v in sample):
        return "datetime"
    if any(isinstance(v, str) for v in sample):
        return "categorical"
    return "linear"


def _axes(key: Any, traces: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for name, ref in (("x", key[0]), ("y", key[1])):
        axis = layout.get(f"{name}axis{ref[1:]}") or {}
        label = _title(axis.get("title"))
        scale = _AXIS_TYPES.get(str(axis.get("type")))
        if scale is None:
            vals = [v for t in traces for v in values(t.get(name))[:50]]
            scale = _kind_of(vals)
        tickvals, ticktext = values(axis.get("tickvals")), values(axis.get("ticktext"))
        info.update(
            {
                f"{name}_label": label,
                f"{name}_unit": unit_of(label),
                f"{name}_scale": scale,
                f"{name}_ticks": tickvals,
                f"{name}_tick_labels": [str(t) for t in ticktext] if ticktext else [str(t) for t in tickvals],
            }
        )
    return info


def _xy(trace: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    xs, ys = values(trace.get("x")), values(trace.get("y"))
    if not xs and ys:
        x0, dx = number(trace.get("x0", 0)) or 0, number(trace.get("dx", 1)) or 1
        xs = [x0 + i * dx for i in range(len(ys))]
    if not ys and xs:
        y0, dy = number(trace.get("y0", 0)) or 0, number(trace.get("dy", 1)) or 1
        ys = [y0 + i * dy for i in range(len(xs))]
    return xs, ys


def _name(trace: dict[str, Any], index: int, prefix: str) -> str:
    name = trace.get("name")
    return str(name) if name not in (None, "") else f"{prefix} {index + 1}"


# -- chart types -------------------------------------------------------------------------------


def _points(traces: list[dict[str, Any]], axes: dict[str, Any]) -> dict[str, Any]:
    elements = []
    lines = scatters = 0
    for index, trace in enumerate(traces):
        xs, ys = _xy(trace)
        mode = trace.get("mode") or ("lines+markers" if len(xs) < 20 else "lines")
        kind = "line" if "lines" in mode else "scatter"
        lines, scatters = lines + (kind == "line"), scatters + (kind == "scatter")
        points = [[x, y] for x, y in zip(xs, ys, strict=False)]
        elements.append(capped(points, {"label": _name(trace, index, "Series"), "kind": kind}, "points"))
    return {"type": "scatter" if scatters > lines else "line", "title": None, **axes, "elements": elements}


def _bars(traces: list[dict[str, Any]], axes: dict[str, Any]) -> dict[str, Any]:
    orientation = "horizontal" if traces[0].get("orientation") == "h" else "vertical"
    elements = []
    for index, trace in enumerate(traces):
        xs, ys = _xy(trace)
        cats, vals = (xs, ys) if orientation == "vertical" else (ys, xs)
        group = _name(trace, index, "Group")
        for cat, value in zip(cats, vals, strict=False):
            elements.append({"label": str(cat), "group": group, "value": number(value)})
    chart = {"type": "bar", "title": None, **axes, "orientation": orientation}
    return capped(elements, chart, "elements")


def _pie(trace: dict[str, Any]) -> dict[str, Any]:
    labels = [str(v) for v in values(trace.get("labels"))]
    vals = [number(v) for v in values(trace.get("values"))]
    if not vals:  # plotly counts the labels
        counts = Counter(labels)
        labels, vals = list(counts), [float(c) for c in counts.values()]
    if not labels:
        labels = [f"Slice {i + 1}" for i in range(len(vals))]
    total = sum(v for v in vals if v and v > 0)
    hole = number(trace.get("hole")) or 0.0
    elements = []
    for label, value in zip(labels, vals, strict=False):
        fraction = (value / total) if total and value and value > 0 else 0.0
        elements.append(
            {
                "label": label,
                "angle": round(360.0 * fraction, 9),
                "fraction": round(fraction, 9),
                "radius": 1.0,
                "value": value,
            }
        )
    chart = {"type": "pie", "title": _title(trace.get("title"))}
    if hole:
        chart["hole"] = hole
    return capped(elements, chart, "elements")


def _boxes(traces: list[dict[str, Any]], axes: dict[str, Any]) -> dict[str, Any]:
    orientation = "horizontal" if traces[0].get("orientation") == "h" else "vertical"
    elements = []
    for index, trace in enumerate(traces):
        xs, ys = values(trace.get("x")), values(trace.get("y"))
        samples, cats = (ys, xs) if orientation == "vertical" else (xs, ys)
        name = _name(trace, index, "Box")
        if cats and len(cats) == len(samples):  # one box per category (px.box(x="day", y=...))
            by_cat: dict[str, list[float]] = {}
            for cat, v in zip(cats, samples, strict=False):
                by_cat.setdefault(str(cat), []).append(v)
            groups = list(by_cat.items())
        else:
            groups = [(name, samples)]
        for label, data in groups:
            stats = box_stats([v for v in data if isinstance(v, int | float)])
            if stats is not None:
                elements.append({"label": label, **stats})
    chart = {"type": "box_and_whisker", "title": None, **axes, "orientation": orientation}
    return capped(elements, chart, "elements")


def _quantile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's and plotly.js' default)."""
    pos = (len(sorted_vals) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def box_stats(data: list[float]) -> dict[str, Any] | None:
    """Quartiles, 1.5 IQR whiskers (clamped to the data) and outliers, as plotly.js draws them."""
    vals = sorted(v for v in data if number(v) is not None)
    if not vals:
        return None
    q1, med, q3 = (_quantile(vals, q) for q in (0.25, 0.5, 0.75))
    iqr = q3 - q1
    inside = [v for v in vals if q1 - 1.5 * iqr <= v <= q3 + 1.5 * iqr] or vals
    return {
        "min": inside[0],
        "first_quartile": q1,
        "median": med,
        "third_quartile": q3,
        "max": inside[-1],
        "outliers": [v for v in vals if v < inside[0] or v > inside[-1]][:10_000],
    }
