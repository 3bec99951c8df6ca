"""What the E2B envd translation costs: `sandbox.commands` and `sandbox.files` of the official `e2b`
SDK next to ours, on one server and one sandbox, in one run; and how fast a watch event arrives.

    sudo .venv/bin/python bench/e2b_envd.py              # 200 calls per measure and way (~1 min)
    sudo .venv/bin/python bench/e2b_envd.py --calls 500

Both SDKs talk HTTP to the same `nullspace serve` on 127.0.0.1 and drive the same sandbox,
alternating call by call:

* `commands.run("true")`: E2B's Connect stream (`process.Process/Start`) vs our NDJSON stream;
* `files.write` of 1 KiB (E2B: multipart `POST /files`; ours: `PUT .../files`), then `files.read`;
* `files.list` of a directory of 50 files (`filesystem.Filesystem/ListDir` vs `GET .../files/list`);
* a keystroke typed into a terminal until its echo arrives (`sandbox.pty` of each SDK).

Then the watch: a process in the sandbox creates a file and prints the time; the E2B async SDK's
`watch_dir` callback notes when the event arrives (the sandbox shares the host's clock). For
comparison, what one scan of a polling watcher would cost: `os.walk` + `lstat` of the template's
`/opt/venv`, timed in the sandbox.

Ratios are E2B ÷ nullspace (p50).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from _servers import free_port, nullspace_server
from _stats import p50_p99_ms

SCAN = (
    "import os, time\n"
    "t = time.perf_counter(); n = 0\n"
    "for d, dirs, files in os.walk('/opt/venv'):\n"
    "    for f in files: os.lstat(os.path.join(d, f)); n += 1\n"
    "print(n, time.perf_counter() - t)\n"
)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


async def watch_latency(sandbox_id: str, rounds: int) -> list[float]:
    from e2b import AsyncSandbox

    sbx = await AsyncSandbox.connect(sandbox_id)
    await sbx.files.make_dir("/home/user/watched")
    arrived: dict[str, float] = {}
    handle = await sbx.files.watch_dir("/home/user/watched", on_event=lambda e: arrived.setdefault(e.name, time.time()))
    latencies = []
    for i in range(rounds):
        name = f"f{i}"
        script = f"import time; open('/home/user/watched/{name}', 'w').close(); print(repr(time.time()))"
        created = float((await sbx.commands.run(f'python -c "{script}"')).stdout)
        deadline = time.monotonic() + 5
        while name not in arrived and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        latencies.append(arrived[name] - created)
    await handle.stop()
    return latencies


def keystroke_echo(start: Callable[[Callable[[bytes], None]], Callable[[bytes], None]], rounds: int) -> list[float]:
    """Type one key into a terminal and wait for its echo (the terminal's line discipline echoes
    it): input request → sandbox → output stream → client. `start(on_data)` opens a terminal and
    returns its `send(bytes)`."""
    seen = threading.Condition()
    count = [0]

    def on_data(data: bytes) -> None:
        with seen:
            count[0] += data.count(b"x")
            seen.notify_all()

    send = start(on_data)
    time.sleep(0.5)  # the shell's prompt
    latencies = []
    for _ in range(rounds):
        with seen:
            before = count[0]
        t0 = time.perf_counter()
        send(b"x")
        with seen:
            seen.wait_for(lambda: count[0] > before, timeout=5)  # noqa: B023
        latencies.append(time.perf_counter() - t0)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with nullspace_server(pool=1, tcp_port=port) as data_dir:
        key = subprocess.run(
            [sys.executable, "-m", "nullspace", "keys", "create", "bench", "--data-dir", str(data_dir)],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        os.environ.update(E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=key, NULLSPACE_API_URL=url, NULLSPACE_API_KEY=key)
        import e2b

        import nullspace

        ours = nullspace.Sandbox.create(timeout=600)
        theirs = e2b.Sandbox.connect(ours.sandbox_id)
        for i in range(50):
            ours.files.write(f"listed/{i:02}.txt", "x")
        payload = os.urandom(1024)
        measures: dict[str, dict[str, Callable[[], object]]] = {
            'commands.run("true")': {"e2b": lambda: theirs.commands.run("true"), "nullspace": lambda: ours.commands.run("true")},
            "files.write 1 KiB": {"e2b": lambda: theirs.files.write("w.bin", payload), "nullspace": lambda: ours.files.write("w.bin", payload)},
            "files.read 1 KiB": {"e2b": lambda: theirs.files.read("w.bin", format="bytes"), "nullspace": lambda: ours.files.read("w.bin", format="bytes")},
            "files.list (50 entries)": {"e2b": lambda: theirs.files.list("listed"), "nullspace": lambda: ours.files.list("listed")},
        }  # fmt: skip
        results: dict[str, dict[str, list[float]]] = {m: {"e2b": [], "nullspace": []} for m in measures}
        for measure, ways in measures.items():
            for _ in range(10):  # warm both paths
                for fn in ways.values():
                    fn()
            for i in range(args.calls):
                for name in sorted(ways, reverse=i % 2 == 1):
                    results[measure][name].append(timed(ways[name]))

        latencies = asyncio.run(watch_latency(ours.sandbox_id, 30))

        def ours_pty(on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
            term = ours.pty.create()
            threading.Thread(target=term.wait, kwargs={"on_data": on_data}, daemon=True).start()
            return term.send_input

        def e2b_pty(on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
            term = theirs.pty.create(e2b.PtySize(rows=24, cols=80), timeout=0)
            threading.Thread(target=term.wait, kwargs={"on_pty": on_data}, daemon=True).start()
            return lambda data: theirs.pty.send_stdin(term.pid, data)

        echoes = {"e2b": keystroke_echo(e2b_pty, 100), "nullspace": keystroke_echo(ours_pty, 100)}
        scans = [ours.commands.run(["python", "-c", SCAN]).stdout.split() for _ in range(5)]
        ours.kill()

    print(f"\nE2B envd door vs nullspace API, same server and sandbox, {args.calls} calls per way (ms)\n")
    print("| measure | E2B SDK p50 / p99 | nullspace SDK p50 / p99 | ratio (p50) |")
    print("|---|---|---|---|")
    for measure, by_way in results.items():
        e50, e99 = p50_p99_ms(by_way["e2b"])
        n50, n99 = p50_p99_ms(by_way["nullspace"])
        print(f"| {measure} | {e50:.1f} / {e99:.1f} | {n50:.1f} / {n99:.1f} | {e50 / n50:.2f}x |")
    e50, e99 = p50_p99_ms(echoes["e2b"])
    n50, n99 = p50_p99_ms(echoes["nullspace"])
    print(f"| terminal keystroke → echo (pty) | {e50:.1f} / {e99:.1f} | {n50:.1f} / {n99:.1f} | {e50 / n50:.2f}x |")
    w50, w99 = p50_p99_ms(latencies)
    files = scans[0][0]
    scan = statistics.median(float(s[1]) for s in scans) * 1000
    print(f"\nwatch_dir (inotify): file created in the sandbox → event in the E2B SDK: p50 {w50:.1f} ms, p99 {w99:.1f} ms (30 events)")
    print(f"one polling scan instead (os.walk + lstat of /opt/venv, {files} files, in the sandbox): p50 {scan:.0f} ms")


if __name__ == "__main__":
    main()
