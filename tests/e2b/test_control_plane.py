"""E2B's control plane, driven by the official `e2b_code_interpreter.Sandbox` and by raw HTTP."""

from __future__ import annotations

import httpx
import pytest
from e2b import SandboxQuery, SandboxState
from e2b.exceptions import AuthenticationException, SandboxException
from e2b_code_interpreter import Sandbox

import nullspace


def test_create_run_info_timeout_kill(e2b_server) -> None:
    sbx = Sandbox.create(timeout=120, metadata={"suite": "control"}, envs={"GREETING": "hej"})
    try:
        assert sbx.sandbox_id.startswith("sb_")
        assert sbx.run_code("import os; os.environ['GREETING']").text == "hej"
        info = sbx.get_info()
        assert info.sandbox_id == sbx.sandbox_id
        assert info.template_id == "code-interpreter"
        assert info.metadata == {"suite": "control"}
        assert info.state.value == "running"
        assert 110 < (info.end_at - info.started_at).total_seconds() <= 121
        sbx.set_timeout(600)
        assert 590 < (sbx.get_info().end_at - info.started_at).total_seconds() <= 601
        assert sbx.is_running()
    finally:
        assert sbx.kill() is True
    assert sbx.is_running() is False
    assert sbx.kill() is False  # E2B: killing a gone sandbox answers 404, the SDK returns False
    assert Sandbox.kill(sbx.sandbox_id) is False


def test_template_names_list_and_pages(e2b_server) -> None:
    made = [Sandbox.create(template=t, timeout=120, metadata={"suite": "pages"}) for t in ("code-interpreter-v1", "base", "code-interpreter")]
    try:
        listed = Sandbox.list(query=SandboxQuery(metadata={"suite": "pages"}), limit=2)
        first = listed.next_items()
        assert listed.has_next and len(first) == 2
        second = listed.next_items()
        assert not listed.has_next and len(second) == 1
        ids = [s.sandbox_id for s in first + second]
        assert ids == [s.sandbox_id for s in reversed(made)]  # newest first
        assert Sandbox.list(query=SandboxQuery(metadata={"suite": "nope"})).next_items() == []
        paused = Sandbox.list(query=SandboxQuery(metadata={"suite": "pages"}, state=[SandboxState.PAUSED])).next_items()
        assert paused == []
        oldest = Sandbox.list(query=SandboxQuery(metadata={"suite": "pages"}), order="asc").next_items()
        assert [s.sandbox_id for s in oldest] == [s.sandbox_id for s in made]
    finally:
        for sbx in made:
            sbx.kill()


def test_connect_gives_a_working_sandbox(e2b_server) -> None:
    sbx = Sandbox.create(timeout=60)
    try:
        sbx.run_code("x = 41")
        same = Sandbox.connect(sbx.sandbox_id, timeout=300)
        assert same.run_code("x + 1").text == "42"
        assert (same.get_info().end_at - sbx.get_info().started_at).total_seconds() > 250
        Sandbox.connect(sbx.sandbox_id, timeout=10)  # only ever extends
        assert (same.get_info().end_at - sbx.get_info().started_at).total_seconds() > 250
        assert sbx.run_code("x").text == "41"  # the first token still works
    finally:
        sbx.kill()
    with pytest.raises(SandboxException, match="not found"):
        Sandbox.connect(sbx.sandbox_id)


def test_unsupported_options_are_refused_clearly(e2b_server) -> None:
    with pytest.raises(SandboxException, match="autoPause"):
        Sandbox.create(lifecycle={"on_timeout": "pause"})
    with pytest.raises(SandboxException, match="network.rules is not supported"):
        Sandbox.create(network={"rules": {"example.com": [{"transform": {"headers": {"A": "b"}}}]}})
    with pytest.raises(SandboxException, match="404.*does not exist"):
        Sandbox.create(template="no-such-template")
    with pytest.raises(SandboxException, match="400.*does not permit open internet access"):
        Sandbox.create(allow_internet_access=True)  # the operator did not allow mode open


def test_network_allow_out_is_an_egress_allow_list(e2b_server) -> None:
    sbx = Sandbox.create(timeout=60, network={"allow_out": ["pypi.org"]})
    try:
        assert sbx.run_code("import os; os.environ['HTTPS_PROXY']").text.startswith("http://127.0.0.1:")
        ours = nullspace.Sandbox.connect(sbx.sandbox_id).get_network()
        assert (ours.mode, ours.allow) == ("allow", ["pypi.org"])
    finally:
        sbx.kill()


def test_pause_and_connect_resumes(e2b_server) -> None:
    sbx = Sandbox.create(timeout=120, network={"allow_public_traffic": False})
    try:
        sbx.run_code("kept = 'through the pause'")
        assert sbx.pause() is True
        assert sbx.pause() is False  # already paused: E2B's 409
        assert sbx.get_info().state == SandboxState.PAUSED
        listed = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
        assert sbx.sandbox_id in [s.sandbox_id for s in listed]
        assert sbx.is_running() is False
        with pytest.raises(SandboxException):
            sbx.run_code("1")
        same = Sandbox.connect(sbx.sandbox_id)
        assert same.get_info().state == SandboxState.RUNNING
        assert same.run_code("kept").text == "through the pause"
        assert sbx.run_code("kept").text == "through the pause"  # old tokens stay valid
    finally:
        sbx.kill()


def test_wrong_api_key(e2b_server) -> None:
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key="ns_not-a-key")
    reply = httpx.post(f"{e2b_server.url}/v2/sandboxes", json={"templateID": "base"})
    assert reply.status_code == 401
    assert reply.json()["code"] == 401 and "API key" in reply.json()["message"]


def test_bad_input_gets_e2b_errors(e2b_server) -> None:
    headers = {"X-API-Key": e2b_server.api_key}
    with httpx.Client(base_url=e2b_server.url, headers=headers) as client:
        for body in (b"{nope", b"[1]"):
            reply = client.post("/v2/sandboxes", content=body)
            assert reply.status_code == 400 and reply.json()["code"] == 400, reply.text
        for body in ({"templateID": 5}, {"timeout": -1}, {"timeout": "x"}, {"envVars": {"A": 1}},
                     {"metadata": []}, {"envVars": {"1BAD": "x"}}):  # fmt: skip
            reply = client.post("/v2/sandboxes", json=body)
            assert reply.status_code == 400 and isinstance(reply.json()["message"], str), (body, reply.text)
        assert client.get("/v2/sandboxes", params={"state": "frozen"}).status_code == 400
        assert client.get("/v2/sandboxes", params={"limit": "0"}).status_code == 400
        assert client.get("/v2/sandboxes", params={"nextToken": "%%%"}).status_code == 400
        assert client.get("/sandboxes/sb_nope").json() == {"code": 404, "message": "sandbox sb_nope not found",
                                                           "error_code": "not_found"}  # fmt: skip
        assert client.post("/sandboxes/sb_nope/timeout", json={"timeout": 5}).status_code == 404
        assert client.post("/sandboxes/sb_nope/pause").status_code == 404
        assert client.get("/sandboxes/sb_nope/nothing").status_code == 404


def test_sandbox_routing_errors(e2b_server) -> None:
    sbx = Sandbox.create(timeout=60)
    token = sbx._envd_access_token
    url = f"{e2b_server.url}/health"
    try:
        def get(**headers: str) -> httpx.Response:
            return httpx.get(url, headers=headers)

        ok = get(**{"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983", "X-Access-Token": token})
        assert ok.status_code == 204
        gone = {"sandboxId": "sb_nope", "message": "The sandbox was not found", "code": 502}
        assert get(**{"E2b-Sandbox-Id": "sb_nope", "E2b-Sandbox-Port": "49983", "X-Access-Token": token}).json() == gone
        # a wrong or missing token answers exactly like a sandbox that does not exist
        for bad in ({"X-Access-Token": "ns_sbx_guess"}, {}):
            reply = get(**{"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999", **bad})
            assert reply.status_code == 502 and reply.json() == {**gone, "sandboxId": sbx.sandbox_id}
        closed = get(**{"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "8080", "X-Access-Token": token})
        assert closed.status_code == 502 and "port is not open" in closed.json()["message"]
        assert get(**{"E2b-Sandbox-Id": sbx.sandbox_id}).status_code == 400
        assert get(**{"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "http"}).status_code == 400
    finally:
        sbx.kill()
    after = get(**{"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983", "X-Access-Token": token})
    assert after.status_code == 502 and "was not found" in after.json()["message"]


def test_legacy_paths_and_list_filters_over_raw_http(e2b_server) -> None:
    """SDKs before 2.x: POST /sandboxes (with `secure`), POST /sandboxes/{id}/connect, GET /sandboxes."""
    with httpx.Client(base_url=e2b_server.url, headers={"X-API-Key": e2b_server.api_key}, timeout=60) as client:
        made = client.post("/sandboxes", json={"templateID": "base", "timeout": 60, "secure": True,
                                               "metadata": {"legacy": "yes"}, "envVars": {}})  # fmt: skip
        assert made.status_code == 201, made.text
        sandbox = made.json()
        assert {"sandboxID", "templateID", "clientID", "envdVersion", "envdAccessToken"} <= set(sandbox)
        sid = sandbox["sandboxID"]
        try:
            again = client.post(f"/sandboxes/{sid}/connect", json={"timeout": 120})
            assert again.status_code == 200 and again.json()["envdAccessToken"] != sandbox["envdAccessToken"]
            legacy = client.get("/sandboxes", params={"metadata": "legacy=yes"}).json()
            assert [s["sandboxID"] for s in legacy] == [sid] and legacy[0]["state"] == "running"
            v2 = client.get("/v2/sandboxes", params={"template": "code-interpreter-v1", "metadata": "legacy=yes",
                                                     "startedAfter": "2000-01-01T00:00:00Z"}).json()  # fmt: skip
            assert [s["sandboxID"] for s in v2] == [sid]
            assert client.get("/v2/sandboxes", params={"metadata": "legacy=yes", "startedAfter": "2999-01-01T00:00:00Z"}).json() == []
            assert client.get("/v2/sandboxes", params={"metadata": "legacy=yes", "template": "other"}).json() == []
            assert client.post(f"/sandboxes/{sid}/resume", json={}).status_code == 409  # it is running
            assert client.post(f"/sandboxes/{sid}/timeout", json={"timeout": 10 ** 9}).status_code == 400
        finally:
            assert client.delete(f"/sandboxes/{sid}").status_code == 204
        assert client.delete(f"/sandboxes/{sid}").json()["code"] == 404
