"""The "Analyze data with AI" guide: upload a CSV, pandas + matplotlib on it, chart and file back."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

from .conftest import REPO, ServerHandle

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("analyze_data", REPO / "examples" / "analyze_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_analyze_data_example(server: ServerHandle, tmp_path: Path) -> None:
    example = load_example()
    out = example.analyze(tmp_path / "out")

    # the expected numbers, computed here from the same CSV without pandas
    totals: dict[str, int] = {}
    orders: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(out["data"])):
        totals[row["region"]] = totals.get(row["region"], 0) + int(row["revenue"])
        orders[row["region"]] = orders.get(row["region"], 0) + 1
    expected = "region,revenue,orders\n" + "".join(
        f"{region},{totals[region]},{orders[region]}\n" for region in sorted(totals)
    )

    # the result file came back byte for byte, and was saved locally
    assert out["summary"] == expected
    assert (tmp_path / "out" / "summary.csv").read_text() == expected

    # the chart: a PNG and its data, with one bar per region at the right height
    assert (tmp_path / "out" / "revenue_chart.png").read_bytes().startswith(PNG_MAGIC)
    chart = out["chart"]
    assert chart["type"] == "bar" and chart["title"] == "Revenue by region"
    assert {e["label"]: e["value"] for e in chart["elements"]} == totals

    # the files the run created are its artifacts; their checksums match what was downloaded
    artifacts = out["artifacts"]
    assert {"summary.csv", "revenue.png"} <= set(artifacts)
    assert artifacts["summary.csv"].sha256 == hashlib.sha256(expected.encode()).hexdigest()
    assert artifacts["summary.csv"].mime_type == "text/csv"
    saved_png = (tmp_path / "out" / "revenue.png").read_bytes()
    assert saved_png.startswith(PNG_MAGIC)
    assert hashlib.sha256(saved_png).hexdigest() == artifacts["revenue.png"].sha256
    assert "sales.csv" not in artifacts  # uploaded before the run: input, not output
