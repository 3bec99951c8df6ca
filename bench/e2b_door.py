"""What the E2B front door costs (not bench/e2b.py: that name would shadow the e2b package): the official E2B SDK next to ours, on one server, in one run.

    sudo .venv/bin/python bench/e2b_door.py                       # 8 creates and 200 warm runs per way (~2 min)
    sudo .venv/bin/python bench/e2b_door.py --creates 40 --runs 1000

Both SDKs talk HTTP to the same `nullspace serve` on 127.0.0.1 (ours with NULLSPACE_API_URL and a
key, E2B's with E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY), alternating run by run so that
both see the same machine:

* **create → first result**: `Sandbox.create()` + `run_code("1+1")`, each create claiming a sandbox
  of a warm pool (one is let be ready before each create), then the kill (not timed);
* **raw create**: `POST /v2/sandboxes` vs `POST /v1/sandboxes` over plain httpx, to the 201;
* **warm run_code("1+1")** in a sandbox made beforehand;
* **raw /execute**: the same run over plain httpx through each door (`POST /execute` with the
  E2B headers vs `POST /v1/sandboxes/{id}/execute`), on the same sandbox.

The raw rows are the translation alone, without either SDK's own work.

Ratios are E2B ÷ nullspace (p50).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from _servers import free_port, nullspace_server, wait_pool
from _stats import p50_p99_ms

POOL = 3


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=8)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with nullspace_server(pool=POOL, tcp_port=port) as data_dir:
        key = subprocess.run(
            [sys.executable, "-m", "nullspace", "keys", "create", "bench", "--data-dir", str(data_dir)],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        os.environ.update(E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=key, NULLSPACE_API_URL=url, NULLSPACE_API_KEY=key)
        import e2b_code_interpreter

        import nullspace

        doors = {"e2b": e2b_code_interpreter.Sandbox, "nullspace": nullspace.Sandbox}
        results: dict[str, dict[str, list[float]]] = {name: {"create": [], "raw_create": [], "warm": [], "raw": []} for name in doors}
        raw_create = {
            "e2b": ("/v2/sandboxes", {"templateID": "code-interpreter-v1", "metadata": {}, "envVars": {}}, "sandboxID"),
            "nullspace": ("/v1/sandboxes", {}, "sandbox_id"),
        }

        for i in range(args.creates + 1):  # the first round warms both paths up and is dropped
            for name in sorted(doors, reverse=i % 2 == 1):
                wait_pool(data_dir, 1, timeout=120)  # a warm sandbox to claim
                t0 = time.perf_counter()
                sbx = doors[name].create(timeout=120)
                sbx.run_code("1+1")
                elapsed = time.perf_counter() - t0
                sbx.kill()
                wait_pool(data_dir, 1, timeout=120)
                path, body, id_key = raw_create[name]
                with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
                    t0 = time.perf_counter()
                    made = client.post(path, json=body).json()[id_key]
                    raw_elapsed = time.perf_counter() - t0
                    client.delete(f"/v1/sandboxes/{made}")
                if i:
                    results[name]["create"].append(elapsed)
                    results[name]["raw_create"].append(raw_elapsed)

        sandboxes = {name: cls.create(timeout=600) for name, cls in doors.items()}
        for _ in range(20):
            for sbx in sandboxes.values():
                sbx.run_code("1+1")
        for i in range(args.runs):
            for name in sorted(doors, reverse=i % 2 == 1):
                results[name]["warm"].append(timed(lambda s=sandboxes[name]: s.run_code("1+1")))  # noqa: B023

        target = sandboxes["nullspace"]
        token = e2b_code_interpreter.Sandbox.connect(target.sandbox_id)._envd_access_token
        e2b_headers = {"E2b-Sandbox-Id": target.sandbox_id, "E2b-Sandbox-Port": "49999", "X-Access-Token": token}
        with httpx.Client(base_url=url, timeout=60) as client:
            raw = {
                "e2b": lambda: client.post("/execute", headers=e2b_headers,
                                           json={"code": "1+1", "context_id": None, "language": None, "env_vars": None}).read(),
                "nullspace": lambda: client.post(f"/v1/sandboxes/{target.sandbox_id}/execute", headers={"X-API-Key": key},
                                                 json={"code": "1+1"}).read(),
            }  # fmt: skip
            for _ in range(20):
                for fn in raw.values():
                    fn()
            for i in range(args.runs):
                for name in sorted(doors, reverse=i % 2 == 1):
                    results[name]["raw"].append(timed(raw[name]))
        for sbx in sandboxes.values():
            sbx.kill()

    labels = {"create": "create → first result (warm pool)", "raw_create": "raw create → 201 (httpx, no SDK)", "warm": 'warm run_code("1+1")', "raw": "raw /execute (httpx, no SDK)"}
    print(f"\nE2B door vs nullspace API, same server, {args.creates} creates / {args.runs} runs per way (ms)\n")
    print("| measure | E2B SDK p50 / p99 | nullspace SDK p50 / p99 | ratio (p50) |")
    print("|---|---|---|---|")
    for measure, label in labels.items():
        e50, e99 = p50_p99_ms(results["e2b"][measure])
        n50, n99 = p50_p99_ms(results["nullspace"][measure])
        print(f"| {label} | {e50:.1f} / {e99:.1f} | {n50:.1f} / {n99:.1f} | {e50 / n50:.2f}x |")


if __name__ == "__main__":
    main()
