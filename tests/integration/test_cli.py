"""The `nullspace` command against a real server (logging JSON), run as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _skip_reason, new_data_dir, start_server, stop_server, wait_healthy

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def json_server() -> Iterator[tuple[Path, dict[str, str]]]:
    data_dir = new_data_dir()
    process = start_server(data_dir, "--log-format", "json", "--pool", "code-interpreter=0")
    sock = data_dir / "nullspace.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NULLSPACE_")}
    env.update(NULLSPACE_HOME=str(data_dir), NULLSPACE_SOCKET=str(sock), COLUMNS="200")
    try:
        wait_healthy(sock, process)
        yield data_dir, env
    finally:
        stop_server(process)
        shutil.rmtree(data_dir, ignore_errors=True)


def cli(env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", "nullspace", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    if ok:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    else:
        assert done.returncode != 0, f"{args} should have failed: {done.stdout}"
    return done.stdout + done.stderr


def test_sandbox_commands_end_to_end(json_server: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    data_dir, env = json_server
    sid = cli(env, "sandbox", "create", "--metadata", "owner=cli-test", "--metadata", "tag=[/x]",
              "--timeout", "120").strip()
    assert sid.startswith("sb_") and len(sid) == 19
    try:
        listing = cli(env, "sandbox", "list")
        assert sid in listing and "running" in listing and "owner=cli-test" in listing  # full id
        assert "tag=[/x]" in listing  # client text is shown as text, never as rich markup
        assert "ago" in listing and "in " in listing  # human times
        assert sid in cli(env, "sandbox", "ls", "--metadata", "owner=cli-test")
        assert sid not in cli(env, "sandbox", "ls", "--metadata", "owner=nobody")

        assert cli(env, "sandbox", "run", sid, "print(6 * 7)").strip() == "42"
        failed = cli(env, "sandbox", "run", sid, "1 / 0", ok=False)
        assert "ZeroDivisionError" in failed
        assert "ValueError: [/x] [bold]" in cli(env, "sandbox", "run", sid, "raise ValueError('[/x] [bold]')", ok=False)
        assert "KernelDied" in cli(env, "sandbox", "run", sid, "import os; os._exit(1)", ok=False)

        payload = os.urandom(3 << 20)
        local = tmp_path / "blob.bin"
        local.write_bytes(payload)
        put = cli(env, "sandbox", "files", sid, "put", str(local), "data/blob.bin")
        assert "/home/user/data/blob.bin" in put and "3.0 MiB" in put
        assert "blob.bin" in cli(env, "sandbox", "files", sid, "ls", "data")
        back = tmp_path / "back"
        back.mkdir()
        cli(env, "sandbox", "files", sid, "get", "data/blob.bin", str(back))
        assert (back / "blob.bin").read_bytes() == payload
        missing = cli(env, "sandbox", "files", sid, "get", "nope.txt", str(back), ok=False)
        assert "NotFoundError" in missing and not (back / "nope.txt.part").exists()

        follower = subprocess.Popen([sys.executable, "-m", "nullspace", "sandbox", "logs", "--follow", sid],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logs = cli(env, "sandbox", "logs", sid)
        assert "sandbox created from template code-interpreter" in logs
        assert f"POST /v1/sandboxes/{sid}/execute" in logs
        assert "a kernel died during a run (crashed)" in logs and "WARNING" in logs
    finally:
        cli(env, "sandbox", "kill", sid)
    assert sid not in cli(env, "sandbox", "list")
    history = cli(env, "sandbox", "list", "--all")
    assert sid in history and "killed" in history
    assert "sandbox ended (killed)" in cli(env, "sandbox", "logs", sid)
    followed, _ = follower.communicate(timeout=30)  # --follow ends with the sandbox
    assert follower.returncode == 0, followed
    assert "sandbox created from template" in followed and "sandbox ended (killed)" in followed
    assert followed.count("sandbox created from template") == 1  # each line once
    assert f"sandbox {sid} is killed" in cli(env, "sandbox", "kill", sid, ok=False)

    lines = [json.loads(line) for line in (data_dir / "server.log").read_text().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("sandbox_id") == sid]
    assert any(line["logger"] == "uvicorn.access" and line["path"] == f"/v1/sandboxes/{sid}/execute"
               and line["status"] == 200 for line in mine)
    assert any(line["logger"] == "uvicorn.access" and line["path"] == "/v1/sandboxes" for line in mine)  # the create
    assert any(line["message"].startswith("sandbox ended (killed)") for line in mine)
    about_it = [line for line in lines if sid in line["message"]]
    assert about_it and all(line.get("sandbox_id") == sid for line in about_it)


def test_pools_and_bad_ids(json_server: tuple[Path, dict[str, str]]) -> None:
    _, env = json_server
    assert "template" in cli(env, "sandbox", "pools")
    assert "SandboxNotFoundError" in cli(env, "sandbox", "logs", "sb_0000000000000000", ok=False)
    assert "SandboxNotFoundError" in cli(env, "sandbox", "run", "sb_0000000000000000", "1", ok=False)
