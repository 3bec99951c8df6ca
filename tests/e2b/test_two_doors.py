"""One server, two front doors: the same sandboxes through E2B's SDK, ours and the CLI; tokens and
keys open only what they were given for."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
from e2b.exceptions import AuthenticationException, RateLimitException, SandboxException
from e2b_code_interpreter import Sandbox as E2BSandbox

import nullspace


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "nullspace", *args], check=True, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "250"}).stdout  # fmt: skip


def test_made_by_e2b_used_by_nullspace(e2b_server) -> None:
    e2b = E2BSandbox.create(timeout=120, metadata={"door": "e2b"})
    e2b.run_code("shared = 'from e2b'")
    ours = nullspace.Sandbox.connect(e2b.sandbox_id)
    assert ours.run_code("shared").text == "from e2b"
    assert ours.get_info().metadata == {"door": "e2b"}
    assert e2b.sandbox_id in [s.sandbox_id for s in nullspace.Sandbox.list(metadata={"door": "e2b"})]
    assert e2b.sandbox_id in _cli("sandbox", "ls")
    ours.kill()
    assert e2b.is_running() is False
    with pytest.raises(nullspace.SandboxNotFoundError):
        ours.run_code("1")


def test_made_by_nullspace_used_by_e2b(e2b_server) -> None:
    # the same key (so the same tenant) through our door: E2B's key sees only its tenant's sandboxes
    ours = nullspace.Sandbox.create(timeout=120, metadata={"door": "nullspace"}, envs={"WHO": "ns"},
                                    api_url=e2b_server.url, api_key=e2b_server.api_key)
    ours.run_code("shared = 41")
    listed = E2BSandbox.list().next_items()
    assert ours.sandbox_id in [s.sandbox_id for s in listed]
    e2b = E2BSandbox.connect(ours.sandbox_id)
    assert e2b.run_code("shared + 1").text == "42"
    assert e2b.run_code("import os; os.environ['WHO']").text == "ns"
    assert e2b.get_info().metadata == {"door": "nullspace"}
    e2b.kill()
    assert ours.get_info().state == "killed"


def test_tokens_open_only_their_own_sandbox(e2b_server) -> None:
    a, b = E2BSandbox.create(timeout=60), E2BSandbox.create(timeout=60)
    try:
        headers = {"E2b-Sandbox-Id": b.sandbox_id, "E2b-Sandbox-Port": "49999", "X-Access-Token": a._envd_access_token}
        reply = httpx.post(f"{e2b_server.url}/execute", json={"code": "1"}, headers=headers)
        assert reply.status_code == 502 and reply.json()["message"] == "The sandbox was not found"
        # the API key is not a sandbox token either
        headers["X-Access-Token"] = e2b_server.api_key
        assert httpx.post(f"{e2b_server.url}/execute", json={"code": "1"}, headers=headers).status_code == 502
    finally:
        a.kill()
        b.kill()


def test_a_deleted_key_is_refused(e2b_server) -> None:
    key = e2b_server.create_key("short-lived")
    sbx = E2BSandbox.create(timeout=60, api_key=key)
    try:
        listing = _cli("keys", "list", "--data-dir", str(e2b_server.data_dir))
        key_id = next(re.search(r"key_\w+", line)[0] for line in listing.splitlines() if "short-lived" in line)
        _cli("keys", "delete", key_id, "--data-dir", str(e2b_server.data_dir))
        with pytest.raises(AuthenticationException):
            E2BSandbox.connect(sbx.sandbox_id, api_key=key)
        assert sbx.run_code("1 + 1").text == "2"  # its token still opens it: tokens are per sandbox
    finally:
        E2BSandbox.kill(sbx.sandbox_id)  # with the suite's key


def test_another_tenant_sees_nothing(e2b_server) -> None:
    for tenant, extra in (("acme", ()), ("globex", ("--max-sandboxes", "1"))):
        _cli("keys", "tenant", "create", tenant, *extra, "--data-dir", str(e2b_server.data_dir))
    acme = e2b_server.create_key("acme-app", "--tenant", "acme")
    globex = e2b_server.create_key("globex-app", "--tenant", "globex")
    mine = E2BSandbox.create(timeout=60, api_key=acme)
    theirs = E2BSandbox.create(timeout=60, api_key=globex)
    try:
        assert theirs.run_code("1 + 1").text == "2"
        with pytest.raises(SandboxException, match="not found"):
            E2BSandbox.connect(mine.sandbox_id, api_key=globex)
        with pytest.raises(SandboxException, match="not found"):
            E2BSandbox.get_info(mine.sandbox_id, api_key=globex)
        with pytest.raises(SandboxException, match="not found"):
            E2BSandbox.set_timeout(mine.sandbox_id, 30, api_key=globex)
        assert E2BSandbox.kill(mine.sandbox_id, api_key=globex) is False
        assert [s.sandbox_id for s in E2BSandbox.list(api_key=globex).next_items()] == [theirs.sandbox_id]
        # globex's sandbox token does not open acme's sandbox, and the answer is a never-existed one
        headers = {"E2b-Sandbox-Id": mine.sandbox_id, "E2b-Sandbox-Port": "49999",
                   "X-Access-Token": theirs._envd_access_token}  # fmt: skip
        reply = httpx.post(f"{e2b_server.url}/execute", json={"code": "1"}, headers=headers)
        assert reply.status_code == 502 and reply.json()["message"] == "The sandbox was not found"
        # our own API with globex's key: the same
        reply = httpx.get(f"{e2b_server.url}/v1/sandboxes/{mine.sandbox_id}", headers={"X-API-Key": globex})
        assert reply.status_code == 404
        # quotas apply through the E2B door too: E2B's 429 is the SDK's RateLimitException
        with pytest.raises(RateLimitException, match="max_sandboxes"):
            E2BSandbox.create(timeout=60, api_key=globex)
        assert mine.run_code("'still mine'").text == "still mine"
    finally:
        E2BSandbox.kill(mine.sandbox_id, api_key=acme)
        E2BSandbox.kill(theirs.sandbox_id, api_key=globex)
