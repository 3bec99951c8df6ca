"""A matplotlib Figure → chart dict (docs/charts.md). Runs inside the kernel.

The type of each Axes is read from its artists: Line2D → line (marker-only lines count as
scatter), PathCollection → scatter, BarContainer → bar, Wedge → pie, and the statistics that
``Axes.bxp`` was given → box_and_whisker (recorded by `record_boxplot`, installed by display.py).
Reference lines (``axhline``), error bars, filled bands and legends are decorations and are left
out. Several data Axes make a ``superchart``; colorbars are not data Axes. Anything else gives
``{"type": "unknown", "reason": ...}``: `figure_to_chart` never raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import matplotlib.dates as mdates
from matplotlib.category import StrCategoryConverter
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.lines import Line2D
from matplotlib.patches import Wedge
from matplotlib.ticker import FixedLocator

from . import chart_schema
from .chart_schema import capped, finish, number, text, unit_of, unknown

SOURCE = "matplotlib"
_NONE = (None, "None", "none", "", " ")
_BOXES_ATTR = "_nullspace_boxplots"
_HIST_ATTR = "_nullspace_histogram"


def figure_to_chart(figure: Any) -> dict[str, Any]:
    """The chart dict of a matplotlib Figure; ``type: "unknown"`` when it cannot be read."""
    try:
        return finish(_figure(figure), source=SOURCE)
    except Exception as exc:  # never break the user's display
        return finish(unknown(_why(exc), source=SOURCE), source=SOURCE)


def _why(exc: BaseException) -> str:
    return f"could not read the figure ({type(exc).__name__}: {exc})"[:300]


def _figure(figure: Any) -> dict[str, Any]:
    suptitle = _suptitle(figure)
    axes = [ax for ax in figure.get_axes() if _is_data_axes(ax)]
    if not axes:
        return unknown("the figure has no axes", source=SOURCE, title=suptitle)
    charts = [_safe_axes_chart(ax) for ax in axes]
    if len(charts) == 1:
        chart = charts[0]
        if chart.get("title") is None:
            chart["title"] = suptitle
        return chart
    return {"type": "superchart", "title": suptitle, "elements": charts}


def _suptitle(figure: Any) -> str | None:
    sup = getattr(figure, "_suptitle", None)
    return text(sup.get_text()) if sup is not None else None


def _is_data_axes(ax: Any) -> bool:
    return ax.get_visible() and ax.get_label() != "<colorbar>" and not hasattr(ax, "_colorbar")


def _safe_axes_chart(ax: Any) -> dict[str, Any]:
    try:
        return _axes_chart(ax)
    except Exception as exc:
        chart = unknown(_why(exc), source=SOURCE)
        del chart["version"], chart["source"]
        return chart


def _title(ax: Any) -> str | None:
    for loc in ("center", "left", "right"):
        title = text(ax.get_title(loc=loc))
        if title:
            return title
    return None


# -- classification --------------------------------------------------------------------------


def _axes_chart(ax: Any) -> dict[str, Any]:
    title = _title(ax)
    boxes = [b for b in getattr(ax, _BOXES_ATTR, []) if _still_drawn(ax, b["artists"])]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    decorations: set[int] = set()
    labels: dict[int, str] = {}
    for box in boxes:
        decorations.update(map(id, box["artists"]))
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            data_line, caps, bar_lines = container.lines
            decorations.update(map(id, [*caps, *bar_lines]))
            if data_line is not None and not container.get_label().startswith("_"):
                labels[id(data_line)] = container.get_label()
    bar_patches = {id(p) for c in bars for p in c.patches}

    lines = [
        ln
        for ln in ax.get_lines()
        if id(ln) not in decorations and ln.get_visible() and ln.get_transform() is ax.transData
    ]
    scatters = [
        c
        for c in ax.collections
        if isinstance(c, PathCollection) and id(c) not in decorations and c.get_visible()
    ]
    others = [  # data we do not chart: images, meshes, contours, patches drawn by hand
        a
        for a in [*ax.collections, *ax.images, *ax.patches]
        if id(a) not in decorations
        and id(a) not in bar_patches
        and not isinstance(a, PathCollection | PolyCollection | LineCollection | Wedge)
        and a.get_visible()
    ]
    wedges = [p for p in ax.patches if isinstance(p, Wedge) and p.get_visible()]

    kinds = [name for name, present in (("box", boxes), ("pie", wedges), ("bar", bars)) if present]
    if lines or scatters:
        kinds.append("points")
    if others:
        what = sorted({type(a).__name__ for a in others})
        return unknown(f"unsupported artists: {', '.join(what)}", source=SOURCE, title=title)
    if not kinds:
        return unknown("the axes hold no data", source=SOURCE, title=title)
    if len(kinds) > 1:
        return unknown(f"the axes mix several chart types ({', '.join(kinds)})", source=SOURCE, title=title)
    kind = kinds[0]
    if kind == "pie":
        return _pie(ax, wedges, title)
    chart = {"type": "", "title": title, **_axes_info(ax)}
    if kind == "box":
        return _box(ax, boxes, chart)
    if kind == "bar":
        return _bar(ax, bars, chart)
    return _points(ax, lines, scatters, labels, chart)


def _still_drawn(ax: Any, artists: list[Any]) -> bool:
    children = set(map(id, ax.get_children()))
    return bool(artists) and all(id(a) in children for a in artists)


# -- axes: labels, scales, ticks -----------------------------------------------------------------


class _Axis:
    """How to turn one axis' internal floats back into user values."""

    def __init__(self, axis: Any, scale: str) -> None:
        self.axis = axis
        self.kind = scale
        self.to_value: Callable[[float], Any] = _plain
        converter = _converter(axis)
        formatter = axis.get_major_formatter()
        period = _period_converter(converter, formatter)
        if period is not None:
            self.kind, self.to_value = "datetime", period
        elif isinstance(converter, StrCategoryConverter):
            mapping = getattr(axis.get_units(), "_mapping", {}) or {}
            names = {int(v): str(k) for k, v in mapping.items()}
            self.kind, self.to_value = "categorical", functools.partial(_category, names)
        elif _is_date_axis(converter, formatter):
            tz = getattr(formatter, "_tz", None)
            self.kind, self.to_value = "datetime", functools.partial(_date, tz)


def _converter(axis: Any) -> Any:
    get = getattr(axis, "get_converter", None)
    return get() if callable(get) else getattr(axis, "converter", None)


def _is_date_axis(converter: Any, formatter: Any) -> bool:
    names = ("DateConverter", "_SwitchableDateConverter", "ConciseDateConverter")
    date_converters = tuple(c for c in (getattr(mdates, n, None) for n in names) if isinstance(c, type))
    date_formatters = (mdates.DateFormatter, mdates.AutoDateFormatter, mdates.ConciseDateFormatter)
    return isinstance(converter, date_converters) or isinstance(formatter, date_formatters)


def _period_converter(converter: Any, formatter: Any) -> Callable[[float], Any] | None:
    """pandas plots a regular DatetimeIndex as Period ordinals (``PeriodConverter``)."""
    if type(converter).__name__ != "PeriodConverter":
        return None
    freq = getattr(formatter, "freq", None)
    if freq is None:
        return None
    import pandas as pd

    def convert(value: float) -> Any:
        ordinal = number(value)
        if ordinal is None:
            return None
        return pd.Period(ordinal=int(round(ordinal)), freq=freq).to_timestamp().isoformat()

    return convert


def _plain(value: float) -> Any:
    return number(value)


def _date(tz: Any, value: float) -> Any:
    if number(value) is None:
        return None
    try:
        return mdates.num2date(value, tz=tz).isoformat()
    except (ValueError, OverflowError):
        return None


def _category(names: dict[int, str], value: float) -> Any:
    v = number(value)
    if v is None:
        return None
    index = int(round(v))
    return names.get(index, v) if abs(v - index) < 1e-9 else v


def _axes_info(ax: Any) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        label = text(axis.get_label().get_text())
        conv = _Axis(axis, axis.get_scale())
        ticks, tick_labels = _ticks(axis, conv)
        info.update(
            {
                f"{name}_label": label,
                f"{name}_unit": unit_of(label),
                f"{name}_scale": conv.kind,
                f"{name}_ticks": ticks,
                f"{name}_tick_labels": tick_labels,
            }
        )
        info[f"_{name}"] = conv
    return info


def _ticks(axis: Any, conv: _Axis) -> tuple[list[Any], list[str]]:
    """The major ticks inside the view, as values and as the labels a draw would show."""
    try:
        locs = list(axis.get_majorticklocs())
        labels = list(axis.get_major_formatter().format_ticks(locs))
    except Exception:
        return [], []
    lo, hi = sorted(float(v) for v in axis.get_view_interval())
    slack = (hi - lo) * 1e-9 + 1e-12
    ticks, tick_labels = [], []
    for loc, label in zip(locs, labels, strict=False):
        if lo - slack <= loc <= hi + slack:
            ticks.append(conv.to_value(loc))
            tick_labels.append(text(label) or "")
    return ticks, tick_labels


def _pop_axes(chart: dict[str, Any]) -> tuple[_Axis, _Axis]:
    return chart.pop("_x"), chart.pop("_y")


# -- chart types ---------------------------------------------------------------------------------


def _series_label(label: Any, index: int, prefix: str = "Series") -> str:
    label = str(label or "")
    return f"{prefix} {index + 1}" if not label or label.startswith("_") else label


def _points(ax: Any, lines: list[Any], scatters: list[Any], labels: dict[int, str], chart: dict) -> dict:
    xconv, yconv = _pop_axes(chart)
    elements = []
    n_line = n_scatter = 0
    for artist in [*lines, *scatters]:
        if isinstance(artist, Line2D):
            xy = artist.get_xydata()
            marker_only = artist.get_linestyle() in _NONE and artist.get_marker() not in _NONE
            kind = "scatter" if marker_only else "line"
            label = labels.get(id(artist), artist.get_label())
        else:
            xy = artist.get_offsets()
            kind = "scatter"
            label = artist.get_label()
        rows, total = _rows(xy, chart_schema.MAX_POINTS)
        points = [[xconv.to_value(x), yconv.to_value(y)] for x, y in rows]
        element = {"label": _series_label(label, len(elements)), "kind": kind}
        elements.append(capped(points, element, "points", total))
        if kind == "line":
            n_line += 1
        else:
            n_scatter += 1
    chart["type"] = "scatter" if n_scatter > n_line else "line"
    chart["elements"] = elements
    return chart


def _rows(xy: Any, limit: int) -> tuple[list[tuple[float, float]], int]:
    """The first `limit` (x, y) rows as floats (masked → NaN), and how many there are."""
    import numpy as np

    arr = np.ma.filled(np.ma.asarray(xy, dtype=float), np.nan)
    if arr.ndim != 2 or arr.shape[1] < 2:
        return [], 0
    return [(float(x), float(y)) for x, y in arr[:limit, :2]], int(arr.shape[0])


def _bar(ax: Any, bars: list[Any], chart: dict) -> dict:
    xconv, yconv = _pop_axes(chart)
    orientations = {getattr(c, "orientation", None) or _guess_orientation(c) for c in bars}
    orientation = orientations.pop() if len(orientations) == 1 else "vertical"
    axis, cat_conv = ("x", xconv) if orientation == "vertical" else ("y", yconv)
    tick_names = list(zip(chart[f"{axis}_ticks"], chart[f"{axis}_tick_labels"], strict=False))
    elements = []
    for index, container in enumerate(bars):
        hist = getattr(container, _HIST_ATTR, False)
        label = container.get_label()
        if hist and label.startswith("_") and container.patches:
            label = container.patches[0].get_label()  # hist() labels the first patch
        group = _series_label(label, index, "Group")
        values = getattr(container, "datavalues", None)
        patches = list(container.patches)
        if values is None or len(values) != len(patches):
            values = [p.get_height() if orientation == "vertical" else p.get_width() for p in patches]
        spans = [_span(p, orientation) for p in patches]
        names = _bar_names(spans, cat_conv, tick_names, hist)
        for name, value in zip(names, values, strict=False):
            elements.append({"label": name, "group": group, "value": number(value)})
    chart["type"] = "bar"
    chart["orientation"] = orientation
    return capped(elements, chart, "elements")


def _guess_orientation(container: Any) -> str:
    patches = list(container.patches)
    if len(patches) < 2:
        return "vertical"
    widths = {round(p.get_width(), 12) for p in patches}
    heights = {round(p.get_height(), 12) for p in patches}
    if len(widths) == 1 and len(heights) > 1:
        return "vertical"
    if len(heights) == 1 and len(widths) > 1:
        return "horizontal"
    xs = {round(p.get_x(), 12) for p in patches}
    return "horizontal" if len(xs) == 1 else "vertical"  # equal bars: who shares a base


def _span(patch: Any, orientation: str) -> tuple[float, float]:
    if orientation == "vertical":
        start, size = patch.get_x(), patch.get_width()
    else:
        start, size = patch.get_y(), patch.get_height()
    return float(start), float(start) + float(size)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _bar_names(
    spans: list[tuple[float, float]], conv: _Axis, ticks: list[tuple[Any, str]], hist: bool
) -> list[str]:
    """A category name per bar: its category; its bin (histograms); the tick label at its
    centre; the nearest tick's label when the ticks were placed by hand (grouped bars sit beside
    their tick); else its centre."""
    centres = [(a + b) / 2 for a, b in spans]
    if conv.kind in ("categorical", "datetime"):
        return [str(conv.to_value(c)) for c in centres]
    if hist:
        return [f"{_g(a)}–{_g(b)}" for a, b in spans]
    numeric = [(float(t), label) for t, label in ticks if isinstance(t, int | float) and label]
    exact = [next((label for t, label in numeric if _close(t, c)), None) for c in centres]
    if numeric and all(n is not None for n in exact):
        return [str(n) for n in exact]
    if numeric and isinstance(conv.axis.get_major_locator(), FixedLocator):
        return [min(numeric, key=lambda tick, c=c: abs(tick[0] - c))[1] for c in centres]
    return [_g(c) for c in centres]


def _g(value: float) -> str:
    return f"{value:g}"


def _pie(ax: Any, wedges: list[Any], title: str | None) -> dict:
    elements = []
    for index, wedge in enumerate(wedges):
        angle = abs(float(wedge.theta2) - float(wedge.theta1))
        elements.append(
            {
                "label": _series_label(wedge.get_label(), index, "Slice"),
                "angle": round(angle, 9),
                "fraction": round(angle / 360.0, 9),
                "radius": number(wedge.r),
            }
        )
    return capped(elements, {"type": "pie", "title": title}, "elements")


def _box(ax: Any, boxes: list[dict[str, Any]], chart: dict) -> dict:
    xconv, yconv = _pop_axes(chart)
    elements = []
    orientation = boxes[0]["orientation"]
    axis = "x" if orientation == "vertical" else "y"
    ticks = dict(zip(chart[f"{axis}_ticks"], chart[f"{axis}_tick_labels"], strict=False))
    for box in boxes:
        for stats, position in zip(box["stats"], box["positions"], strict=False):
            label = stats.get("label")
            if label is None or str(label) == "":
                label = ticks.get(position, ticks.get(float(position))) or _g(position)
            element = {
                "label": str(label),
                "min": number(stats.get("whislo")),
                "first_quartile": number(stats.get("q1")),
                "median": number(stats.get("med")),
                "third_quartile": number(stats.get("q3")),
                "max": number(stats.get("whishi")),
                "outliers": [number(v) for v in list(stats.get("fliers", []))[:10_000]],
            }
            if stats.get("mean") is not None:
                element["mean"] = number(stats.get("mean"))
            elements.append(element)
    chart["type"] = "box_and_whisker"
    chart["orientation"] = orientation
    return capped(elements, chart, "elements")


# -- recording box plots (patched into Axes.bxp) -------------------------------------------------


def record_boxplot(ax: Any, bxpstats: Any, args: tuple, kwargs: dict, artists: Any) -> None:
    """Remember what `Axes.bxp` drew: the statistics are not recoverable from the lines."""
    stats = [dict(s) for s in bxpstats]
    positions = kwargs.get("positions", args[0] if args else None)
    if positions is None:
        positions = list(range(1, len(stats) + 1))
    orientation = kwargs.get("orientation") or "vertical"
    if kwargs.get("vert") is False:
        orientation = "horizontal"
    drawn = [a for group in (artists or {}).values() for a in group]
    boxes = list(getattr(ax, _BOXES_ATTR, []))
    boxes.append(
        {
            "stats": stats,
            "positions": [float(p) for p in positions],
            "orientation": orientation,
            "artists": drawn,
        }
    )
    setattr(ax, _BOXES_ATTR, boxes)


def mark_histogram(result: Any) -> None:
    """Tag the BarContainer(s) that `Axes.hist` returned: their bars are bins, not categories."""
    patches = result[2] if isinstance(result, tuple) and len(result) == 3 else None
    containers = patches if isinstance(patches, list) else [patches]
    for container in containers:
        if isinstance(container, BarContainer):
            setattr(container, _HIST_ATTR, True)


def patch_axes(axes_module: Any) -> None:
    """Wrap ``Axes.bxp`` (box plots keep their statistics) and ``Axes.hist`` (histogram bars
    are known as bins). Idempotent; the wrappers never change what the originals return."""
    cls = axes_module.Axes
    if getattr(cls.bxp, "_nullspace_wrapped", False):
        return
    original_bxp, original_hist = cls.bxp, cls.hist

    @functools.wraps(original_bxp)
    def bxp(self: Any, bxpstats: Any, *args: Any, **kwargs: Any) -> Any:
        artists = original_bxp(self, bxpstats, *args, **kwargs)
        try:
            record_boxplot(self, bxpstats, args, kwargs, artists)
        except Exception:
            pass
        return artists

    @functools.wraps(original_hist)
    def hist(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_hist(self, *args, **kwargs)
        try:
            mark_histogram(result)
        except Exception:
            pass
        return result

    bxp._nullspace_wrapped = True  # type: ignore[attr-defined]
    cls.bxp, cls.hist = bxp, hist
