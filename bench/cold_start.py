"""Where a cold start's time goes, and what the warm pool's preload buys for a first plot.

    sudo .venv/bin/python bench/cold_start.py               # 10 cold creates, 4 first plots each way
    sudo .venv/bin/python bench/cold_start.py --runs 30

Cold breakdown: the client notes CLOCK_BOOTTIME before `Sandbox.create`; the sandbox's first run
reads the start times of bwrap (pid 1), the agent (pid 2) and the boot kernel (pid 3) from its own
/proc (boot-time clock ticks, 10 ms resolution) and their CPU time so far. So each row says when,
after the request, each process was forked, when `create` returned, and how long the first
`run_code` took. The kernel is forked before the agent imports its libraries (agent/__main__.py).

First plot: `import numpy, pandas, matplotlib.pyplot` + `plot` + `show` right after `create`, in a
sandbox claimed from a warm pool (the code-interpreter template's `preload` is imported) and in a
cold one, with the same code.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _servers import nullspace_server, wait_pool
from _stats import p50_p99_ms

from nullspace import Sandbox

PROBE = """
import os
tick = os.sysconf('SC_CLK_TCK')
rows = []
for pid in (1, 2, 3):
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    rows.append((int(fields[19]) / tick, (int(fields[11]) + int(fields[12])) / tick))
rows
"""
PLOT = "import numpy as np, pandas as pd, matplotlib.pyplot as plt\nplt.plot(np.arange(10)); plt.show()"


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


BREAKDOWN = ("bwrap forked", "agent forked", "kernel forked", "create returned", "first run_code", "agent CPU", "kernel CPU")


def cold_breakdown(runs: int) -> dict[str, list[float]]:
    """Seconds per `BREAKDOWN` column, one value per cold create."""
    rows = []
    with nullspace_server(pool=0):
        Sandbox.create(timeout=60).kill()  # page cache, agent copy
        for _ in range(runs):
            t0 = boottime()
            sb = Sandbox.create(timeout=60)
            t1 = boottime()
            probe = sb.run_code(PROBE)
            t2 = boottime()
            (bwrap, _), (agent, agent_cpu), (kernel, kernel_cpu) = eval(probe.text)  # noqa: S307 - our own probe
            rows.append((bwrap - t0, agent - t0, kernel - t0, t1 - t0, t2 - t1, agent_cpu, kernel_cpu))
            sb.kill()
    return {name: list(column) for name, column in zip(BREAKDOWN, zip(*rows, strict=True), strict=True)}


def first_plot(runs: int) -> tuple[list[float], list[float]]:
    """Seconds of the first plot after `create`: (claimed from a warm pool, cold)."""

    def one() -> float:
        with Sandbox.create(timeout=60) as sb:
            t0 = time.perf_counter()
            result = sb.run_code(PLOT)
            took = time.perf_counter() - t0
            assert result.results and result.results[0].png, result.error
            return took

    with nullspace_server(pool=1) as data_dir:
        pooled = []
        for _ in range(runs):
            wait_pool(data_dir, 1)
            pooled.append(one())
    with nullspace_server(pool=0):
        cold = [one() for _ in range(runs)]
    return pooled, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--plots", type=int, default=4)
    args = parser.parse_args()
    print(f"cold start, {args.runs} creates (ms after the create request; CPU in ms):")
    for name, values in cold_breakdown(args.runs).items():
        print("  {:16s} p50 {:6.0f}  p99 {:6.0f}".format(name, *p50_p99_ms(values)))
    pooled, cold = first_plot(args.plots)
    ratio = statistics.median(cold) / statistics.median(pooled)
    print(f"first plot after create, {args.plots} each (ms):")
    print("  warm pool (preloaded)  p50 {:6.0f}  p99 {:6.0f}".format(*p50_p99_ms(pooled)))
    print("  cold                   p50 {:6.0f}  p99 {:6.0f}   ({:.1f}x the pooled)".format(*p50_p99_ms(cold), ratio))


if __name__ == "__main__":
    main()
