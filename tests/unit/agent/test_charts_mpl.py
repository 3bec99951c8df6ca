"""The matplotlib chart extractor (kernel_startup/charts_mpl.py), on the host's matplotlib."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.axes  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nullspace.agent.kernel_startup.charts_mpl import figure_to_chart, patch_axes  # noqa: E402

patch_axes(matplotlib.axes)  # the kernel does this through a post-import hook


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def chart_of(fig: Any) -> dict[str, Any]:
    chart = figure_to_chart(fig)
    json.dumps(chart, allow_nan=False)  # always strict JSON
    assert chart["version"] == 1 and chart["source"] == "matplotlib"
    return chart


def test_line_chart_with_title_labels_units_and_ticks() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 4, 9], label="squares")
    ax.set_title("Growth")
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Distance [m]")
    chart = chart_of(fig)
    assert chart["type"] == "line"
    assert chart["title"] == "Growth"
    assert (chart["x_label"], chart["x_unit"], chart["y_unit"]) == ("Time (s)", "s", "m")
    assert chart["x_scale"] == chart["y_scale"] == "linear"
    assert chart["elements"] == [
        {"label": "squares", "kind": "line", "points": [[1.0, 1.0], [2.0, 4.0], [3.0, 9.0]]}
    ]
    assert len(chart["x_ticks"]) == len(chart["x_tick_labels"]) > 0
    lo, hi = ax.get_xlim()
    assert all(lo <= t <= hi for t in chart["x_ticks"])  # only ticks inside the view


def test_unlabelled_series_get_names() -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.plot([1, 0])
    assert [e["label"] for e in chart_of(fig)["elements"]] == ["Series 1", "Series 2"]


def test_scatter_and_marker_only_lines() -> None:
    fig, ax = plt.subplots()
    ax.scatter([1, 2], [3, 4], label="pts")
    assert chart_of(fig)["type"] == "scatter"
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [2, 2, 2], "o")  # equal values, markers only
    chart = chart_of(fig)
    assert chart["type"] == "scatter"
    assert chart["elements"][0]["points"] == [[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]]


@pytest.mark.parametrize("horizontal", [False, True])
def test_bars_with_equal_values_keep_their_orientation(horizontal: bool) -> None:
    fig, ax = plt.subplots()
    (ax.barh if horizontal else ax.bar)(["a", "b", "c"], [5, 5, 5], label="orders")
    chart = chart_of(fig)
    assert chart["type"] == "bar"
    assert chart["orientation"] == ("horizontal" if horizontal else "vertical")
    assert chart["elements"] == [{"label": c, "group": "orders", "value": 5} for c in "abc"]
    assert chart["y_scale" if horizontal else "x_scale"] == "categorical"


def test_grouped_bars_are_named_after_the_nearest_labelled_tick() -> None:
    fig, ax = plt.subplots()
    x = np.arange(2)
    ax.bar(x - 0.2, [1, 2], 0.4, label="2023")
    ax.bar(x + 0.2, [3, 4], 0.4, label="2024")
    ax.set_xticks(x, ["north", "south"])
    elements = chart_of(fig)["elements"]
    assert [(e["label"], e["group"], e["value"]) for e in elements] == [
        ("north", "2023", 1),
        ("south", "2023", 2),
        ("north", "2024", 3),
        ("south", "2024", 4),
    ]


def test_histogram_bins() -> None:
    fig, ax = plt.subplots()
    ax.hist([1, 2, 2, 3, 3, 3], bins=[1, 2, 3, 4])
    chart = chart_of(fig)
    assert chart["type"] == "bar"
    assert [(e["label"], e["value"]) for e in chart["elements"]] == [("1–2", 1.0), ("2–3", 2.0), ("3–4", 3.0)]


def test_pie() -> None:
    fig, ax = plt.subplots()
    ax.pie([1, 1, 2], labels=["a", "b", "c"])
    chart = chart_of(fig)
    assert chart["type"] == "pie"
    assert [(e["label"], e["angle"], e["fraction"]) for e in chart["elements"]] == [
        ("a", 90.0, 0.25),
        ("b", 90.0, 0.25),
        ("c", 180.0, 0.5),
    ]


def test_box_and_whisker_uses_the_drawn_statistics() -> None:
    fig, ax = plt.subplots()
    ax.boxplot([[1, 2, 3, 4, 100], [5, 5, 5, 5]], tick_labels=["u", "v"])
    chart = chart_of(fig)
    assert chart["type"] == "box_and_whisker" and chart["orientation"] == "vertical"
    u, v = chart["elements"]
    assert (u["label"], u["min"], u["first_quartile"], u["median"], u["third_quartile"], u["max"]) == (
        "u",
        1,
        2.0,
        3.0,
        4.0,
        4,
    )
    assert u["outliers"] == [100]
    assert (v["min"], v["median"], v["max"], v["outliers"]) == (5, 5.0, 5, [])  # all equal


def test_dates_on_the_x_axis() -> None:
    fig, ax = plt.subplots()
    ax.plot([dt.date(2024, 1, 1), dt.date(2024, 1, 2)], [1, 2])
    chart = chart_of(fig)
    assert chart["x_scale"] == "datetime"
    assert chart["elements"][0]["points"][0] == ["2024-01-01T00:00:00+00:00", 1.0]
    assert all(isinstance(t, str) and t.startswith("2024-01") for t in chart["x_ticks"])


def test_pandas_period_axis_gives_dates() -> None:
    pd = pytest.importorskip("pandas")
    series = pd.Series([1, 2, 3], index=pd.date_range("2024-01-01", periods=3, freq="MS"))
    fig, ax = plt.subplots()
    series.plot(ax=ax)
    points = chart_of(fig)["elements"][0]["points"]
    assert [p[0][:10] for p in points] == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_log_scale_and_mathtext_tick_labels() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 10, 100], [1, 10, 1000])
    ax.set_yscale("log")
    chart = chart_of(fig)
    assert chart["y_scale"] == "log"
    assert chart["elements"][0]["points"][2] == [100.0, 1000.0]  # data, not logarithms
    assert "10^3" in chart["y_tick_labels"]
    assert not any("$" in label or "mathdefault" in label for label in chart["y_tick_labels"])


def test_nan_and_inf_become_null() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1.0, float("nan"), float("inf")])
    assert chart_of(fig)["elements"][0]["points"] == [[1.0, 1.0], [2.0, None], [3.0, None]]


def test_reference_lines_and_bands_are_decorations() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4], label="data")
    ax.axhline(3.5)
    ax.fill_between([1, 2], [2.5, 3.5], [3.5, 4.5], alpha=0.2)
    chart = chart_of(fig)
    assert chart["type"] == "line"
    assert [e["label"] for e in chart["elements"]] == ["data"]


def test_several_axes_make_a_superchart_and_colorbars_do_not_count() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    left.plot([1, 2])
    right.bar(["x"], [1])
    fig.suptitle("Both")
    chart = chart_of(fig)
    assert chart["type"] == "superchart" and chart["title"] == "Both"
    assert [c["type"] for c in chart["elements"]] == ["line", "bar"]
    fig, ax = plt.subplots()
    ax.scatter([1, 2], [1, 2], c=[1, 2])
    fig.colorbar(ax.collections[0])
    assert chart_of(fig)["type"] == "scatter"


@pytest.mark.parametrize(
    ("draw", "reason"),
    [
        (lambda fig: fig.add_subplot(), "no data"),
        (lambda fig: None, "no axes"),
        (lambda fig: fig.add_subplot().imshow(np.zeros((2, 2))), "AxesImage"),
        (lambda fig: (ax := fig.add_subplot()).bar(["a"], [1]) and ax.plot([0, 1]), "mix"),
    ],
)
def test_what_cannot_be_charted_is_unknown(draw: Any, reason: str) -> None:
    fig = plt.figure()
    draw(fig)
    chart = chart_of(fig)
    assert chart["type"] == "unknown" and chart["elements"] == []
    assert reason in chart["reason"]


def test_an_extractor_failure_is_unknown_not_an_exception() -> None:
    class Broken:
        def get_axes(self) -> list[Any]:
            raise RuntimeError("boom")

    chart = figure_to_chart(Broken())
    assert chart["type"] == "unknown" and "boom" in chart["reason"]


def test_long_series_are_cut_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from nullspace.agent.kernel_startup import chart_schema

    monkeypatch.setattr(chart_schema, "MAX_POINTS", 100)
    fig, ax = plt.subplots()
    ax.plot(np.arange(250))
    element = chart_of(fig)["elements"][0]
    assert len(element["points"]) == 100 and element["truncated"] and element["total"] == 250
