"""Analyze data with AI-written code: upload a CSV, run pandas on it, get a chart and a file back.

    python examples/analyze_data.py [OUT_DIR]

The flow an AI data analyst follows:

1. upload the user's data (`sandbox.files.write`, verified by SHA-256 inside the sandbox);
2. run the generated analysis code (`sandbox.run_code`): pandas for the numbers, matplotlib
   for a chart, results written to files;
3. get everything back: the chart as a PNG and as chart data (`result.png`, `result.chart`),
   the files the run created (`execution.artifacts`), downloaded and checked.
"""

from __future__ import annotations

import base64
import csv
import io
import random
import sys
from pathlib import Path

from nullspace import Sandbox

REGIONS = ["north", "south", "east", "west"]
PRODUCTS = ["widget", "gadget", "gizmo"]

ANALYSIS = """
import pandas as pd
import matplotlib.pyplot as plt

df = pd.read_csv("sales.csv", parse_dates=["date"])
summary = (
    df.groupby("region", as_index=False)
    .agg(revenue=("revenue", "sum"), orders=("revenue", "size"))
    .sort_values("region")
)
summary.to_csv("summary.csv", index=False)

fig, ax = plt.subplots(figsize=(6, 4))
ax.bar(summary["region"], summary["revenue"])
ax.set_title("Revenue by region")
ax.set_xlabel("region")
ax.set_ylabel("revenue")
fig.savefig("revenue.png", dpi=100)
plt.show()

print(f"{len(df)} orders, total revenue {df.revenue.sum()}")
summary
"""


def make_sales_csv(rows: int = 500, seed: int = 7) -> str:
    """Some sales data: date, region, product, revenue (whole units)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "region", "product", "revenue"])
    for i in range(rows):
        writer.writerow(
            [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", rng.choice(REGIONS), rng.choice(PRODUCTS), rng.randint(5, 500)]
        )
    return out.getvalue()


def analyze(out_dir: Path, sandbox: Sandbox | None = None) -> dict[str, object]:
    """Run the whole flow; save the chart and the summary under `out_dir`; return what came back."""
    out_dir.mkdir(parents=True, exist_ok=True)
    owned = sandbox is None
    sbx = sandbox or Sandbox.create(template="code-interpreter", timeout=300)
    try:
        data = make_sales_csv()
        uploaded = sbx.files.write("sales.csv", data)
        print(f"uploaded {uploaded.path}: {uploaded.size} bytes, sha256 {uploaded.sha256[:12]}…")

        execution = sbx.run_code(ANALYSIS)
        if execution.error:
            raise RuntimeError(f"{execution.error.name}: {execution.error.value}\n{execution.error.traceback}")
        print("".join(execution.logs.stdout), end="")

        chart = next(r for r in execution.results if r.png)
        (out_dir / "revenue_chart.png").write_bytes(base64.b64decode(chart.png))
        bars = {e["label"]: e["value"] for e in (chart.chart or {}).get("elements", [])}
        print(f"chart: {chart.chart['type'] if chart.chart else 'no chart data'} {bars}")

        artifacts = {a.name: a for a in getattr(execution, "artifacts", [])}
        print("artifacts:", ", ".join(f"{a.name} ({a.mime_type}, {a.size} bytes)" for a in artifacts.values()))
        if "summary.csv" in artifacts:
            summary = artifacts["summary.csv"].read()  # checked against the run's sha256
        else:
            summary = sbx.files.read("summary.csv", format="bytes")
        (out_dir / "summary.csv").write_bytes(summary)
        if "revenue.png" in artifacts:
            artifacts["revenue.png"].download(out_dir)
        print(f"saved {out_dir / 'summary.csv'} and {out_dir / 'revenue_chart.png'}")
        return {"data": data, "summary": summary.decode(), "chart": chart.chart, "artifacts": artifacts}
    finally:
        if owned:
            sbx.kill()
            sbx.close()


if __name__ == "__main__":
    analyze(Path(sys.argv[1] if len(sys.argv) > 1 else "analysis"))
