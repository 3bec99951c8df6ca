"""What a console watching a sandbox costs the runs in it (the run bus, server/bus.py).

    sudo .venv/bin/python bench/console_watch.py

One sandbox on a server of its own. Rounds alternate between three cases so machine noise hits
them alike: nobody watches; a watcher reads `/v1/sandboxes/{id}/events` as fast as it comes (a
console page); a watcher that stopped reading (its socket buffers full, so its queue drops the
oldest events). Each case runs a warm `1 + 1` and a run printing 20,000 lines; medians and p99,
and each watched case as a ratio of the unwatched one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx
from _servers import nullspace_server
from _stats import p50_p99_ms

from nullspace import Sandbox

SMALL_ROUNDS = 150
FLOOD_ROUNDS = 12
FLOOD = "for i in range(20000): print('line', i)"


def client(data_dir: Path) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(data_dir / "nullspace.sock"))
    return httpx.Client(transport=transport, base_url="http://n", timeout=httpx.Timeout(30, read=None))


@contextmanager
def reading_watcher(data_dir: Path, sandbox_id: str) -> Iterator[None]:
    stop = threading.Event()
    opened = threading.Event()

    def follow() -> None:
        with client(data_dir) as c, c.stream("GET", f"/v1/sandboxes/{sandbox_id}/events") as reply:
            opened.set()
            for _ in reply.iter_raw():
                if stop.is_set():
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    opened.wait(10)
    try:
        yield
    finally:
        stop.set()


@contextmanager
def stalled_watcher(data_dir: Path, sandbox_id: str) -> Iterator[None]:
    with client(data_dir) as c, c.stream("GET", f"/v1/sandboxes/{sandbox_id}/events"):
        yield  # headers read, body never: the server's writes back up, the bus drops for it


def timed(sandbox: Sandbox, code: str) -> float:
    start = time.perf_counter()
    sandbox.run_code(code)
    return time.perf_counter() - start


def main() -> None:
    with nullspace_server(1) as data_dir:
        sandbox = Sandbox.create(timeout=1800)
        try:
            sid = sandbox.sandbox_id
            cases: dict[str, Callable[[], object]] = {
                "unwatched": nullcontext,
                "reading watcher": lambda: reading_watcher(data_dir, sid),
                "stalled watcher": lambda: stalled_watcher(data_dir, sid),
            }
            for _ in range(20):
                sandbox.run_code("1 + 1")
            sandbox.run_code(FLOOD)
            results: dict[str, dict[str, list[float]]] = {name: {"small": [], "flood": []} for name in cases}
            with reading_watcher(data_dir, sid), stalled_watcher(data_dir, sid):
                pass  # warm both paths once
            for round_ in range(SMALL_ROUNDS):
                for name, make in cases.items():
                    with make():  # type: ignore[attr-defined]
                        results[name]["small"].append(timed(sandbox, "1 + 1"))
                        if round_ < FLOOD_ROUNDS:
                            results[name]["flood"].append(timed(sandbox, FLOOD))
            base = {kind: p50_p99_ms(results["unwatched"][kind]) for kind in ("small", "flood")}
            print(f"{'case':<17} {'1 + 1 p50 / p99 ms':>22} {'ratio':>6}   {'20k lines p50 / p99 ms':>24} {'ratio':>6}")
            for name in cases:
                small, flood = p50_p99_ms(results[name]["small"]), p50_p99_ms(results[name]["flood"])
                print(f"{name:<17} {small[0]:>10.2f} / {small[1]:>8.2f} {small[0] / base['small'][0]:>6.2f}"
                      f"   {flood[0]:>11.1f} / {flood[1]:>8.1f} {flood[0] / base['flood'][0]:>6.2f}")
        finally:
            sandbox.kill()


if __name__ == "__main__":
    main()
