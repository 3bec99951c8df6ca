"""Package installs and template builds, each beside a plain-pip baseline measured in the same run.

    sudo .venv/bin/python bench/install.py            # 5 repetitions
    sudo .venv/bin/python bench/install.py --reps 3

Rows:
* `install_packages`, package not in the server's cache: resolve + download on the host (PyPI
  through this machine's proxy), hard-link into the sandbox's view, `pip install` inside.
  Baseline: `pip install` of the same package into a plain venv on the host (no isolation).
* `install_packages`, package already in the cache: the host resolves offline from the cache.
  Baseline: `pip install --no-index --find-links <dir with the wheel>` into a plain venv.
* Template builds on top of code-interpreter: the example (`examples/templates/analysis`,
  scikit-learn from the wheel cache) with every layer rebuilt (`force`), and a three-step
  template rebuilt after changing its last command.

pip's own HTTP cache is off everywhere (PIP_NO_CACHE_DIR=1), so "not cached" means a download.
Each package install runs in a fresh sandbox, timed from the SDK call to its return.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _servers import nullspace_server
from rich.console import Console
from rich.table import Table

from nullspace import Sandbox
from nullspace.templates import BuildProgress, delete_template, ensure_template, load_spec

REPO = Path(__file__).resolve().parents[1]
MISSES = [
    "tabulate==0.9.0", "termcolor==2.4.0", "toolz==0.12.1", "inflection==0.5.1",
    "text-unidecode==1.3", "more-itertools==10.2.0", "wrapt==1.16.0",
]  # fmt: skip
HIT = "humanize==4.9.0"
console = Console()


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(values: list[float]) -> str:
    return f"{median(values):.2f} s (min {min(values):.2f}, n={len(values)})"


def timed_install(package: str) -> float:
    with Sandbox.create(timeout=120) as sandbox:
        started = time.perf_counter()
        result = sandbox.install_packages([package])
        seconds = time.perf_counter() - started
        name = package.split("==")[0]
        assert result.version(name), result
        check = sandbox.run_code(f"import importlib.metadata as m\nm.version({name!r})")
        assert check.error is None, check.error
    return seconds


def plain_pip(venv: Path, args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(venv / "bin/pip"), "install", "-q", *args], check=True)
    seconds = time.perf_counter() - started
    name = [a for a in args if not a.startswith("-") and "/" not in a][-1].split("==")[0]
    subprocess.run([str(venv / "bin/pip"), "uninstall", "-q", "-y", name], check=True)
    return seconds


def build_steps(spec_file: Path, data_dir: Path, force: bool = False) -> tuple[float, list[str]]:
    events: list[BuildProgress] = []
    started = time.perf_counter()
    ensure_template(load_spec(spec_file), data_dir, events.append, force=force)
    seconds = time.perf_counter() - started
    return seconds, [e.step for e in events if e.kind == "done" and not e.cached and e.step != "commit"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    reps = min(args.reps, len(MISSES))
    os.environ["PIP_NO_CACHE_DIR"] = "1"
    rows: list[tuple[str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="nsbench-install-", dir="/var/tmp"))
    try:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", "--upgrade", "pip"], check=False)
        wheels = work / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(wheels), HIT],
            check=True,
        )
        with nullspace_server(pool=0) as data_dir:
            console.print("warming up (first sandbox, first install of the cached package)")
            timed_install(HIT)
            misses = [timed_install(p) for p in MISSES[:reps]]
            hits = [timed_install(HIT) for _ in range(reps)]
            base_misses = [plain_pip(venv, [p]) for p in MISSES[:reps]]
            base_hits = [
                plain_pip(venv, ["--no-index", "--find-links", str(wheels), HIT]) for _ in range(reps)
            ]
            rows.append(
                ("install_packages, not in the cache", fmt(misses), f"pip install (PyPI): {fmt(base_misses)}")
            )
            rows.append(
                ("install_packages, in the cache", fmt(hits), f"pip install (local wheel): {fmt(base_hits)}")
            )

            spec_dir = work / "analysis"
            shutil.copytree(REPO / "examples/templates/analysis", spec_dir)
            spec = spec_dir / "template.toml"
            spec.write_text(spec.read_text().replace('name = "analysis"', 'name = "bench-analysis"'))
            scratch = work / "scratch"
            scratch.mkdir()
            (scratch / "template.toml").write_text(
                'name = "bench-scratch"\nbase = "template:code-interpreter"\n'
                f'run = ["echo one > /opt/one", "echo {time.time_ns()} > /opt/two"]\n'
            )
            try:
                forced, ran = build_steps(spec, data_dir, force=True)
                rows.append(
                    ("example template, every layer rebuilt", f"{forced:.2f} s ({', '.join(ran)})", "–")
                )
                first, ran = build_steps(scratch / "template.toml", data_dir)
                rows.append(("3-step template on code-interpreter", f"{first:.2f} s ({', '.join(ran)})", "–"))
                text = (scratch / "template.toml").read_text()
                (scratch / "template.toml").write_text(text.replace("/opt/two", "/opt/two && echo changed"))
                again, ran = build_steps(scratch / "template.toml", data_dir)
                rows.append(("same, last command changed", f"{again:.2f} s ({', '.join(ran)})", "–"))
                hit, ran = build_steps(scratch / "template.toml", data_dir)
                rows.append(
                    ("same, unchanged (cache hit)", f"{hit:.2f} s ({', '.join(ran) or 'nothing ran'})", "–")
                )
            finally:
                for name in ("bench-analysis", "bench-scratch"):
                    delete_template(name, data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        "what", "nullspace (median)", "baseline, same run", title="install_packages and template builds"
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
