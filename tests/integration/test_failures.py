"""Failure paths leave nothing behind: a full data dir (a size-limited tmpfs), failing creates,
kills that cannot be recorded. Processes, mounts, cgroups and uids are counted before and after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nullspace.runtime.cgroups import open_driver
from nullspace.server.lifecycle import UID_COUNT
from nullspace.server.settings import Settings
from nullspace.templates import share_builds

from .conftest import DEFAULT_HOME, start_server, stop_server, wait_healthy

DATA_DIR_MB = 64


class Local:
    """Raw HTTP over the server's unix socket (an admin caller)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        transport = httpx.HTTPTransport(uds=str(data_dir / "nullspace.sock"))
        self.client = httpx.Client(transport=transport, base_url="http://nullspace", timeout=120)
        self.settings = Settings(data_dir=data_dir)

    def create(self, **body: Any) -> httpx.Response:
        return self.client.post("/v1/sandboxes", json={"timeout": 120, **body})

    def counts(self) -> dict[str, int]:
        """What this server's sandboxes hold on the host."""
        base = self.settings.uid_base
        uids = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        if base <= uid < base + UID_COUNT:
                            uids.add((status.parent.name, uid))
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if f" {self.data_dir}/" in line]
        sandboxes = self.data_dir / "sandboxes"
        return {
            "processes": len(uids),
            "uids": len({uid for _, uid in uids}),
            "mounts": len(mounts),
            "cgroups": len(open_driver(self.settings.cgroup_root).list_names()),
            "dirs": len(list(sandboxes.iterdir())) if sandboxes.exists() else 0,
        }


@pytest.fixture(scope="module")
def small() -> Iterator[Local]:
    if os.geteuid() != 0 or not (DEFAULT_HOME / "templates" / "code-interpreter" / "current").exists():
        pytest.skip("needs root and the built code-interpreter template (scripts/setup.sh)")
    data_dir = Path(tempfile.mkdtemp(prefix="nsfault-", dir="/var/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DATA_DIR_MB}m,mode=0711", "nsfault", str(data_dir)],
                   check=True)
    process = None
    try:
        share_builds(DEFAULT_HOME, data_dir)
        process = start_server(data_dir, "--pool", "code-interpreter=0")
        wait_healthy(data_dir / "nullspace.sock", process)
        yield Local(data_dir)
    finally:
        if process is not None:
            stop_server(process)
        subprocess.run(["umount", "-l", str(data_dir)], check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def full(data_dir: Path) -> Iterator[None]:
    """Fill the data dir's file system to the last byte."""
    filler = data_dir / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


def test_a_full_data_dir_refuses_creates_and_kill_still_kills(small: Local) -> None:
    before = small.counts()
    created = small.create()
    assert created.status_code == 201, created.text
    sid = created.json()["sandbox_id"]
    assert small.counts()["processes"] > before["processes"]
    with full(small.data_dir):
        refused = small.create()
        assert (refused.status_code, refused.json()["code"]) == (507, "disk_full"), refused.text
        assert "data directory is full" in refused.json()["message"]
        timeout = small.client.post(f"/v1/sandboxes/{sid}/timeout", json={"timeout": 60})
        assert timeout.status_code == 507, timeout.text
        killed = small.client.delete(f"/v1/sandboxes/{sid}")
        assert killed.status_code == 204, killed.text
        info = small.client.get(f"/v1/sandboxes/{sid}").json()
        assert info["state"] == "killed"
        assert sid not in {s["sandbox_id"] for s in small.client.get("/v1/sandboxes?state=running").json()}
        assert small.counts() == before  # nothing of it is left, and the refused create left nothing
    # once there is room, the end is written: it survives the in-memory copy
    deadline = time.monotonic() + 10
    while small.client.get(f"/v1/sandboxes/{sid}").json()["state"] != "killed" and time.monotonic() < deadline:
        time.sleep(0.2)
    db = subprocess.run(["sqlite3", str(small.data_dir / "state.db"), f"SELECT state FROM sandboxes WHERE id='{sid}'"],
                        capture_output=True, text=True, check=False)
    if db.returncode == 0:  # the sqlite3 CLI is optional
        time.sleep(3)
        db = subprocess.run(["sqlite3", str(small.data_dir / "state.db"),
                             f"SELECT state FROM sandboxes WHERE id='{sid}'"], capture_output=True, text=True)
        assert db.stdout.strip() == "killed"
    assert small.create().status_code == 201  # and creates work again (killed at module end)


FAILING_CREATES = [
    ({"disk_mb": 9223372036854775808}, 400, "disk_mb"),
    ({"memory_mb": 1 << 40}, 400, "memory_mb"),
    ({"cpu": 5e-324}, 400, "0.1"),
    ({"timeout": True}, 400, "timeout"),
    ({"metadata": {"k": "\ud800"}}, 400, "metadata"),
    ({"envs": {"1BAD": "x"}}, 400, "envs"),
    ({"template": "no-such-template"}, 404, "no-such-template"),
]


def test_failing_creates_leave_nothing_behind(small: Local) -> None:
    for sandbox in small.client.get("/v1/sandboxes?state=running").json():
        small.client.delete(f"/v1/sandboxes/{sandbox['sandbox_id']}")
    before = small.counts()
    for _ in range(3):
        for body, status, named in FAILING_CREATES:
            reply = small.client.post("/v1/sandboxes", content=_json(body),
                                      headers={"content-type": "application/json"})
            assert reply.status_code == status, (body, reply.text)
            assert named in reply.json()["message"], (body, reply.text)
        with full(small.data_dir):  # these boot a sandbox, then cannot record it: undone
            reply = small.create()
            assert reply.status_code == 507, reply.text
    assert small.counts() == before
    assert small.client.get("/v1/sandboxes?state=running").json() == []
    # the lone surrogate never reached the store: listing works
    assert small.client.get("/v1/sandboxes").status_code == 200


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as \ud800
