"""Forking a context: how long it takes, and how much memory the fork really adds.

    .venv/bin/python bench/fork.py                   # 100 MiB and 1 GiB states, 5 forks each
    .venv/bin/python bench/fork.py --mib 100 --runs 10

For each size, one sandbox holds numpy and an array of `--mib` MiB in a context; it is forked
`--runs` times through the SDK (`fork_context`, each fork removed before the next). Measured:

* fork time: `fork_context()` end to end (the kernel forks, the new kernel starts its channels
  and answers a first execute); baseline in the same run: `create_context()`, a fresh kernel
  with nothing in it;
* memory: the sandbox's cgroup `memory.current` before and after the fork, after the fork
  reads the whole array, and after it writes a tenth of it; the baseline is loading the same
  array again in a fresh context (what a user would do without fork);
* the fork kernel's own view (/proc/self/smaps_rollup): Rss, Pss, Shared_Dirty, Private_Dirty.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _servers import nullspace_server
from _stats import p50_p99_ms

from nullspace import Sandbox
from nullspace.runtime.cgroups import open_driver
from nullspace.server.settings import Settings

MiB = 1 << 20
SMAPS = (
    "dict((k, int(v.split()[0]) // 1024) for k, v in (l.split(':', 1) for l in open('/proc/self/smaps_rollup')"
    " if ':' in l and l.split(':')[0] in ('Rss', 'Pss', 'Shared_Dirty', 'Private_Dirty')))"
)


def bench_size(data_dir: Path, mib: int, runs: int) -> list[str]:
    cgroups = open_driver(Settings(data_dir=data_dir).cgroup_root)
    with Sandbox.create(timeout=900, memory_mb=max(1024, 3 * mib + 768)) as sb:
        cgroup = cgroups.open(sb.sandbox_id)
        assert cgroup is not None

        def used() -> float:
            return cgroup.stats().memory_current / MiB

        parent = sb.create_context()
        load = f"import numpy as np\nblob = np.ones({mib * MiB // 8})\nblob.nbytes"
        sb.run_code(load, context=parent, timeout=300)
        fork_s, create_s, added, after_read, after_write, smaps = [], [], [], [], [], []
        for _ in range(runs):
            time.sleep(0.5)
            before = used()
            t0 = time.perf_counter()
            fork = sb.fork_context(parent)
            fork_s.append(time.perf_counter() - t0)
            added.append(used() - before)
            sb.run_code("float(blob.sum())", context=fork, timeout=300)
            after_read.append(used() - before)
            smaps.append(eval(sb.run_code(SMAPS, context=fork).text or "{}"))  # noqa: S307 - our own dict
            sb.run_code("blob[: len(blob) // 10] = 2.0", context=fork, timeout=300)
            after_write.append(used() - before)
            sb.remove_context(fork)

            t0 = time.perf_counter()
            fresh = sb.create_context()
            create_s.append(time.perf_counter() - t0)
            sb.remove_context(fresh)
        time.sleep(0.5)
        before = used()
        fresh = sb.create_context()
        sb.run_code(load, context=fresh, timeout=300)
        reload_mib = used() - before
        sb.remove_context(fresh)

    f50, f99 = p50_p99_ms(fork_s)
    c50, c99 = p50_p99_ms(create_s)
    med = statistics.median
    last = smaps[-1]
    return [
        f"| {mib} MiB | fork_context() | {f50:.0f} / {f99:.0f} ms | create_context() (empty): {c50:.0f} / {c99:.0f} ms | {f50 / c50:.2f}× |",
        f"| {mib} MiB | memory added by the fork | {med(added):.1f} MiB | loading the data again: {reload_mib:.0f} MiB | {med(added) / reload_mib:.3f} |",
        f"| {mib} MiB | … after the fork reads it all | {med(after_read):.1f} MiB | | {med(after_read) / reload_mib:.3f} |",
        f"| {mib} MiB | … after it writes a tenth | {med(after_write):.1f} MiB | | {med(after_write) / reload_mib:.3f} |",
        f"| {mib} MiB | fork's smaps_rollup after reading (MiB) | {last} | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mib", type=int, nargs="*", default=[100, 1024])
    args = parser.parse_args()
    lines = []
    with nullspace_server(pool=0) as data_dir:
        for mib in args.mib:
            lines += bench_size(data_dir, mib, args.runs)
    print(f"{args.runs} forks per size; p50 / p99 (times), medians (memory, from the sandbox's cgroup)\n")
    print("| state | measure | fork | baseline (same run) | ratio |\n|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
