"""Install our rich-output hooks into a running IPython shell (see the package docstring).

* Two formatters added to ``shell.display_formatter.formatters``: the chart MIME type (matplotlib
  and plotly figures) and the Table Schema MIME type (pandas DataFrame/Series). They run for
  ``display(obj)``, ``plt.show()`` (matplotlib_inline displays the Figure) and the last
  expression. They match classes by ``sys.modules`` lookups, so nothing is imported early.
* ``display_pub.publish`` is wrapped: a raw plotly bundle gets ``text/html``, ``text/plain`` and
  the chart.
* Post-import hooks: ``matplotlib.axes`` (box plot statistics, histogram bins), ``PIL.Image``
  (``show()`` displays the image instead of starting an image viewer), ``plotly.io._renderers``
  (a ``nullspace`` renderer becomes the default unless ``PLOTLY_RENDERER`` is set: it displays the
  figure's JSON, which the publish hook completes; plotly's own ``notebook`` renderer would inject
  its 3.5 MB loader and its mimetype renderers need ``nbformat``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from .chart_schema import CHART_MIME
from .imports import when_imported

TABLE_MIME = "application/vnd.dataresource+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
TABLE_MAX_ROWS = int(os.environ.get("NULLSPACE_TABLE_MAX_ROWS", "10000") or 10000)

Converter = tuple[str, str, Callable[[Any], Any]]


# -- converters (each imports its library lazily: the object exists, so the library is loaded) --


def matplotlib_chart(figure: Any) -> dict[str, Any]:
    from .charts_mpl import figure_to_chart

    return figure_to_chart(figure)


def plotly_chart(figure: Any) -> dict[str, Any]:
    from .charts_plotly import figure_to_chart

    return figure_to_chart(figure)


def table_schema(frame: Any) -> dict[str, Any] | None:
    """A DataFrame/Series as Table Schema JSON (``{"schema": ..., "data": [...]}``), at most
    `TABLE_MAX_ROWS` rows (then ``truncated: true`` and ``total_rows``)."""
    total = len(frame)
    head = frame.head(TABLE_MAX_ROWS) if total > TABLE_MAX_ROWS else frame
    payload = json.loads(head.to_json(orient="table", date_format="iso", default_handler=str))
    if total > TABLE_MAX_ROWS:
        payload["truncated"] = True
        payload["total_rows"] = total
    return payload


CHART_CONVERTERS: list[Converter] = [
    ("matplotlib.figure", "Figure", matplotlib_chart),
    ("plotly.basedatatypes", "BaseFigure", plotly_chart),
]
TABLE_CONVERTERS: list[Converter] = [
    ("pandas", "DataFrame", table_schema),
    ("pandas", "Series", table_schema),
]


def convert(obj: Any, converters: list[Converter]) -> Any:
    """The first matching converter's output; None when no class matches or it fails."""
    for module_name, class_name, func in converters:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(obj, cls):
            try:
                return func(obj)
            except Exception:
                return None
    return None


def _formatter_class() -> type:
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName

    class LazyTypeFormatter(BaseFormatter):
        """A formatter for classes of libraries that may not be imported yet. User printers
        registered with ``for_type`` still take precedence."""

        print_method = ObjectName("_repr_nullspace_")  # never the default __repr__
        _return_type = (dict, list)

        def __init__(self, mime: str, converters: list[Converter], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.format_type = mime
            self.converters = converters

        def __call__(self, obj: Any) -> Any:
            if not self.enabled:
                return None
            try:
                self.lookup(obj)
            except KeyError:
                return convert(obj, self.converters)
            return super().__call__(obj)

    return LazyTypeFormatter


# -- fig.show() of plotly: a raw bundle ----------------------------------------------------------


def enrich_bundle(data: Any) -> Any:
    """Add html, text and the chart to a raw plotly bundle; anything else is returned as is."""
    if not isinstance(data, dict) or PLOTLY_MIME not in data or CHART_MIME in data:
        return data
    fig = data[PLOTLY_MIME]
    data = dict(data)
    data[CHART_MIME] = plotly_chart(fig)
    if "text/html" not in data:
        try:
            import plotly.io as pio

            data["text/html"] = pio.to_html(fig, include_plotlyjs="cdn", full_html=False, validate=False)
        except Exception:
            pass
    if "text/plain" not in data:
        traces = len(fig.get("data") or []) if isinstance(fig, dict) else 0
        data["text/plain"] = f"<plotly Figure with {traces} trace{'s' if traces != 1 else ''}>"
    return data


def _wrap_publish(display_pub: Any) -> None:
    original = display_pub.publish
    if getattr(original, "_nullspace_wrapped", False):
        return

    def publish(*args: Any, **kwargs: Any) -> Any:
        try:
            if "data" in kwargs:
                kwargs["data"] = enrich_bundle(kwargs["data"])
            elif args:
                args = (enrich_bundle(args[0]), *args[1:])
        except Exception:
            pass
        return original(*args, **kwargs)

    publish._nullspace_wrapped = True  # type: ignore[attr-defined]
    display_pub.publish = publish


# -- library patches -------------------------------------------------------------------------------


def _patch_matplotlib_axes(module: Any) -> None:
    from .charts_mpl import patch_axes

    patch_axes(module)


def _patch_pil_image(module: Any) -> None:
    image_class = module.Image
    if getattr(image_class.show, "_nullspace_wrapped", False):
        return

    def show(self: Any, title: str | None = None) -> None:
        """Display the image as a rich result (there is no image viewer in a sandbox)."""
        from IPython.display import display

        display(self)

    show._nullspace_wrapped = True  # type: ignore[attr-defined]
    image_class.show = show


def _patch_plotly_renderers(module: Any) -> None:
    from plotly.io.base_renderers import ExternalRenderer
    from plotly.io.json import to_json_plotly

    class NullspaceRenderer(ExternalRenderer):
        """``fig.show()`` / a figure as last expression: display the figure's JSON (plotly's
        MIME type); `enrich_bundle` adds html, text and the chart on the way out."""

        def render(self, fig_dict: Any) -> None:
            from IPython.display import display

            display({PLOTLY_MIME: json.loads(to_json_plotly(fig_dict))}, raw=True)

    module.renderers["nullspace"] = NullspaceRenderer()
    if not os.environ.get("PLOTLY_RENDERER"):
        module.renderers.default = "nullspace"


def install(shell: Any) -> None:
    """Register everything with `shell` (an InteractiveShell); safe to call twice."""
    formatter_class = _formatter_class()
    formatters = shell.display_formatter.formatters
    for mime, converters in ((CHART_MIME, CHART_CONVERTERS), (TABLE_MIME, TABLE_CONVERTERS)):
        formatters[mime] = formatter_class(mime, converters, parent=shell.display_formatter)
    _wrap_publish(shell.display_pub)
    when_imported("matplotlib.axes", _patch_matplotlib_axes)
    when_imported("PIL.Image", _patch_pil_image)
    when_imported("plotly.io._renderers", _patch_plotly_renderers)
