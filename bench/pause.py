"""Pause and resume: latency, RAM given back, and how many paused sandboxes this host holds.

    sudo .venv/bin/python bench/pause.py                 # 5 sandboxes, a ~100 MiB DataFrame each
    sudo .venv/bin/python bench/pause.py --runs 10 --mib 200

Each sandbox loads pandas and a DataFrame of about `--mib` MiB, then is paused and resumed.
Measured through the SDK: `pause()` (freeze + push to swap), `resume()`, the first `run_code`
after resuming (pages it touches swap back in) and touching the whole DataFrame again. The
baseline, in the same run, is the same `run_code` on a sandbox that was never paused. RAM is the
cgroup's own count before and after the pause (PauseInfo).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _servers import nullspace_server
from _stats import p50_p99_ms

from nullspace import Sandbox

MiB = 1 << 20


def swap_free() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return int(info["SwapFree"].split()[0]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mib", type=int, default=100)
    args = parser.parse_args()
    rows = args.mib * MiB // (20 * 8)
    load = f"import pandas as pd, numpy as np\ndf = pd.DataFrame(np.random.rand({rows}, 20))\nint(df.memory_usage().sum())"
    pause_s, resume_s, first_s, touch_s, base_first_s, base_touch_s = [], [], [], [], [], []
    before_b, after_b = [], []
    with nullspace_server(pool=0):
        for _ in range(args.runs):
            with Sandbox.create(timeout=300, memory_mb=2048) as sb:
                sb.run_code(load)
                t0 = time.perf_counter()
                sb.run_code("1")
                base_first_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sb.run_code("float(df.values.sum())")
                base_touch_s.append(time.perf_counter() - t0)

                t0 = time.perf_counter()
                info = sb.pause()
                pause_s.append(time.perf_counter() - t0)
                before_b.append(info.memory_before_bytes)
                after_b.append(info.memory_after_bytes)
                t0 = time.perf_counter()
                sb.resume()
                resume_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sb.run_code("1")
                first_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sb.run_code("float(df.values.sum())")
                touch_s.append(time.perf_counter() - t0)

    def row(name: str, values: list[float], base: list[float] | None = None) -> str:
        p50, p99 = p50_p99_ms(values)
        if base is None:
            return f"| {name} | {p50:.1f} / {p99:.1f} ms | – | – |"
        b50, b99 = p50_p99_ms(base)
        return f"| {name} | {p50:.1f} / {p99:.1f} ms | {b50:.1f} / {b99:.1f} ms | {p50 / b50:.1f}× |"

    print(f"{args.runs} sandboxes, DataFrame of ~{args.mib} MiB each; p50 / p99\n")
    print("| measure | after pause | never paused (same run) | ratio |\n|---|---|---|---|")
    print(row("pause()", pause_s))
    print(row("resume()", resume_s))
    print(row("first run_code after resume", first_s, base_first_s))
    print(row("touch the whole DataFrame", touch_s, base_touch_s))
    mean_before = sum(before_b) / len(before_b) / MiB
    mean_after = sum(after_b) / len(after_b) / MiB
    print(f"\nRAM per sandbox: {mean_before:.0f} MiB before, {mean_after:.1f} MiB while paused "
          f"({mean_before - mean_after:.0f} MiB to swap)")
    swapped = max(mean_before - mean_after, 1) * MiB
    print(f"this host could hold ~{int(swap_free() / swapped)} such paused sandboxes in its free swap "
          f"({swap_free() // MiB} MiB), each keeping {mean_after:.1f} MiB of RAM")


if __name__ == "__main__":
    main()
