"""How many idle code-interpreter sandboxes one machine holds at once, and what each one costs.

    sudo .venv/bin/python bench/density.py                 # up to 200 sandboxes
    sudo .venv/bin/python bench/density.py --max 300 --floor 0.15

Cold creates (no pool, so no preload), 4 at a time, each followed by a first `run_code`; creating
stops at `--max` sandboxes or when the host's MemAvailable would fall under `--floor` of what it
was at the start (bounded: the machine never runs short). Then every sandbox must still answer a
`run_code`, and the memory held is MemAvailable before minus after. A sandbox from a warm pool
also holds its template's `preload` (~54 MiB more for code-interpreter, bench/cold_start.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _servers import mem_available, nullspace_server
from rich.progress import Progress

from nullspace import AsyncSandbox

GiB = 1 << 30
MiB = 1 << 20


async def hold(limit: int, floor: float, progress: Progress) -> list[str]:
    """Create up to `limit` idle sandboxes (against the server the SDK finds); the report lines."""
    before = mem_available()
    stop_below = before * floor
    sandboxes: list[AsyncSandbox] = []
    gate = asyncio.Semaphore(4)
    task = progress.add_task(f"holding up to {limit} idle sandboxes", total=limit)
    stopped = ""

    async def one() -> None:
        async with gate:
            if stopped:
                return
            sb = await AsyncSandbox.create(timeout=1800)
            sandboxes.append(sb)
            assert (await sb.run_code("1+1")).text == "2"
            progress.advance(task)

    t0 = time.perf_counter()
    try:
        pending = [asyncio.create_task(one()) for _ in range(limit)]
        for done in asyncio.as_completed(pending):
            await done
            if not stopped and mem_available() < stop_below:
                stopped = f"stopped early: MemAvailable fell under {floor:.0%} of the start"
        created = time.perf_counter() - t0
        await asyncio.sleep(2)
        held = before - mem_available()
        answers = await asyncio.gather(*(sb.run_code("1+1") for sb in sandboxes))
        alive = sum(r.text == "2" for r in answers)
    finally:
        await asyncio.gather(*(sb.kill() for sb in sandboxes), return_exceptions=True)
    n = len(sandboxes)
    per = held / n
    return [
        f"{n} idle code-interpreter sandboxes held at once ({alive} answered a run_code afterwards); "
        f"created in {created:.0f} s, 4 at a time{'; ' + stopped if stopped else ''}",
        f"memory held: {held / GiB:.2f} GiB, {per / MiB:.0f} MiB per sandbox (host MemAvailable before: "
        f"{before / GiB:.1f} GiB → room for ≈{int(before * 0.9 / per)} at 90 %)",
    ]


def held_idle(limit: int, floor: float, progress: Progress) -> list[str]:
    """`hold` against a fresh server without a pool."""
    with nullspace_server(pool=0):
        return asyncio.run(hold(limit, floor, progress))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, default=200)
    parser.add_argument("--floor", type=float, default=0.15, help="stop when MemAvailable falls under this share")
    args = parser.parse_args()
    with Progress() as progress:
        lines = held_idle(args.max, args.floor, progress)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
