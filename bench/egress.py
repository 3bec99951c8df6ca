"""Egress proxy cost: an allowed HTTPS download through the proxy vs the same download direct.

    sudo .venv/bin/python bench/egress.py                  # 40 small requests, 3 x 32 MiB
    sudo .venv/bin/python bench/egress.py --requests 100 --mib 64

"The internet" is the tests' stand-in (tests/integration/egress_net.py: a network namespace with
an HTTPS server on a veth, its own CA, its own DNS). The same client (http.client, one script)
runs twice in the same run:

* direct: on the host, to the server's address (the baseline: no sandbox, no proxy);
* proxied: inside a sandbox with ``network=["allowed.test"]``, through HTTPS_PROXY: the agent's
  forwarder, the egress socket, the proxy's checks, resolution, TLS termination with the
  sandbox's CA and a second TLS connection to the server.

Measured: a GET of a small answer on a fresh connection each time (connect + TLS + request),
the same on one kept-alive connection, and the throughput of a large download. The server runs
with no egress rate limit (the default limit, 10 MiB/s per sandbox, would be the result).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _servers import nullspace_server
from _stats import p50_p99_ms

from nullspace import Sandbox

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("egress_net", REPO / "tests/integration/egress_net.py")
assert _spec and _spec.loader
egress_net = importlib.util.module_from_spec(_spec)
sys.modules["egress_net"] = egress_net
_spec.loader.exec_module(egress_net)

CLIENT = r'''
import http.client, json, os, socket, ssl, sys, time
mode, address, requests, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or sys.argv[5])

def connection():
    if mode == "proxy":
        conn = http.client.HTTPSConnection("127.0.0.1", 3128, context=ctx, timeout=60)
        conn.set_tunnel("allowed.test", 443)
    else:
        conn = http.client.HTTPSConnection("allowed.test", 443, context=ctx, timeout=60)
        conn._create_connection = lambda addr, *a, **k: socket.create_connection((address, 443), *a, **k)
    return conn

def get(conn, path):
    conn.request("GET", path)
    response = conn.getresponse()
    n = 0
    while chunk := response.read(1 << 20):
        n += len(chunk)
    assert response.status == 200, response.status
    return n

fresh, kept, rates = [], [], []
for _ in range(requests):
    t = time.perf_counter(); conn = connection(); get(conn, "/echo"); fresh.append(time.perf_counter() - t); conn.close()
conn = connection(); get(conn, "/echo")
for _ in range(requests):
    t = time.perf_counter(); get(conn, "/echo"); kept.append(time.perf_counter() - t)
conn.close()
for _ in range(3):
    conn = connection(); t = time.perf_counter(); n = get(conn, f"/bytes/{size}"); rates.append(n / (time.perf_counter() - t)); conn.close()
    assert n == size
print(json.dumps({"fresh": fresh, "kept": kept, "rates": rates}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--mib", type=int, default=32)
    args = parser.parse_args()
    size = args.mib << 20
    with egress_net.internet() as net:
        config = net.egress_config(net.dir / "egress.toml", rate_bytes=0, max_bytes=1 << 40)
        with nullspace_server(0, extra=("--egress-config", str(config))):
            direct = json.loads(subprocess.run(
                [sys.executable, "-c", CLIENT, "direct", net.ip, str(args.requests), str(size), str(net.ca_file)],
                check=True, capture_output=True, text=True, env={**os.environ, "SSL_CERT_FILE": ""},
            ).stdout)
            with Sandbox.create(timeout=600, network=["allowed.test"]) as sandbox:
                sandbox.files.write("/tmp/client.py", CLIENT)
                out = sandbox.commands.run(
                    f"python /tmp/client.py proxy - {args.requests} {size} -", timeout=600
                ).stdout
                proxied = json.loads(out)
    print(f"egress proxy vs direct, HTTPS, {args.requests} requests, {args.mib} MiB downloads x3 (same run)")
    print(f"{'':28}{'direct':>18}{'proxied':>18}{'ratio p50':>12}")
    for key, label in (("fresh", "new connection GET p50/p99"), ("kept", "kept-alive GET p50/p99")):
        d, p = p50_p99_ms(direct[key]), p50_p99_ms(proxied[key])
        print(f"{label:28}{d[0]:>9.2f}/{d[1]:<6.2f}ms{p[0]:>9.2f}/{p[1]:<6.2f}ms{p[0] / d[0]:>11.2f}x")
    d_rate, p_rate = statistics.median(direct["rates"]) / 2**20, statistics.median(proxied["rates"]) / 2**20
    print(f"{'download MiB/s (median)':28}{d_rate:>16.0f}  {p_rate:>16.0f}  {p_rate / d_rate:>11.2f}x")


if __name__ == "__main__":
    main()
