"""Create → first result, and warm run_code latency, beside raw jupyter_client in the same run.

    sudo .venv/bin/python bench/core.py [--creates 20] [--runs 200] [--write docs/benchmarks.md]

nullspace is measured through the SDK over its unix socket (server in a child process, real
isolation); the baseline is jupyter_client driving an ipykernel directly on the host, with no
isolation, no HTTP and no agent. Medians and p99 over repeated runs; ratios are nullspace/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, pct(values, 0.99) * 1000


# -- baseline: raw jupyter_client ------------------------------------------------------------
async def _baseline(creates: int, runs: int, progress: Progress) -> dict[str, list[float]]:
    cold, warm = [], []
    task = progress.add_task("jupyter_client cold starts", total=creates)
    for _ in range(creates):
        t0 = time.perf_counter()
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        await kc.execute_interactive("1+1", timeout=60)
        cold.append(time.perf_counter() - t0)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        progress.advance(task)
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    task = progress.add_task("jupyter_client warm executes", total=runs)
    for _ in range(runs):
        t0 = time.perf_counter()
        await kc.execute_interactive("1+1", timeout=60)
        warm.append(time.perf_counter() - t0)
        progress.advance(task)
    kc.stop_channels()
    await km.shutdown_kernel(now=True)
    return {"cold": cold, "warm": warm}


# -- nullspace through the SDK ----------------------------------------------------------------
def _nullspace(creates: int, runs: int, progress: Progress) -> dict[str, list[float]]:
    from nullspace import Sandbox

    cold, warm, kill = [], [], []
    task = progress.add_task("nullspace create → first result", total=creates)
    for _ in range(creates):
        t0 = time.perf_counter()
        sb = Sandbox.create(timeout=120)
        assert sb.run_code("1+1").text == "2"
        cold.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        sb.kill()
        kill.append(time.perf_counter() - t1)
        progress.advance(task)
    with Sandbox.create(timeout=600) as sb:
        for _ in range(5):
            sb.run_code("1+1")
        task = progress.add_task("nullspace warm run_code", total=runs)
        for _ in range(runs):
            t0 = time.perf_counter()
            sb.run_code("1+1")
            warm.append(time.perf_counter() - t0)
            progress.advance(task)
    return {"cold": cold, "warm": warm, "kill": kill}


def _start_server() -> tuple[subprocess.Popen[bytes], Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="nsbench-", dir="/var/tmp"))
    os.chmod(data_dir, 0o711)
    (data_dir / "templates").symlink_to(Path("/var/lib/nullspace/templates"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nullspace", "serve", "--data-dir", str(data_dir)],
        stdout=open(data_dir / "server.log", "wb"), stderr=subprocess.STDOUT,
    )
    os.environ["NULLSPACE_SOCKET"] = str(data_dir / "nullspace.sock")
    os.environ["NULLSPACE_HOME"] = str(data_dir)
    sock = data_dir / "nullspace.sock"
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--write", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()

    proc, data_dir = _start_server()
    try:
        with Progress(console=console) as progress:
            base = asyncio.run(_baseline(args.creates, args.runs, progress))
            ours = _nullspace(args.creates, args.runs, progress)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)

    rows = []
    for label, key in (("create → first `run_code` result (cold, no pool)", "cold"), ("warm `run_code(\"1+1\")`", "warm")):
        n50, n99 = summary(ours[key])
        b50, b99 = summary(base[key])
        rows.append((label, f"{n50:.1f}", f"{n99:.1f}", f"{b50:.1f}", f"{b99:.1f}", f"{n50 / b50:.2f}×"))
    k50, k99 = summary(ours["kill"])
    rows.append(("kill (cgroup kill + unmount + cleanup)", f"{k50:.1f}", f"{k99:.1f}", "–", "–", "–"))

    table = Table("measure (ms)", "nullspace p50", "p99", "jupyter_client p50", "p99", "ratio p50")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    machine = f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    console.print(machine)
    if args.write:
        lines = [
            f"\n### bench/core.py — {time.strftime('%Y-%m-%d %H:%M')} (creates={args.creates}, runs={args.runs})\n",
            f"Machine: {machine}\n",
            "| measure (ms) | nullspace p50 | p99 | jupyter_client p50 | p99 | ratio p50 |",
            "|---|---|---|---|---|---|",
            *("| " + " | ".join(r) + " |" for r in rows),
            "",
        ]
        with open(args.write, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
