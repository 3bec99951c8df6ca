"""The plotly chart extractor (kernel_startup/charts_plotly.py), on figure objects and on the JSON
that `fig.show()` publishes (base64 typed arrays included)."""

from __future__ import annotations

import json
from typing import Any

import pytest

go = pytest.importorskip("plotly.graph_objects")
pio = pytest.importorskip("plotly.io")

from nullspace.agent.kernel_startup.charts_plotly import box_stats, figure_to_chart, values  # noqa: E402


def both(fig: Any) -> dict[str, Any]:
    """The chart of the object and of its published JSON must agree."""
    chart = figure_to_chart(fig)
    assert figure_to_chart(json.loads(pio.to_json(fig))) == chart
    json.dumps(chart, allow_nan=False)
    assert chart["version"] == 1 and chart["source"] == "plotly"
    return chart


def test_line_and_markers() -> None:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[1, 2, 3], y=[4, 4, 4], mode="lines", name="flat"))
    fig.add_trace(go.Scatter(x=[1, 2], y=[1, 2], mode="markers"))
    fig.update_layout(title={"text": "T"}, xaxis_title="Time (h)", yaxis_title="Load [%]")
    chart = both(fig)
    assert (chart["type"], chart["title"], chart["x_unit"], chart["y_unit"]) == ("line", "T", "h", "%")
    assert chart["elements"] == [
        {"label": "flat", "kind": "line", "points": [[1, 4], [2, 4], [3, 4]]},
        {"label": "Series 2", "kind": "scatter", "points": [[1, 1], [2, 2]]},
    ]


def test_numpy_arrays_and_dates() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    fig = go.Figure(go.Scatter(x=pd.date_range("2024-01-01", periods=2), y=np.array([1.5, np.nan])))
    chart = both(fig)
    assert chart["x_scale"] == "datetime"
    (element,) = chart["elements"]
    assert element["points"][0][0].startswith("2024-01-01") and element["points"][1][1] is None


def test_bars_equal_values_and_horizontal() -> None:
    chart = both(go.Figure(go.Bar(x=["a", "b"], y=[2, 2], name="n")))
    assert (chart["type"], chart["orientation"], chart["x_scale"]) == ("bar", "vertical", "categorical")
    assert chart["elements"] == [
        {"label": "a", "group": "n", "value": 2},
        {"label": "b", "group": "n", "value": 2},
    ]
    chart = both(go.Figure(go.Bar(y=["a"], x=[3], orientation="h")))
    assert chart["orientation"] == "horizontal" and chart["elements"][0]["value"] == 3


def test_pie_with_and_without_values() -> None:
    chart = both(go.Figure(go.Pie(labels=["x", "y"], values=[1, 1], hole=0.4)))
    assert [(e["label"], e["angle"]) for e in chart["elements"]] == [("x", 180.0), ("y", 180.0)]
    assert chart["hole"] == 0.4
    chart = both(go.Figure(go.Pie(labels=["x", "x", "y"])))  # plotly counts labels
    assert [(e["label"], e["value"]) for e in chart["elements"]] == [("x", 2.0), ("y", 1.0)]


def test_box_per_category_and_stats() -> None:
    fig = go.Figure(go.Box(x=["a"] * 5 + ["b"] * 2, y=[1, 2, 3, 4, 100, 5, 5]))
    chart = both(fig)
    a, b = chart["elements"]
    assert (a["label"], a["median"], a["max"], a["outliers"]) == ("a", 3.0, 4, [100])
    assert (b["min"], b["first_quartile"], b["max"]) == (5, 5.0, 5)
    assert box_stats([]) is None


def test_subplots_log_axes_and_unknowns() -> None:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3)
    fig.add_trace(go.Scatter(x=[1, 10], y=[1, 2]), 1, 1)
    fig.add_trace(go.Histogram(x=[1, 2, 2]), 1, 2)
    fig.add_trace(go.Heatmap(z=[[1, 2]]), 1, 3)
    fig.update_xaxes(type="log", row=1, col=1)
    chart = both(fig)
    assert chart["type"] == "superchart"
    line, hist, heat = chart["elements"]
    assert (line["type"], line["x_scale"]) == ("line", "log")
    assert hist["type"] == heat["type"] == "unknown" and "histogram" in hist["reason"]


def test_empty_and_broken_figures_are_unknown() -> None:
    assert both(go.Figure())["type"] == "unknown"
    assert figure_to_chart(object())["type"] == "unknown"
    broken = figure_to_chart({"data": [{"type": "bar", "x": {"dtype": "zz", "bdata": ""}}]})
    assert broken["type"] == "unknown" and "typed array" in broken["reason"]


def test_typed_arrays_decode() -> None:
    assert values({"dtype": "f8", "bdata": "AAAAAAAA8D8AAAAAAAAAQA=="}) == [1.0, 2.0]
    assert values({"dtype": "i1", "bdata": "AP8="}) == [0, -1]
    assert values(None) == [] and values((1, "a")) == [1, "a"]
