"""Artifacts on `execution.artifacts`: parsed from the stream, bound to the sandbox, read and
downloaded with their checksum verified (`tests/unit/client/_sync` is generated from this)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

import nullspace

from ..fakes import NDJSON, FakeAPI, ndjson

CONTENT = b"\x89PNG fake image" * 1000
SHA = hashlib.sha256(CONTENT).hexdigest()


def fake_with_files(files: dict[str, bytes]) -> FakeAPI:
    """A FakeAPI whose run made `out.png` and that serves `GET .../files?path=`."""
    api = FakeAPI()
    api.execute = lambda request: httpx.Response(
        200,
        content=ndjson(
            {"type": "number_of_executions", "execution_count": 1},
            {
                "type": "artifacts",
                "root": "/home/user",
                "artifacts": [
                    {
                        "path": "/home/user/out.png",
                        "name": "out.png",
                        "size": len(CONTENT),
                        "mime_type": "image/png",
                        "sha256": SHA,
                        "change": "created",
                    },
                    {"path": 42},  # malformed: dropped
                ],
            },
            {"type": "end_of_execution", "status": "ok"},
        ),
        headers=NDJSON,
    )
    plain = api.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files") and request.method == "GET":
            api.requests.append(request)
            path = request.url.params["path"]
            if path not in files:
                return httpx.Response(404, json={"code": "not_found", "message": path})
            return httpx.Response(200, content=files[path])
        return plain(request)

    api.transport = lambda: httpx.MockTransport(handler)  # type: ignore[method-assign]
    return api


async def make(api: FakeAPI) -> nullspace.AsyncSandbox:
    return await nullspace.AsyncSandbox.create(api_url="http://test", api_key="k", transport=api.transport())


@pytest.mark.anyio
async def test_artifacts_are_parsed_bound_read_and_downloaded(tmp_path: Path) -> None:
    api = fake_with_files({"/home/user/out.png": CONTENT})
    sbx = await make(api)
    execution = await sbx.run_code("plt.savefig('out.png')")
    (artifact,) = execution.artifacts
    assert isinstance(artifact, nullspace.AsyncArtifact)
    assert (artifact.path, artifact.name, artifact.size, artifact.mime_type) == (
        "/home/user/out.png",
        "out.png",
        len(CONTENT),
        "image/png",
    )
    assert execution.to_dict()["artifacts"][0]["sha256"] == SHA
    assert await artifact.read() == CONTENT
    target = await artifact.download(tmp_path / "sub" / "chart.png")
    assert target == tmp_path / "sub" / "chart.png" and target.read_bytes() == CONTENT
    assert await artifact.download(tmp_path) == tmp_path / "out.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "sub"]  # no temp files left


@pytest.mark.anyio
async def test_a_changed_file_fails_verification_and_leaves_nothing(tmp_path: Path) -> None:
    api = fake_with_files({"/home/user/out.png": b"rewritten later"})
    sbx = await make(api)
    (artifact,) = (await sbx.run_code("x")).artifacts
    with pytest.raises(nullspace.IntegrityError):
        await artifact.read()
    with pytest.raises(nullspace.IntegrityError):
        await artifact.download(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
    assert await artifact.read(verify=False) == b"rewritten later"


@pytest.mark.anyio
async def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    sbx = await make(fake_with_files({}))
    (artifact,) = (await sbx.run_code("x")).artifacts
    with pytest.raises(nullspace.NotFoundError):
        await artifact.download(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
