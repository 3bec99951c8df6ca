"""nullspace benchmark suite: every figure beside a baseline measured in the same run.

    sudo .venv/bin/python bench/suite.py                     # everything, writes docs/benchmarks.md
    sudo .venv/bin/python bench/suite.py --quick             # fewer repetitions, no burst, no density
    sudo .venv/bin/python bench/suite.py --only create,execute

Needs the bench extras: .venv/bin/pip install jupyter_kernel_gateway websocket-client

Baselines: raw jupyter_client driving an ipykernel on the host (no isolation, no HTTP, no agent),
and Jupyter Kernel Gateway (the peer: REST + websocket) on the same machine. nullspace is driven
through its SDK over the unix socket, with real isolation. Medians and p99 over repeated runs; this
2-core VM is shared and noisy (±30 % between runs), so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from _servers import (
    KernelGateway,
    mem_available,
    nullspace_server,
    pool_state,
    raw_kernel,
    stop_raw_kernel,
    wait_pool,
)
from _stats import p50_p99_ms
from cold_start import cold_breakdown, first_plot
from density import held_idle
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from nullspace import Sandbox

REPO = Path(__file__).resolve().parents[1]
console = Console()
Row = tuple[str, str, str, str, str]


def row(label: str, ours: list[float], base: list[float] | None, base_name: str = "") -> Row:
    o50, o99 = p50_p99_ms(ours)
    if not base:
        return (label, f"{o50:.1f}", f"{o99:.1f}", "–", "–")
    b50, b99 = p50_p99_ms(base)
    return (label, f"{o50:.1f}", f"{o99:.1f}", f"{b50:.1f} / {b99:.1f} ({base_name})", f"{o50 / b50:.2f}×")


def timed(n: int, label: str, progress: Progress, fn: Callable[[], None]) -> list[float]:
    task = progress.add_task(label, total=n)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        progress.advance(task)
    return out


# -- baselines -------------------------------------------------------------------------------
async def _jc_cold_once() -> None:
    km, kc = await raw_kernel()
    await kc.execute_interactive("1+1", timeout=60)
    await stop_raw_kernel(km, kc)


class WarmJupyter:
    """One raw ipykernel on the host, kept warm; the baseline for execute and stream delay."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.km, self.kc = self.loop.run_until_complete(raw_kernel())

    def run(self, code: str, on_output: Callable[[dict], None] | None = None) -> None:
        self.loop.run_until_complete(self.kc.execute_interactive(code, timeout=60, output_hook=on_output))

    def close(self) -> None:
        self.loop.run_until_complete(stop_raw_kernel(self.km, self.kc))
        self.loop.close()


# -- sections --------------------------------------------------------------------------------
def section_create(n: int, progress: Progress) -> list[Row]:
    def first_result() -> None:
        sb = Sandbox.create(timeout=120)
        assert sb.run_code("1+1").text == "2"
        created.append(sb)

    created: list[Sandbox] = []
    with nullspace_server(pool=4) as data_dir:
        wait_pool(data_dir, 4)
        warm = []
        task = progress.add_task("create → first result (warm pool)", total=n)
        for _ in range(n):
            wait_pool(data_dir, 1)
            t0 = time.perf_counter()
            first_result()
            warm.append(time.perf_counter() - t0)
            created.pop().kill()
            progress.advance(task)
            time.sleep(0.3)  # let the refill finish, as between requests of a real app
    with nullspace_server(pool=0):
        cold = timed(n, "create → first result (cold)", progress, first_result)
        kills = timed(len(created), "kill", progress, lambda: created.pop().kill())
    jc = timed(n, "jupyter_client cold start", progress, lambda: asyncio.run(_jc_cold_once()))
    gw = KernelGateway()
    try:
        def gateway_first() -> None:
            kid = gw.start_kernel()
            ws = gw.connect(kid)
            gw.execute(ws, "1+1")
            ws.close()
            gw.delete_kernel(kid)
        kg = timed(n, "kernel gateway start → first result", progress, gateway_first)
    finally:
        gw.close()
    return [
        row("create → first result, warm pool", warm, jc, "jupyter_client cold"),
        row("create → first result, cold (no pool)", cold, jc, "jupyter_client cold"),
        row("kernel gateway: start → first result", kg, jc, "jupyter_client cold"),
        row("kill (cgroup kill, unmount, rm)", kills, None),
    ]


def section_execute(n: int, progress: Progress) -> list[Row]:
    raw = WarmJupyter()
    gw = KernelGateway()
    kid = gw.start_kernel()
    ws = gw.connect(kid)
    try:
        with nullspace_server(pool=1), Sandbox.create(timeout=600) as sb:
            for _ in range(10):
                sb.run_code("1+1")
                raw.run("1+1")
                gw.execute(ws, "1+1")
            ours = timed(n, "nullspace run_code('1+1')", progress, lambda: sb.run_code("1+1"))
            base = timed(n, "jupyter_client execute", progress, lambda: raw.run("1+1"))
            peer = timed(n, "kernel gateway execute", progress, lambda: gw.execute(ws, "1+1"))
    finally:
        ws.close()
        gw.close()
        raw.close()
    return [
        row("warm run_code('1+1')", ours, base, "jupyter_client"),
        row("kernel gateway execute('1+1')", peer, base, "jupyter_client"),
    ]


STREAM_CODE = "import time\nfor i in range(40):\n    print(time.time(), flush=True)\n    time.sleep(0.02)"


def section_stream(progress: Progress) -> list[Row]:
    def collect(delays: list[float]) -> Callable[[str], None]:
        def on_line(text: str) -> None:
            now = time.time()
            for line in text.splitlines():
                if line.strip():
                    delays.append(now - float(line))
        return on_line

    ours: list[float] = []
    base: list[float] = []
    raw = WarmJupyter()
    try:
        with nullspace_server(pool=1), Sandbox.create(timeout=600) as sb:
            task = progress.add_task("print → on_stdout delay", total=5)
            hook = collect(ours)
            raw_hook = collect(base)
            for _ in range(5):
                sb.run_code(STREAM_CODE, on_stdout=lambda m: hook(m.line))
                raw.run(STREAM_CODE, lambda msg: raw_hook(msg["content"]["text"]) if msg["msg_type"] == "stream" else None)
                progress.advance(task)
    finally:
        raw.close()
    return [row("print → on_stdout delay", ours, base, "jupyter_client iopub")]


def section_burst(n: int, progress: Progress) -> tuple[list[Row], list[str]]:
    before = mem_available()
    notes = []
    with nullspace_server(pool=n) as data_dir:
        task = progress.add_task(f"filling a pool of {n}", total=n)
        while (ready := pool_state(data_dir)["ready"]) < n:
            progress.update(task, completed=ready)
            time.sleep(1)
        progress.update(task, completed=n)
        time.sleep(2)
        per = (before - mem_available()) / n
        notes.append(f"a pooled sandbox (preload imported, never used) holds {per / 2**20:.0f} MiB")

        created: list[Sandbox] = []

        def one(_: int) -> float:
            t0 = time.perf_counter()
            sb = Sandbox.create(timeout=120)
            created.append(sb)
            assert sb.run_code("1+1").text == "2"
            return time.perf_counter() - t0

        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            each = list(ex.map(one, range(n)))
        # the measure ends when every create has its first result; the kills come after it
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda sb: sb.kill(), created))
        notes.append(f"{n} concurrent creates (pool of {n}): all had a first result after {max(each) * 1000:.0f} ms")
    return [row(f"{n} concurrent creates → first result (each)", each, None)], notes


def section_cold(n: int, plots: int, progress: Progress) -> tuple[list[Row], list[str]]:
    task = progress.add_task("cold start breakdown, first plots", total=None)
    breakdown = cold_breakdown(n)
    pooled, cold = first_plot(plots)
    progress.update(task, total=1, completed=1)
    steps = ", ".join(
        f"{name} {p50_p99_ms(values)[0]:.0f}" for name, values in breakdown.items() if not name.endswith("CPU")
    )
    cpu = " and ".join(f"{name} {p50_p99_ms(values)[0]:.0f} ms" for name, values in breakdown.items() if name.endswith("CPU"))
    notes = [f"cold start, p50 ms after the create request (bench/cold_start.py, {n} creates): {steps}; {cpu} until then"]
    rows = [row("first plot right after create, warm pool (preloaded)", pooled, cold, "the same, cold")]
    return rows, notes


LOOP_PERIOD = 1 / 3  # an agent loop: create, one cell, kill, about three times a second


def _loop(n: int, pool: int | str, progress: Progress) -> tuple[list[float], dict[str, int]]:
    """`n` back-to-back create → run_code → kill, paced at LOOP_PERIOD, from a settled pool."""
    with nullspace_server(pool=pool) as data_dir:
        wait_pool(data_dir, 2, timeout=300)
        time.sleep(1)
        task = progress.add_task(f"back-to-back loop, pool {pool}", total=n)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            sb = Sandbox.create(timeout=60)
            assert sb.run_code("1+1").text == "2"
            times.append(time.perf_counter() - t0)
            sb.kill()
            progress.advance(task)
            time.sleep(max(0.0, LOOP_PERIOD - (time.perf_counter() - t0)))
        return times, pool_state(data_dir)


def section_loop(n: int, progress: Progress) -> tuple[list[Row], list[str]]:
    fixed, fixed_state = _loop(n, 2, progress)
    demand, state = _loop(n, "2:8", progress)
    rows = [row("back-to-back create → first result, ~3/s (pool follows demand, 2:8)", demand, fixed, "fixed pool of 2")]
    notes = [
        f"back-to-back loop, {n} iterations at ~3/s: pool 2:8 (default) {state['claimed']} hits / "
        f"{state['missed']} misses, target reached {state['target']}; fixed pool of 2: "
        f"{fixed_state['claimed']} hits / {fixed_state['missed']} misses"
    ]
    return rows, notes


SPIN = "import time\nend = time.perf_counter() + {s}\nn = 0\nwhile time.perf_counter() < end: n += 1\nn"


def section_refill(progress: Progress) -> tuple[list[Row], list[str]]:
    """A busy sandbox's CPU throughput (loop iterations in 1 s) while the pool is quiet and while
    it refills after a burst of claims: refills must leave running sandboxes their CPU."""
    task = progress.add_task("busy sandbox while the pool refills", total=None)
    with nullspace_server(pool="2:8") as data_dir:
        wait_pool(data_dir, 2, timeout=300)
        time.sleep(2)
        with Sandbox.create(timeout=300, cpu=1.0) as busy:
            quiet = [float(busy.run_code(SPIN.format(s=1.0)).text) for _ in range(5)]
            burst = [Sandbox.create(timeout=60) for _ in range(8)]  # claims: the pool grows and refills
            for sb in burst:
                sb.kill()
            during = []
            while pool_state(data_dir)["starting"] or len(during) < 3:
                during.append(float(busy.run_code(SPIN.format(s=1.0)).text))
                if len(during) >= 15:
                    break
    progress.update(task, total=1, completed=1)
    q = sorted(quiet)[len(quiet) // 2]
    d = sorted(during)[len(during) // 2]
    return [], [f"a busy 1-core sandbox's throughput while the pool refilled: {d / q:.2f}× of its throughput "
                f"with the pool quiet (median of {len(during)} and {len(quiet)} one-second spins)"]


def section_density(limit: int, progress: Progress) -> list[str]:
    return held_idle(limit, 0.15, progress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="create,cold,execute,stream,loop,refill,burst,density")
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--density", type=int, default=200, help="idle sandboxes to hold (bounded by memory)")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", dest="write", action="store_const", const=None, help="print only")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    n_create, n_exec = (10, 100) if args.quick else (30, 300)
    rows: list[Row] = []
    notes: list[str] = []
    with Progress(console=console) as progress:
        if "create" in sections:
            rows += section_create(n_create, progress)
        if "cold" in sections:
            cold_rows, cold_notes = section_cold(n_create // 2, 4 if args.quick else 8, progress)
            rows += cold_rows
            notes += cold_notes
        if "execute" in sections:
            rows += section_execute(n_exec, progress)
        if "stream" in sections:
            rows += section_stream(progress)
        if "loop" in sections:
            loop_rows, loop_notes = section_loop(20 if args.quick else 45, progress)
            rows += loop_rows
            notes += loop_notes
        if "refill" in sections:
            notes += section_refill(progress)[1]
        if "burst" in sections and not args.quick:
            burst_rows, burst_notes = section_burst(args.burst, progress)
            rows += burst_rows
            notes += burst_notes
        if "density" in sections and not args.quick:
            notes += section_density(args.density, progress)
    table = Table("measure (ms)", "nullspace p50", "p99", "baseline p50 / p99", "ratio p50")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    for note in notes:
        console.print("•", note)
    machine = f"{os.cpu_count()} cores, {mem_available() / 2**30:.0f} GiB available, {platform.platform()}, Python {platform.python_version()}"
    console.print(machine)
    if args.write:
        text = [
            f"## Latest run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"`sudo .venv/bin/python bench/suite.py{' --quick' if args.quick else ''}` on {machine}.",
            "",
            "| measure (ms) | nullspace p50 | p99 | baseline p50 / p99 | ratio p50 |",
            "|---|---|---|---|---|",
            *("| " + " | ".join(r) + " |" for r in rows),
            "",
            *(f"* {n}" for n in notes),
            "",
        ]
        doc = args.write.read_text() if args.write.exists() else ""
        marker = "<!-- bench results -->"
        head = doc.split(marker)[0] if marker in doc else doc
        args.write.write_text(head.rstrip() + "\n\n" + marker + "\n\n" + "\n".join(text))


if __name__ == "__main__":
    main()
