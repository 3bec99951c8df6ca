"""The E2B envd door's wire pieces without a sandbox: Connect framing and errors, the streaming
multipart reader, the process argv and end-event translation."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import Request

from nullspace._exceptions import ConflictError, DiskFullError, InvalidArgumentError, NotFoundError
from nullspace.server.agent_client import AgentError
from nullspace.server.e2b.envd import connect, files, process
from nullspace.server.e2b.envd.connect import ConnectError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request_with(body_chunks: list[bytes]) -> Request:
    chunks = iter(body_chunks)

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return Request({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)


async def read_all(body: list[bytes]) -> list[dict[str, Any]]:
    return [m async for m in connect.read_envelopes(request_with(body))]


async def test_envelopes_split_anywhere_are_read_whole() -> None:
    raw = connect.envelope({"a": 1}) + connect.envelope({"b": [2, 3]}) + connect.end_stream()
    for cut in range(1, len(raw)):
        assert await read_all([raw[:cut], raw[cut:]]) == [{"a": 1}, {"b": [2, 3]}]
    byte_by_byte = [raw[i : i + 1] for i in range(len(raw))]
    assert await read_all(byte_by_byte) == [{"a": 1}, {"b": [2, 3]}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x00\x00", "invalid_argument"),  # cut in the header
        (struct.pack(">BI", 0, 10) + b"{}", "invalid_argument"),  # cut in the message
        (struct.pack(">BI", 0, 2) + b"[]", "invalid_argument"),  # not an object
        (struct.pack(">BI", 0, 3) + b"{x}", "invalid_argument"),  # not JSON
        (struct.pack(">BI", 1, 2) + b"{}", "unimplemented"),  # compressed
        (struct.pack(">BI", 4, 2) + b"{}", "invalid_argument"),  # unknown flag
        (struct.pack(">BI", 0, connect.MAX_MESSAGE + 1), "resource_exhausted"),
    ],
)
async def test_malformed_envelopes_are_connect_errors(body: bytes, code: str) -> None:
    with pytest.raises(ConnectError) as info:
        await read_all([body])
    assert info.value.code == code


def test_errors_map_to_connect_codes_and_statuses() -> None:
    cases = [
        (InvalidArgumentError("x"), "invalid_argument", 400),
        (NotFoundError("x"), "not_found", 404),
        (ConflictError("x"), "failed_precondition", 400),
        (DiskFullError("x"), "resource_exhausted", 429),
        (AgentError("x"), "unavailable", 503),
        (RuntimeError("x"), "internal", 500),
    ]
    for exc, code, status in cases:
        response = connect.error_response(connect.from_exception(exc))
        assert response.status_code == status and json.loads(response.body)["code"] == code
    end = connect.end_stream(ConnectError("not_found", "gone"))
    assert end[0] == connect.END_STREAM and json.loads(end[5:]) == {"error": {"code": "not_found", "message": "gone"}}


def test_login_shells_keep_the_path_and_end_events_read_like_envd() -> None:
    assert process._argv("/bin/bash", ["-l", "-c", "echo -l"]) == ["/bin/bash", "-c", "echo -l"]
    assert process._argv("/bin/bash", ["-i", "-l"]) == ["/bin/bash", "-i"]
    assert process._argv("/usr/bin/env", ["-l"]) == ["/usr/bin/env", "-l"]
    assert process._end({"exit_code": 0, "signal": None, "status": "exited"}) == {"exitCode": 0, "exited": True, "status": "exit status 0"}
    assert process._end({"exit_code": 3, "signal": None, "status": "exited"})["error"] == "exit status 3"
    killed = process._end({"exit_code": 137, "signal": 9, "status": "killed"})
    assert killed == {"exitCode": -1, "exited": False, "status": "signal: killed", "error": "signal: killed"}
    with pytest.raises(ConnectError) as info:
        process._end({"exit_code": 137, "signal": 9, "status": "timeout"})
    assert info.value.code == "deadline_exceeded"


async def stream_of(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_multipart_parts_stream_one_after_another() -> None:
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/a.txt\"\r\n"
        b"Content-Type: text/plain\r\n\r\nhello\r\n"
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rel/b.bin\"\r\n\r\n"
        + bytes(range(256)) * 10
        + b"\r\n--XyZ--\r\n"
    )
    for size in (1, 7, 4096):
        parts = files._Parts(stream_of([body[i : i + size] for i in range(0, len(body), size)]), b"XyZ")
        got = []
        while (name := await parts.next_part()) is not None:
            got.append((name, b"".join([c async for c in parts.data()])))
        assert got == [("/home/user/a.txt", b"hello"), ("rel/b.bin", bytes(range(256)) * 10)]


async def test_truncated_multipart_is_an_error() -> None:
    body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhal"
    parts = files._Parts(stream_of([body]), b"XyZ")
    assert await parts.next_part() == "a"
    with pytest.raises(files.FilesError):
        async for _ in parts.data():
            pass
