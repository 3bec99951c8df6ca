"""Charts as data, end to end: `result.chart` for every chart type of matplotlib and plotly, the
edge cases (equal values, dates, log scales, empty axes, unreadable figures), never an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nullspace import Sandbox

MPL = "import matplotlib.pyplot as plt\nimport numpy as np\n"
PLOTLY = "import plotly.graph_objects as go\nimport plotly.express as px\n"


@pytest.fixture(scope="module")
def sbx(server) -> Iterator[Sandbox]:  # noqa: ANN001
    with Sandbox.create(timeout=600) as sandbox:
        yield sandbox


def chart(sbx: Sandbox, code: str) -> dict[str, Any]:
    """Run `code`; it must show exactly one figure, which must carry a chart."""
    execution = sbx.run_code(code)
    assert execution.error is None, execution.error
    charts = [r for r in execution.results if r.chart is not None]
    assert len(charts) == 1, execution.results
    return charts[0].chart


# -- matplotlib ------------------------------------------------------------------------------------


def test_matplotlib_line_with_labels_units_and_png(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        MPL + "plt.plot([1, 2, 3], [2, 4, 8], label='speed')\n"
        "plt.title('Run'); plt.xlabel('Time (s)'); plt.ylabel('Speed [m/s]')\nplt.show()"
    )
    (result,) = execution.results
    assert result.png and result.chart is not None
    c = result.chart
    assert (c["type"], c["source"], c["title"]) == ("line", "matplotlib", "Run")
    assert (c["x_label"], c["x_unit"], c["y_unit"]) == ("Time (s)", "s", "m/s")
    assert c["elements"] == [
        {"label": "speed", "kind": "line", "points": [[1.0, 2.0], [2.0, 4.0], [3.0, 8.0]]}
    ]
    assert c["x_scale"] == "linear" and c["x_ticks"] and len(c["x_ticks"]) == len(c["x_tick_labels"])


def test_matplotlib_scatter(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.scatter([1, 1, 1], [5, 5, 5], label='same')\nplt.show()")  # equal points
    assert c["type"] == "scatter"
    assert c["elements"] == [{"label": "same", "kind": "scatter", "points": [[1.0, 5.0]] * 3}]


def test_matplotlib_bar_with_equal_values(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.bar(['a', 'b', 'c'], [2, 2, 2], label='n')\nplt.show()")
    assert (c["type"], c["orientation"], c["x_scale"]) == ("bar", "vertical", "categorical")
    assert c["elements"] == [{"label": x, "group": "n", "value": 2} for x in "abc"]


def test_matplotlib_horizontal_bar(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.barh(['x', 'y'], [3, 3])\nplt.show()")
    assert (c["type"], c["orientation"]) == ("bar", "horizontal")
    assert [(e["label"], e["value"]) for e in c["elements"]] == [("x", 3), ("y", 3)]


def test_matplotlib_pie(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.pie([1, 1], labels=['yes', 'no'])\nplt.title('Vote')\nplt.show()")
    assert (c["type"], c["title"]) == ("pie", "Vote")
    assert [(e["label"], e["angle"], e["fraction"]) for e in c["elements"]] == [
        ("yes", 180.0, 0.5),
        ("no", 180.0, 0.5),
    ]


def test_matplotlib_box_and_whisker(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.boxplot([[1, 2, 3, 4, 50], [7, 7, 7]], tick_labels=['p', 'q'])\nplt.show()")
    assert c["type"] == "box_and_whisker"
    p, q = c["elements"]
    assert (p["label"], p["min"], p["median"], p["max"], p["outliers"]) == ("p", 1, 3.0, 4, [50])
    assert (q["label"], q["first_quartile"], q["third_quartile"]) == ("q", 7.0, 7.0)


def test_matplotlib_several_axes(sbx: Sandbox) -> None:
    c = chart(
        sbx,
        MPL + "fig, (a, b) = plt.subplots(1, 2)\na.plot([1, 2]); a.set_title('left')\n"
        "b.pie([1, 2])\nfig.suptitle('Dashboard')\nplt.show()",
    )
    assert (c["type"], c["title"]) == ("superchart", "Dashboard")
    assert [(e["type"], e["title"]) for e in c["elements"]] == [("line", "left"), ("pie", None)]


def test_matplotlib_dates_on_an_axis(sbx: Sandbox) -> None:
    c = chart(
        sbx,
        MPL + "import datetime as dt\n"
        "plt.plot([dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)], [1, 1])\nplt.show()",
    )
    assert c["x_scale"] == "datetime"
    assert [p[0][:10] for p in c["elements"][0]["points"]] == ["2024-03-01", "2024-03-02"]
    assert all(t.startswith("2024-03") for t in c["x_ticks"])


def test_pandas_plot_with_a_datetime_index(sbx: Sandbox) -> None:
    c = chart(
        sbx,
        MPL + "import pandas as pd\n"
        "s = pd.Series([3, 1, 2], index=pd.date_range('2024-01-01', periods=3, freq='MS'), name='sales')\n"
        "s.plot(); plt.show()",
    )
    assert c["type"] == "line" and c["x_scale"] == "datetime"
    assert [p[0][:10] for p in c["elements"][0]["points"]] == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_matplotlib_log_scale(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.plot([1, 10, 100], [1, 100, 10000])\nplt.yscale('log')\nplt.show()")
    assert (c["y_scale"], c["x_scale"]) == ("log", "linear")
    assert c["elements"][0]["points"][-1] == [100.0, 10000.0]
    assert "10^2" in c["y_tick_labels"]


def test_matplotlib_empty_axes_is_unknown(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "fig, ax = plt.subplots()\nax.set_title('nothing yet')\nplt.show()")
    assert (c["type"], c["title"], c["elements"]) == ("unknown", "nothing yet", [])


def test_matplotlib_image_is_unknown(sbx: Sandbox) -> None:
    c = chart(sbx, MPL + "plt.imshow(np.eye(3))\nplt.colorbar()\nplt.show()")
    assert c["type"] == "unknown" and "AxesImage" in c["reason"]


def test_a_figure_that_breaks_the_extractor_is_unknown_not_an_error(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        MPL + "fig, ax = plt.subplots()\nax.plot([1, 2])\n"
        "def boom(*args, **kwargs):\n"
        "    raise RuntimeError('boom')\n"
        "ax.get_title = boom  # matplotlib draws without it; the extractor reads it\n"
        "plt.show()"
    )
    assert execution.error is None and execution.logs.stderr == []
    (result,) = execution.results
    assert result.png and result.chart["type"] == "unknown" and "boom" in result.chart["reason"]


def test_figure_as_last_expression_and_display(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        MPL + "from IPython.display import display\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1])\nplt.close(fig)\ndisplay(fig)\nfig"
    )
    assert [r.chart["type"] for r in execution.results] == ["line", "line"]
    assert [r.is_main_result for r in execution.results] == [False, True]


# -- plotly ----------------------------------------------------------------------------------------


def test_plotly_show_gives_html_and_chart(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        PLOTLY + "fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], mode='lines', name='s'))\n"
        "fig.update_layout(title='Plotly', xaxis_title='Day (d)')\nfig.show()"
    )
    (result,) = execution.results
    assert "<div" in result.html and "plotly" in result.html
    assert "application/vnd.plotly.v1+json" in result.data
    c = result.chart
    assert (c["type"], c["source"], c["title"], c["x_unit"]) == ("line", "plotly", "Plotly", "d")
    assert c["elements"] == [{"label": "s", "kind": "line", "points": [[1, 3], [2, 1], [3, 2]]}]


def test_plotly_figure_as_last_expression(sbx: Sandbox) -> None:
    c = chart(sbx, PLOTLY + "go.Figure(go.Bar(x=['a', 'b'], y=[1, 1]))")
    assert (c["type"], c["orientation"]) == ("bar", "vertical")
    assert [(e["label"], e["value"]) for e in c["elements"]] == [("a", 1), ("b", 1)]


def test_plotly_express_with_dates_pie_and_box(sbx: Sandbox) -> None:
    c = chart(
        sbx,
        PLOTLY + "import pandas as pd\n"
        "df = pd.DataFrame({'d': pd.date_range('2024-05-01', periods=3), 'v': [1, 2, 3]})\n"
        "px.line(df, x='d', y='v').show()",
    )
    assert c["x_scale"] == "datetime" and c["elements"][0]["points"][0][0].startswith("2024-05-01")
    c = chart(sbx, PLOTLY + "px.pie(names=['a', 'b'], values=[1, 3]).show()")
    assert [(e["label"], e["fraction"]) for e in c["elements"]] == [("a", 0.25), ("b", 0.75)]
    c = chart(sbx, PLOTLY + "go.Figure(go.Box(y=[1, 2, 3, 4, 100], name='b')).show()")
    (box,) = c["elements"]
    assert (c["type"], box["median"], box["outliers"]) == ("box_and_whisker", 3.0, [100])


def test_plotly_log_axis_and_subplots(sbx: Sandbox) -> None:
    c = chart(
        sbx,
        PLOTLY + "from plotly.subplots import make_subplots\n"
        "fig = make_subplots(rows=1, cols=2)\n"
        "fig.add_trace(go.Scatter(x=[1, 10, 100], y=[1, 2, 3]), 1, 1)\n"
        "fig.add_trace(go.Bar(x=['q'], y=[4]), 1, 2)\nfig.update_xaxes(type='log', row=1, col=1)\nfig.show()",
    )
    assert c["type"] == "superchart"
    line, bar = c["elements"]
    assert (line["type"], line["x_scale"], bar["type"]) == ("line", "log", "bar")


def test_plotly_what_cannot_be_charted_is_unknown(sbx: Sandbox) -> None:
    c = chart(sbx, PLOTLY + "px.histogram(x=[1, 2, 2, 3]).show()")
    assert c["type"] == "unknown" and "histogram" in c["reason"]
    c = chart(sbx, PLOTLY + "go.Figure().show()")
    assert c["type"] == "unknown" and c["reason"] == "the figure has no traces"
