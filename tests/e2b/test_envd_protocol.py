"""envd on the wire: Connect framing and errors for malformed input, the access token, /envs."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import httpx
import pytest
from e2b import CommandExitException, Sandbox

UNARY = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
STREAM = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}


@pytest.fixture(scope="module")
def sbx(e2b_server) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=300, envs={"FROM_CREATE": "v1"})
    try:
        yield sandbox
    finally:
        sandbox.kill()


@pytest.fixture(scope="module")
def envd(e2b_server, sbx: Sandbox) -> Iterator[httpx.Client]:
    headers = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983", "X-Access-Token": sbx._envd_access_token}
    with httpx.Client(base_url=e2b_server.url, headers=headers, timeout=30) as client:
        yield client


def envelope(message: object, flags: int = 0) -> bytes:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return struct.pack(">BI", flags, len(raw)) + raw


def frames(body: bytes) -> list[tuple[int, dict]]:
    out = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        out.append((flags, json.loads(body[5 : 5 + length])))
        body = body[5 + length :]
    return out


def test_health_and_envs(envd: httpx.Client) -> None:
    assert envd.get("/health").status_code == 204
    for method, path, status in (("GET", "/nope", 404), ("GET", "/process.Process/List", 405), ("PUT", "/files", 405)):
        r = envd.request(method, path)
        assert r.status_code == status and r.json()["code"] == status and r.json()["message"]
    envs = envd.get("/envs")
    assert envs.status_code == 200 and envs.json() == {"FROM_CREATE": "v1"}


def test_unary_calls_and_their_errors(envd: httpx.Client) -> None:
    ok = envd.post("/filesystem.Filesystem/Stat", json={"path": "/home/user"}, headers=UNARY)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json()["entry"]["type"] == "FILE_TYPE_DIRECTORY" and ok.json()["entry"]["name"] == "user"
    cases = [
        (b"{not json", UNARY, 400, "invalid_argument"),
        (b"[1, 2]", UNARY, 400, "invalid_argument"),
        (b'{"path": 42}', UNARY, 400, "invalid_argument"),
        (b'{"path": "/nope"}', UNARY, 404, "not_found"),
        (b'{"path": "/home/user"}', {"Content-Type": "text/plain"}, 400, "invalid_argument"),
        (b'{"path": "/home/user"}', {"Content-Type": "application/proto"}, 501, "unimplemented"),
    ]
    for body, headers, status, code in cases:
        r = envd.post("/filesystem.Filesystem/Stat", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert r.json()["message"]
    r = envd.post("/filesystem.Filesystem/Nope", json={}, headers=UNARY)
    assert (r.status_code, r.json()["code"]) == (501, "unimplemented")
    r = envd.post("/process.Process/SendSignal", json={"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"}, headers=UNARY)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = envd.post("/process.Process/SendSignal", json={"process": {"pid": 1}, "signal": "SIGNAL_BOGUS"}, headers=UNARY)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = envd.post("/process.Process/List", content=b"x" * (9 << 20), headers=UNARY)
    assert (r.status_code, r.json()["code"]) == (429, "resource_exhausted")


def test_streams_answer_malformed_input_with_an_end_stream_error(envd: httpx.Client) -> None:
    start = {"process": {"cmd": "/bin/echo", "args": ["hi"]}}
    good = envd.post("/process.Process/Start", content=envelope(start), headers=STREAM)
    assert good.status_code == 200 and good.headers["content-type"] == "application/connect+json"
    got = frames(good.content)
    assert "start" in got[0][1]["event"] and got[-1] == (2, {})
    assert any(m.get("event", {}).get("data", {}).get("stdout") == "aGkK" for _, m in got)  # "hi\n"
    bad_bodies = [
        b"\x00\x00\x00",  # cut inside the header
        struct.pack(">BI", 0, 50) + b"{}",  # cut inside the message
        envelope(b"{nope"),  # not JSON
        envelope(start, flags=0x01),  # "compressed"
        envelope(start) + envelope(start),  # two messages for a server stream
        envelope({"process": {"cmd": ""}}),
        envelope({"process": {"cmd": "/bin/true", "args": "not-a-list"}}),
        struct.pack(">BI", 0, 1 << 30),  # announces 1 GiB
    ]
    for body in bad_bodies:
        r = envd.post("/process.Process/Start", content=body, headers=STREAM)
        assert r.status_code == 200, body
        (flags, end), *_ = frames(r.content)
        assert flags == 2 and end["error"]["code"] in ("invalid_argument", "unimplemented", "resource_exhausted"), (body, end)
    r = envd.post("/process.Process/Start", content=envelope(start), headers=UNARY)  # unary content type
    assert r.status_code == 200 and frames(r.content)[0][1]["error"]["code"] == "invalid_argument"


def test_stream_input_is_client_streaming(envd: httpx.Client, sbx: Sandbox) -> None:
    handle = sbx.commands.run("cat", background=True, stdin=True)
    body = (
        envelope({"start": {"process": {"pid": handle.pid}}})
        + envelope({"data": {"input": {"stdin": "b25lCg=="}}})  # "one\n"
        + envelope({"keepalive": {}})
        + envelope({"data": {"input": {"stdin": "dHdvCg=="}}})  # "two\n"
    )
    r = envd.post("/process.Process/StreamInput", content=body, headers=STREAM)
    assert r.status_code == 200 and frames(r.content)[-1] == (2, {})
    sbx.commands.close_stdin(handle.pid)
    assert handle.wait().stdout == "one\ntwo\n"
    r = envd.post("/process.Process/StreamInput", content=envelope({"data": {}}), headers=STREAM)
    assert frames(r.content)[0][1]["error"]["code"] == "invalid_argument"


def test_files_http_errors_are_envd_json(envd: httpx.Client) -> None:
    r = envd.get("/files", params={"path": "/home/user/none.txt"})
    assert r.status_code == 404 and r.json()["code"] == 404
    r = envd.get("/files")
    assert r.status_code == 400 and r.json()["code"] == 400
    r = envd.post("/files", params={"path": "x"}, content=b"x", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400
    r = envd.post("/files", content=b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n",
                  headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert r.status_code == 400 and "filename" in r.json()["message"]
    r = envd.post("/files", params={"path": "z.txt"}, content=b"not gzip",
                  headers={"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"})  # fmt: skip
    assert r.status_code == 400 and "gzip" in r.json()["message"]
    r = envd.post("/files", params={"path": "y.txt", "username": "root"}, content=b"y",
                  headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 403


def test_every_envd_call_needs_the_sandbox_access_token(e2b_server, sbx: Sandbox) -> None:
    routes = [("GET", "/health"), ("GET", "/envs"), ("GET", "/files?path=a"),
              ("POST", "/process.Process/List"), ("POST", "/filesystem.Filesystem/Stat")]  # fmt: skip
    for token in (None, "ns_sbx_guessed", sbx._envd_access_token + "x"):
        headers = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49983", **UNARY}
        if token:
            headers["X-Access-Token"] = token
        for method, path in routes:
            r = httpx.request(method, e2b_server.url + path, headers=headers, content=b"{}")
            assert r.status_code == 502 and "was not found" in r.json()["message"], (token, path)


def test_sigterm_reaches_the_process(envd: httpx.Client, sbx: Sandbox) -> None:
    handle = sbx.commands.run("sleep 600", background=True)
    r = envd.post("/process.Process/SendSignal", json={"process": {"pid": handle.pid}, "signal": "SIGNAL_SIGTERM"}, headers=UNARY)
    assert r.status_code == 200 and r.json() == {}
    with pytest.raises(CommandExitException) as info:
        handle.wait()
    assert info.value.exit_code == -1 and info.value.error == "signal: terminated"
