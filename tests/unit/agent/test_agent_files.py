"""The agent's path resolution and /files endpoints on the host (inside a temporary directory)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from nullspace.agent.contexts import AgentError
from nullspace.agent.files import lexical, resolve

from .agent_harness import Agent

pytestmark = pytest.mark.anyio


def test_lexical_paths() -> None:
    assert lexical("a/./b//c", "/home/user") == "/home/user/a/b/c"
    assert lexical("../other", "/home/user") == "/home/other"
    assert lexical("/x/../y", "/home/user") == "/y"
    assert lexical("/", "/home/user") == "/"
    for bad in ("../../../x", "/..", "a/../../../../..", "", "a\0b", None, 5):
        with pytest.raises(AgentError) as info:
            lexical(bad, "/home/user")
        assert info.value.status == 400


def test_resolve_follows_inner_links_and_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "in").symlink_to("real")
    (tmp_path / "abs").symlink_to(tmp_path / "real" / "f")
    (tmp_path / "up").symlink_to("../" * (len(tmp_path.parts) + 3) + "etc")
    (tmp_path / "via").symlink_to("up/passwd")
    (tmp_path / "proc").symlink_to("/proc/self")
    (tmp_path / "l1").symlink_to("l2")
    (tmp_path / "l2").symlink_to("l1")
    work = str(tmp_path)
    assert resolve("in/f", work) == str(tmp_path / "real" / "f")
    assert resolve("abs", work) == str(tmp_path / "real" / "f")
    assert resolve("in/missing/deeper", work) == str(tmp_path / "real" / "missing" / "deeper")
    assert resolve("in", work, follow_last=False) == str(tmp_path / "in")
    for name, message in (("up", "points above /"), ("via", "points above /"), ("proc/environ", "kernel interfaces"),
                          ("l1", "too many levels"), ("/sys/kernel", "kernel interfaces")):
        with pytest.raises(AgentError, match=message):
            resolve(name, work)


async def test_write_read_info_list_remove(agent: Agent) -> None:
    c = agent.client
    data = os.urandom(300_000)
    r = await c.put("/files", params={"path": "d/blob"}, content=data)
    assert r.status_code == 200
    assert r.json() == {"path": os.path.join(agent.workdir, "d/blob"), "name": "blob", "type": "file",
                        "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    r = await c.get("/files", params={"path": "d/blob"})
    assert r.content == data and r.headers["content-length"] == str(len(data))
    assert (await c.get("/files/info", params={"path": "d"})).json()["type"] == "dir"
    assert [e["name"] for e in (await c.get("/files/list", params={"path": "d"})).json()] == ["blob"]
    assert (await c.get("/files/list", params={"path": "d/blob"})).status_code == 400
    assert (await c.get("/files/list", params={"path": "d", "depth": "0"})).status_code == 400
    assert (await c.delete("/files", params={"path": "d"})).status_code == 204
    assert (await c.get("/files/info", params={"path": "d"})).json()["code"] == "not_found"
    assert not os.listdir(agent.workdir) or all(not n.endswith(".nsupload") for n in os.listdir(agent.workdir))


async def test_expected_size_and_sha_guard_the_rename(agent: Agent) -> None:
    c = agent.client
    r = await c.put("/files", params={"path": "guarded"}, content=b"abc",
                    headers={"X-Nullspace-Expected-Sha256": hashlib.sha256(b"abd").hexdigest()})
    assert r.status_code == 422 and r.json()["code"] == "integrity_error"
    r = await c.put("/files", params={"path": "guarded"}, content=b"abc", headers={"X-Nullspace-Expected-Size": "4"})
    assert r.status_code == 422
    r = await c.put("/files", params={"path": "guarded"}, content=b"abc", headers={"X-Nullspace-Expected-Size": "x"})
    assert r.status_code == 400
    assert not os.path.exists(os.path.join(agent.workdir, "guarded"))
    assert not [n for n in os.listdir(agent.workdir) if n.endswith(".nsupload")]


async def test_special_files_and_directories(agent: Agent) -> None:
    c = agent.client
    fifo = os.path.join(agent.workdir, "fifo")
    os.mkfifo(fifo)
    try:
        assert "not a regular file" in (await c.get("/files", params={"path": "fifo"})).json()["message"]
        assert "not a regular file" in (await c.put("/files", params={"path": "fifo"}, content=b"x")).json()["message"]
    finally:
        os.unlink(fifo)
    assert (await c.get("/files", params={"path": "/dev/null"})).status_code == 400
    assert "is a directory" in (await c.get("/files", params={"path": "."})).json()["message"]
    assert "is a directory" in (await c.put("/files", params={"path": "."}, content=b"x")).json()["message"]


async def test_mkdir_and_rename(agent: Agent) -> None:
    c = agent.client
    r = await c.post("/files/mkdir", json={"path": "m/n"})
    assert r.status_code == 201 and r.json()["created"] is True
    r = await c.post("/files/mkdir", json={"path": "m/n"})
    assert r.status_code == 200 and r.json()["created"] is False
    await c.put("/files", params={"path": "m/f"}, content=b"1")
    assert (await c.post("/files/mkdir", json={"path": "m/f"})).status_code == 409
    r = await c.post("/files/rename", json={"source": "m/f", "destination": "m/x/y/g"})
    assert r.status_code == 200 and r.json()["path"].endswith("/m/x/y/g")
    assert (await c.post("/files/rename", json={"source": "m/f", "destination": "m/z"})).status_code == 404
    assert (await c.delete("/files", params={"path": "/"})).status_code == 400


async def test_staged_uploads_commit_together_or_go(agent: Agent) -> None:
    staged = []
    for name, body in (("s/a.txt", b"A"), ("s/b.txt", b"B")):
        r = await agent.client.put("/files", params={"path": name, "stage": "1"}, content=body)
        assert r.status_code == 200, r.text
        staged.append({"staged": r.json()["staged"], "path": r.json()["path"]})
    assert not os.path.exists(os.path.join(agent.workdir, "s", "a.txt"))  # not before the commit
    assert (await agent.client.post("/files/commit", json={"files": staged})).status_code == 204
    assert open(os.path.join(agent.workdir, "s", "b.txt"), "rb").read() == b"B"
    assert sorted(os.listdir(os.path.join(agent.workdir, "s"))) == ["a.txt", "b.txt"]

    r = await agent.client.put("/files", params={"path": "s/a.txt", "stage": "1"}, content=b"new")
    item = {"staged": r.json()["staged"], "path": r.json()["path"]}
    assert (await agent.client.post("/files/discard", json={"files": [item]})).status_code == 204
    assert open(os.path.join(agent.workdir, "s", "a.txt"), "rb").read() == b"A"
    assert sorted(os.listdir(os.path.join(agent.workdir, "s"))) == ["a.txt", "b.txt"]
    # only our own temp files, beside their targets, are moved or deleted
    a = os.path.join(agent.workdir, "s", "a.txt")
    for bad in ({"staged": a, "path": os.path.join(agent.workdir, "s", "b.txt")},
                {"staged": "/etc/.passwd.0123456789ab.nsupload", "path": os.path.join(agent.workdir, "x")}):  # fmt: skip
        for action in ("commit", "discard"):
            r = await agent.client.post(f"/files/{action}", json={"files": [bad]})
            assert r.status_code == 400, (action, bad)
    assert open(a, "rb").read() == b"A"


async def test_committing_a_staged_upload_that_is_gone_is_a_clean_error(agent: Agent) -> None:
    r = await agent.client.put("/files", params={"path": "g/a.txt", "stage": "1"}, content=b"A")
    item = {"staged": r.json()["staged"], "path": r.json()["path"]}
    os.unlink(item["staged"])
    r = await agent.client.post("/files/commit", json={"files": [item]})
    assert r.status_code == 404 and r.json()["code"] == "not_found"
