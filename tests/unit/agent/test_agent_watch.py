"""The agent's /watchers (inotify) on the host: polled and streamed events, recursion, limits."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from .agent_harness import Agent

pytestmark = pytest.mark.anyio


async def poll(agent: Agent, watcher: str, want: set[tuple[str, str]]) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    async with asyncio.timeout(10):
        while not want <= seen:
            r = await agent.client.get(f"/watchers/{watcher}/events")
            assert r.status_code == 200, r.text
            seen |= {(e["name"], e["op"]) for e in r.json()["events"]}
            await asyncio.sleep(0.02)
    return seen


async def test_polled_recursive_watch(agent: Agent) -> None:
    root = os.path.join(agent.workdir, "watched")
    os.makedirs(os.path.join(root, "sub"))
    r = await agent.client.post("/watchers", json={"path": "watched", "recursive": True, "include_entry": True})
    assert r.status_code == 201, r.text
    watcher = r.json()["id"]
    with open(os.path.join(root, "sub", "a.txt"), "w") as fh:
        fh.write("x")
    os.mkdir(os.path.join(root, "later"))
    await asyncio.sleep(0.1)  # the new directory gets its watch when its creation is read
    with open(os.path.join(root, "later", "b.txt"), "w") as fh:
        fh.write("y")
    os.chmod(os.path.join(root, "sub", "a.txt"), 0o600)
    os.rename(os.path.join(root, "sub", "a.txt"), os.path.join(root, "c.txt"))
    os.unlink(os.path.join(root, "c.txt"))
    seen = await poll(agent, watcher, {("sub/a.txt", "create"), ("sub/a.txt", "write"), ("later", "create"),
                                       ("later/b.txt", "create"), ("sub/a.txt", "chmod"), ("sub/a.txt", "rename"),
                                       ("c.txt", "create"), ("c.txt", "remove")})  # fmt: skip
    assert all(not name.startswith("/") for name, _ in seen)
    # an upload through /files lands atomically but shows up as created and written
    r = await agent.client.put("/files", params={"path": "watched/up.txt"}, content=b"data")
    assert r.status_code == 200
    seen = await poll(agent, watcher, {("up.txt", "create"), ("up.txt", "write")})
    assert not any("nsupload" in name for name, _ in seen)
    assert (await agent.client.delete(f"/watchers/{watcher}")).status_code == 204
    assert (await agent.client.get(f"/watchers/{watcher}/events")).status_code == 404


async def test_streamed_watch_ends_when_the_directory_goes(agent: Agent) -> None:
    root = os.path.join(agent.workdir, "streamed")
    os.mkdir(root)
    watcher = (await agent.client.post("/watchers", json={"path": root})).json()["id"]
    events = []
    async with asyncio.timeout(10), agent.client.stream("GET", f"/watchers/{watcher}/stream") as r:
        async for line in r.aiter_lines():
            event = json.loads(line)
            events.append(event)
            if event["type"] == "start":
                open(os.path.join(root, "f"), "w").close()
            elif event["type"] == "fs" and event["op"] == "create":
                os.unlink(os.path.join(root, "f"))
                os.rmdir(root)
    assert events[0] == {"type": "start"} and events[-1]["type"] == "end"
    assert ("f", "remove") in {(e.get("name"), e.get("op")) for e in events}


async def test_bad_watches(agent: Agent) -> None:
    open(os.path.join(agent.workdir, "plain.txt"), "w").close()
    for body, status in (({"path": "plain.txt"}, 400), ({"path": "/no/such"}, 404), ({"path": "/proc"}, 400),
                         ({"path": ".", "recursive": "yes"}, 400)):  # fmt: skip
        r = await agent.client.post("/watchers", json=body)
        assert r.status_code == status, (body, r.text)
