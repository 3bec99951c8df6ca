"""How long a `print` in the kernel takes to reach the client, against raw jupyter_client.

    sudo .venv/bin/python bench/stream_delay.py              # 5 rounds of 50 prints each
    sudo .venv/bin/python bench/stream_delay.py --rounds 20

The kernel prints `time.time()` (flushed) every 20 ms; the receiver subtracts it from its own
`time.time()` when the text arrives (same host clock: a sandbox has no time namespace). Measured
in the same run, on the same machine:

* nullspace `on_stdout` callback (sync SDK, unix socket: kernel → agent → server → SDK);
* nullspace `run_code_stream` iterator (sync) and `AsyncSandbox.run_code_stream` (async for);
* baseline: jupyter_client's iopub on a host ipykernel (no isolation, no HTTP, no agent).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from _servers import nullspace_server, raw_kernel, stop_raw_kernel
from _stats import p50_p99_ms

from nullspace import AsyncSandbox, OutputMessage, Sandbox

CODE = "import time\nfor i in range({n}):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.02)"


def collector(delays: list[float]) -> Callable[[str], None]:
    def on_text(text: str) -> None:
        now = time.time()
        for line in text.splitlines():
            if line.strip():
                delays.append(now - float(line))

    return on_text


def summary(name: str, delays: list[float]) -> str:
    p50, p99 = p50_p99_ms(delays)
    return (
        f"{name:<38} n={len(delays):<5} median {p50:7.2f} ms"
        f"   p99 {p99:7.2f} ms   max {max(delays) * 1000:7.2f} ms"
    )


async def baseline(code: str, rounds: int) -> list[float]:
    delays: list[float] = []
    on_text = collector(delays)
    km, kc = await raw_kernel()
    try:
        for _ in range(rounds):
            await kc.execute_interactive(
                code,
                timeout=60,
                output_hook=lambda msg: (
                    on_text(msg["content"]["text"]) if msg["msg_type"] == "stream" else None
                ),
            )
    finally:
        await stop_raw_kernel(km, kc)
    return delays


async def async_iterator(sandbox_id: str, code: str, rounds: int) -> list[float]:
    delays: list[float] = []
    on_text = collector(delays)
    sbx = await AsyncSandbox.connect(sandbox_id)
    try:
        for _ in range(rounds):
            async for item in sbx.run_code_stream(code):
                if isinstance(item, OutputMessage):
                    on_text(item.line)
    finally:
        await sbx.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()
    code = CODE.format(n=args.lines)

    results: dict[str, list[float]] = {}
    results["baseline: jupyter_client iopub (host)"] = asyncio.run(baseline(code, args.rounds))
    with nullspace_server(pool=1), Sandbox.create(timeout=600) as sb:
        sb.run_code("1")  # warm the kernel
        callback: list[float] = []
        on_text = collector(callback)
        iterator: list[float] = []
        on_item = collector(iterator)
        for _ in range(args.rounds):
            sb.run_code(code, on_stdout=lambda m: on_text(m.line))
            for item in sb.run_code_stream(code):
                if isinstance(item, OutputMessage):
                    on_item(item.line)
        results["nullspace on_stdout callback (sync)"] = callback
        results["nullspace run_code_stream (sync for)"] = iterator
        results["nullspace run_code_stream (async for)"] = asyncio.run(
            async_iterator(sb.sandbox_id, code, args.rounds)
        )
    for name, delays in results.items():
        print(summary(name, delays))


if __name__ == "__main__":
    main()
