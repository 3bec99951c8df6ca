"""Artifacts: files a run creates or changes under its working directory are listed on the
execution (path, size, MIME type, sha256) and can be read and downloaded through the SDK."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from nullspace import AsyncArtifact, AsyncSandbox, IntegrityError, Sandbox

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_savefig_produces_a_downloadable_artifact(sandbox: Sandbox, tmp_path: Path) -> None:
    execution = sandbox.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.savefig('out.png')\nplt.close()"
    )
    assert execution.error is None
    (artifact,) = execution.artifacts
    assert artifact.path == "/home/user/out.png" and artifact.name == "out.png"
    assert artifact.mime_type == "image/png" and artifact.change == "created"
    data = artifact.read()
    assert data.startswith(PNG_MAGIC)
    assert len(data) == artifact.size
    assert hashlib.sha256(data).hexdigest() == artifact.sha256
    saved = artifact.download(tmp_path / "chart.png")
    assert saved == tmp_path / "chart.png"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == artifact.sha256
    into_dir = artifact.download(tmp_path)  # a directory: the file keeps its name
    assert into_dir == tmp_path / "out.png" and into_dir.read_bytes() == data


def test_created_and_changed_files_are_listed_others_are_not(sandbox: Sandbox) -> None:
    sandbox.run_code("open('keep.txt', 'w').write('same'); open('log.txt', 'w').write('a')")
    execution = sandbox.run_code(
        "import os, json\n"
        "open('log.txt', 'a').write('b')\n"  # changed
        "os.makedirs('reports/2024', exist_ok=True)\n"
        "json.dump({'ok': True}, open('reports/2024/summary.json', 'w'))\n"  # created, nested
        "os.makedirs('.cache', exist_ok=True); open('.cache/tmp', 'w').write('x')\n"  # hidden dir
        "open('/tmp/outside.txt', 'w').write('x')\n"  # not under the cwd
        "open('keep.txt').read()"
    )
    found = {a.path: a for a in execution.artifacts}
    assert set(found) == {"/home/user/log.txt", "/home/user/reports/2024/summary.json"}
    assert found["/home/user/log.txt"].change == "modified" and found["/home/user/log.txt"].size == 2
    summary = found["/home/user/reports/2024/summary.json"]
    assert summary.mime_type == "application/json" and summary.read() == b'{"ok": true}'
    assert sandbox.run_code("1 + 1").artifacts == []


def test_artifacts_of_a_context_are_under_its_cwd(sandbox: Sandbox) -> None:
    ctx = sandbox.create_context(cwd="/tmp")
    execution = sandbox.run_code("open('here.csv', 'w').write('a,b\\n1,2\\n')", context=ctx)
    (artifact,) = execution.artifacts
    assert artifact.path == "/tmp/here.csv" and artifact.mime_type == "text/csv"
    assert artifact.read() == b"a,b\n1,2\n"


def test_a_failed_run_still_reports_its_files(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("open('partial.txt', 'w').write('half')\nraise ValueError('later')")
    assert execution.error is not None and execution.error.name == "ValueError"
    assert [a.name for a in execution.artifacts] == ["partial.txt"]


def test_a_file_changed_after_the_run_fails_verification(sandbox: Sandbox, tmp_path: Path) -> None:
    (artifact,) = sandbox.run_code("open('data.bin', 'wb').write(bytes(range(256)))").artifacts
    sandbox.run_code("open('data.bin', 'wb').write(b'rewritten')")
    with pytest.raises(IntegrityError):
        artifact.read()
    with pytest.raises(IntegrityError):
        artifact.download(tmp_path / "data.bin")
    assert not (tmp_path / "data.bin").exists()  # nothing half-verified is left behind
    assert artifact.read(verify=False) == b"rewritten"


def test_async_artifacts(sandbox: Sandbox, tmp_path: Path) -> None:
    async def main() -> None:
        sbx = await AsyncSandbox.connect(sandbox.sandbox_id)
        try:
            execution = await sbx.run_code("open('a.txt', 'w').write('async')")
            (artifact,) = execution.artifacts
            assert isinstance(artifact, AsyncArtifact)
            assert await artifact.read() == b"async"
            path = await artifact.download(tmp_path / "a.txt")
            assert path.read_bytes() == b"async"
        finally:
            await sbx.close()  # not kill: the fixture owns the sandbox

    asyncio.run(main())
    assert sandbox.is_running()
