"""Cold start and warm round trip per language, beside Python and a raw jupyter_client baseline.

    sudo .venv/bin/python bench/languages.py [--cold 5] [--runs 100] [--write docs/benchmarks.md]

Through the SDK over the unix socket (a server in a child process, real isolation):

* **cold context**: `create_context(language)` + the first `run_code` in it, i.e. a kernel
  start plus one run (measured in one sandbox whose prestart is off, contexts removed after use);
* **first run, prestarted**: the first `run_code(language=...)` in a fresh sandbox that was left
  idle for a few seconds after create, so the agent had started its prestart kernels;
* **warm run**: `run_code` of a trivial expression in a language's default context.

The baseline is jupyter_client driving an ipykernel directly on the host (no isolation, no HTTP,
no agent), as in bench/core.py. Medians and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from pathlib import Path

from _servers import nullspace_server, raw_kernel, stop_raw_kernel
from _stats import p50_p99_ms
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()

LANGUAGES = {  # language -> (a trivial run, its expected output: result text or stdout)
    "python": ("1 + 1", "2"),
    "r": ("1 + 1", "[1] 2"),
    "javascript": ("1 + 1", "2"),
    "typescript": ("const n: number = 1\nn + 1", "2"),
    "java": ("1 + 1", "2"),
    "bash": ("echo 2", "2\n"),
}


def ms(values: list[float]) -> tuple[str, str]:
    if not values:
        return "–", "–"
    p50, p99 = p50_p99_ms(values)
    return f"{p50:.1f}", f"{p99:.1f}"


def output(execution) -> str:  # noqa: ANN001
    if execution.error is not None:
        raise RuntimeError(f"run failed: {execution.error}")
    return execution.text if execution.text is not None else "".join(execution.logs.stdout)


# -- baseline ------------------------------------------------------------------------------------
async def baseline(cold_n: int, runs: int) -> dict[str, list[float]]:
    cold, warm = [], []
    for _ in range(cold_n):
        t0 = time.perf_counter()
        km, kc = await raw_kernel()
        await kc.execute_interactive("1+1", timeout=60)
        cold.append(time.perf_counter() - t0)
        if len(cold) == cold_n:
            for _ in range(runs):
                t1 = time.perf_counter()
                await kc.execute_interactive("1+1", timeout=60)
                warm.append(time.perf_counter() - t1)
        await stop_raw_kernel(km, kc)
    return {"cold": cold, "warm": warm}


# -- nullspace -----------------------------------------------------------------------------------
def measure(languages: list[str], cold_n: int, runs: int, prestarted_n: int) -> dict[str, dict[str, list[float]]]:
    from nullspace import Sandbox

    data: dict[str, dict[str, list[float]]] = {lang: {"cold": [], "warm": [], "prestarted": []} for lang in languages}
    with Sandbox.create(timeout=1800, envs={"NULLSPACE_PRESTART": "none"}) as sb:
        for lang in languages:
            code, expected = LANGUAGES[lang]
            console.print(f"[dim]{lang}: {cold_n} cold contexts, {runs} warm runs[/dim]")
            for _ in range(cold_n):
                t0 = time.perf_counter()
                ctx = sb.create_context(language=lang)
                got = output(sb.run_code(code, context=ctx, timeout=120))
                data[lang]["cold"].append(time.perf_counter() - t0)
                assert got == expected, (lang, got)
                sb.remove_context(ctx)
            for _ in range(5):
                sb.run_code(code, language=lang, timeout=120)
            for _ in range(runs):
                t0 = time.perf_counter()
                sb.run_code(code, language=lang, timeout=60)
                data[lang]["warm"].append(time.perf_counter() - t0)
    for i in range(prestarted_n):
        console.print(f"[dim]prestarted sandbox {i + 1}/{prestarted_n}[/dim]")
        with Sandbox.create(timeout=300) as sb:
            sb.run_code("1")
            time.sleep(8)  # idle: the agent starts its prestart kernels one after the other
            for lang in languages:
                code, expected = LANGUAGES[lang]
                t0 = time.perf_counter()
                got = output(sb.run_code(code, language=lang, timeout=120))
                data[lang]["prestarted"].append(time.perf_counter() - t0)
                assert got == expected, (lang, got)
    return data


def kernel_memory() -> list[tuple[str, str]]:
    """RSS of each kernel process in an idle sandbox after prestart and a run per language."""
    from nullspace import Sandbox

    with Sandbox.create(timeout=300) as sb:
        for lang, (code, _) in LANGUAGES.items():
            sb.run_code(code, language=lang, timeout=120)
        ps = sb.run_code("ps -eo rss=,args= --sort=-rss | head -12", language="bash")
    rows = []
    for line in "".join(ps.logs.stdout).splitlines():
        rss, _, args = line.strip().partition(" ")
        rows.append((f"{int(rss) / 1024:.0f}", args[:90]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=5, help="cold contexts per language")
    parser.add_argument("--runs", type=int, default=100, help="warm runs per language")
    parser.add_argument("--prestarted", type=int, default=3, help="fresh sandboxes for the prestart column")
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--write", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]

    with nullspace_server(pool=0):
        base = asyncio.run(baseline(args.cold, args.runs))
        ours = measure(languages, args.cold, args.runs, args.prestarted)
        memory = kernel_memory()

    header = ("language", "cold context p50", "p99", "first run, prestarted p50", "warm run p50", "p99")
    rows = [("python (raw jupyter_client, host)", *ms(base["cold"]), "–", *ms(base["warm"]))]
    for lang in languages:
        d = ours[lang]
        rows.append((lang, *ms(d["cold"]), ms(d["prestarted"])[0], *ms(d["warm"])))
    table = Table(*(f"{h} (ms)" if i else h for i, h in enumerate(header)))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    mem = Table("RSS (MiB)", "process (idle sandbox, one run per language)")
    for row in memory:
        mem.add_row(*row)
    console.print(mem)
    machine = f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    console.print(machine)
    if args.write:
        lines = [
            f"\n### bench/languages.py — {time.strftime('%Y-%m-%d %H:%M')} "
            f"(cold={args.cold}, runs={args.runs}, prestarted={args.prestarted})\n",
            f"Machine: {machine}\n",
            "| " + " | ".join(f"{h} (ms)" if i else h for i, h in enumerate(header)) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows),
            "",
            "| RSS (MiB) | process |",
            "|---|---|",
            *(f"| {rss} | `{args_}` |" for rss, args_ in memory),
            "",
        ]
        with open(args.write, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
