"""GET /metrics after real activity, parsed with prometheus_client's own parser."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nullspace import DiskFullError, InvalidArgumentError, Sandbox


def _scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN001
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as c:
        response = c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:  # noqa: ANN001
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _sum(samples: dict, name: str, **labels: str) -> float:  # noqa: ANN001
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= set(lbl))


def test_counters_move_with_real_activity(server) -> None:  # noqa: ANN001
    before = _scrape(server)
    with Sandbox.create(timeout=120, metadata={"test": "metrics"}, memory_mb=256, disk_mb=32) as sandbox:
        during = _scrape(server)
        assert _value(during, "nullspace_sandboxes", template="code-interpreter", state="running") >= 1
        assert sandbox.run_code("1 + 1").text == "2"
        assert sandbox.run_code("1 / 0").error.name == "ZeroDivisionError"
        died = sandbox.run_code("import os; os._exit(1)").error
        assert died is not None and died.name == "KernelDied"
        with pytest.raises(InvalidArgumentError):
            sandbox.install_packages(["not a requirement!"])
        with pytest.raises(DiskFullError):
            sandbox.files.write("big.bin", b"\0" * (40 << 20))  # over disk_mb=32
        oom = sandbox.run_code("chunks = [b'x' * (16 << 20) for _ in range(64)]").error  # over memory_mb=256
        sid = sandbox.sandbox_id
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as c:
        assert c.get("/v1/sandboxes/sb_0000000000000000").status_code == 404
        assert c.get("/no/such/route/" + sid).status_code == 404
        e2b = c.get("/health", headers={"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49999"})
        assert e2b.status_code == 502  # ended: E2B's "sandbox not found"
        assert c.get("/sandboxes").status_code == 200  # E2B's control plane: list
    after = _scrape(server)

    def moved(name: str, by: float = 1, **labels: str) -> None:
        delta = _sum(after, name, **labels) - _sum(before, name, **labels)
        assert delta >= by, f"{name}{labels} moved by {delta}"

    moved("nullspace_sandbox_creates_total", template="code-interpreter")
    moved("nullspace_sandbox_create_seconds_count", template="code-interpreter")
    moved("nullspace_sandboxes_ended_total", template="code-interpreter", state="killed")
    moved("nullspace_runs_total", outcome="ok")
    moved("nullspace_runs_total", outcome="error")
    moved("nullspace_runs_total", outcome="kernel_died")
    moved("nullspace_run_seconds_count", by=3)
    moved("nullspace_kernel_deaths_total", kind="crashed")
    moved("nullspace_limit_hits_total", resource="disk")
    assert oom is not None and oom.name in ("OutOfMemory", "MemoryError"), oom
    if oom.name == "OutOfMemory":  # the OOM killer took the kernel (not the allocator refusing)
        moved("nullspace_kernel_deaths_total", kind="out_of_memory")
        moved("nullspace_limit_hits_total", resource="memory")
        moved("nullspace_runs_total", by=2, outcome="kernel_died")
    moved("nullspace_package_installs_total", language="python", outcome="invalid_argument")
    route = "/v1/sandboxes/{sandbox_id}/execute"
    moved("nullspace_http_requests_total", by=3, method="POST", route=route, status="200")
    moved("nullspace_http_request_seconds_count", by=3, method="POST", route=route)
    moved("nullspace_http_requests_total", method="GET", route="/v1/sandboxes/{sandbox_id}", status="404")
    moved("nullspace_http_requests_total", method="GET", route="unmatched", status="404")
    moved("nullspace_http_requests_total", method="GET", route="e2b sandbox port 49999", status="502")
    moved("nullspace_http_requests_total", method="GET", route="e2b control plane", status="200")
    warm = _sum(after, "nullspace_pool_claims_total") - _sum(before, "nullspace_pool_claims_total")
    cold = _sum(after, "nullspace_pool_misses_total") - _sum(before, "nullspace_pool_misses_total")
    assert warm + cold >= 1  # the create asked the pool either way
    assert _value(after, "nullspace_pool_target", template="code-interpreter") >= 1
    # raw paths (with ids) never become labels
    assert not any(sid in value for (_, labels) in after for _, value in labels)
    assert _value(after, "nullspace_sandboxes", template="code-interpreter", state="running") == 0


def test_metrics_need_an_admin_key_over_tcp(server) -> None:  # noqa: ANN001
    assert httpx.get(f"{server.tcp_url}/metrics").status_code == 401
    tenant = httpx.get(f"{server.tcp_url}/metrics", headers={"Authorization": f"Bearer {server.api_key}"})
    assert tenant.status_code == 403 and tenant.json()["code"] == "forbidden"
    admin_key = subprocess.run(
        [sys.executable, "-m", "nullspace", "keys", "create", "prometheus", "--admin", "--data-dir", str(server.data_dir)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    admin = httpx.get(f"{server.tcp_url}/metrics", headers={"Authorization": f"Bearer {admin_key}"})
    assert admin.status_code == 200
    names = {family.name for family in text_string_to_metric_families(admin.text)}
    assert {"nullspace_http_requests", "nullspace_sandbox_creates", "nullspace_pool_target"} <= names
