"""What MCP costs a run: `run_code("1 + 1")` in one warm sandbox through the SDK (baseline), through
MCP over streamable HTTP (`/mcp` on the server's unix socket) and through MCP over stdio
(`nullspace mcp`), in one run.

    sudo .venv/bin/python bench/mcp_overhead.py [--rounds 200]

Each round makes one call of each kind, in turn, so machine noise hits all three alike; medians
and p99 per call, and the ratio of each MCP path to the SDK. Every MCP call names the sandbox
(`sandbox_id`), so each one also connects to it (one GET) as a real tool call does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx2
from _servers import nullspace_server
from _stats import p50_p99_ms
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from nullspace import AsyncSandbox

CODE = "1 + 1"


async def measure(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"sdk": [], "mcp-http": [], "mcp-stdio": []}
    sandbox = await AsyncSandbox.create(timeout=600)
    sid = sandbox.sandbox_id
    stdio = StdioServerParameters(command=sys.executable, args=["-m", "nullspace", "mcp"], env=dict(os.environ))
    transport = httpx2.AsyncHTTPTransport(uds=os.environ["NULLSPACE_SOCKET"])
    try:
        async with (httpx2.AsyncClient(transport=transport, timeout=60) as http,
                    Client(streamable_http_client("http://nullspace/mcp", http_client=http), mode="legacy") as web,
                    Client(stdio, mode="legacy") as local):
            calls = {
                "sdk": lambda: sandbox.run_code(CODE),
                "mcp-http": lambda: web.call_tool("run_code", {"code": CODE, "sandbox_id": sid}),
                "mcp-stdio": lambda: local.call_tool("run_code", {"code": CODE, "sandbox_id": sid}),
            }
            for name, call in calls.items():  # warm-up, and a check that each path works
                result = await call()
                assert "2" in (result.text if name == "sdk" else str(result.content)), (name, result)
            for _ in range(rounds):
                for name, call in calls.items():
                    start = time.perf_counter()
                    await call()
                    times[name].append(time.perf_counter() - start)
    finally:
        await sandbox.kill()
        await sandbox.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with nullspace_server(1):
        times = asyncio.run(measure(args.rounds))
    base = p50_p99_ms(times["sdk"])
    print(f"run_code({CODE!r}) in a warm sandbox, {args.rounds} rounds")
    print(f"{'path':<10} {'p50 ms':>8} {'p99 ms':>8} {'p50 / sdk':>10}")
    for name, values in times.items():
        p50, p99 = p50_p99_ms(values)
        print(f"{name:<10} {p50:8.1f} {p99:8.1f} {p50 / base[0]:9.2f}x")


if __name__ == "__main__":
    main()
