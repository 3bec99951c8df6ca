"""The agent's /commands endpoints on the host (no sandbox), and the process-tree helpers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest

from nullspace.agent.processes import tree_pids

from .agent_harness import CAP, Agent

pytestmark = pytest.mark.anyio


async def run(agent: Agent, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with agent.client.stream("POST", "/commands", json=body) as r:
        assert r.status_code == 200, await r.aread()
        return [json.loads(line) async for line in r.aiter_lines()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_tree_pids_takes_session_group_descendants_and_marked() -> None:
    table = {
        10: (1, 10, 10),  # the command, session leader
        11: (10, 10, 10),  # its child
        12: (11, 12, 10),  # a grandchild in its own group, same session
        13: (12, 13, 13),  # a descendant that called setsid
        20: (1, 20, 20),  # unrelated
        21: (1, 21, 21),  # an orphaned daemon that inherited the marker
        22: (21, 21, 21),  # ...and its child
    }
    assert tree_pids(10, table) == {10, 11, 12, 13}
    assert tree_pids(10, table, {21}) == {10, 11, 12, 13, 21, 22}
    assert tree_pids(99, table) == set()


async def test_foreground_events_and_exit_code(agent: Agent) -> None:
    events = await run(agent, {"cmd": "echo out; echo err >&2; exit 5"})
    assert events[0]["type"] == "start" and events[0]["id"].startswith("cmd_")
    assert [(e["type"], e["text"]) for e in events[1:-1]] == [("stdout", "out\n"), ("stderr", "err\n")]
    assert events[-1] == {"type": "end", "exit_code": 5, "signal": None, "status": "exited", "error": None}


async def test_bad_requests(agent: Agent) -> None:
    for body in ({"cmd": ""}, {"cmd": []}, {"cmd": "x", "cwd": "/no/such"}, {"cmd": "x", "timeout": -1},
                 {"cmd": "x", "envs": {"A=B": "c"}}, {"cmd": "x", "stdin": "a", "stdin_base64": "YQ=="}):
        r = await agent.client.post("/commands", json=body)
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", body
    r = await agent.client.post("/commands", json={"cmd": ["/no/such/binary"]})
    assert r.status_code == 400 and "cannot start" in r.json()["message"]
    assert (await agent.client.get("/commands/cmd_ffff")).status_code == 404


async def test_output_cap_bounds_a_flood(agent: Agent) -> None:
    events = await run(agent, {"cmd": "head -c 5000000 /dev/zero | tr '\\0' y"})
    text = "".join(e["text"] for e in events if e["type"] == "stdout")
    assert 0 < len(text) < CAP
    assert "output truncated" in events[-2]["text"] and events[-1]["exit_code"] == 0


async def test_leaving_a_foreground_stream_kills_the_command(agent: Agent) -> None:
    async with agent.client.stream("POST", "/commands", json={"cmd": "sleep 300 & sleep 301"}) as r:
        lines = r.aiter_lines()
        start = json.loads(await anext(lines))
    pid = start["pid"]
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pid)
    listed = (await agent.client.get("/commands")).json()
    assert start["id"] not in [c["id"] for c in listed]


async def test_background_stdin_replay_and_kill(agent: Agent) -> None:
    r = await agent.client.post("/commands", json={"cmd": "cat", "background": True, "stdin": "first\n"})
    assert r.status_code == 201
    cid = r.json()["id"]
    r = await agent.client.post(f"/commands/{cid}/stdin", json={"data_base64": "c2Vjb25kCg==", "eof": True})
    assert r.status_code == 204
    async with agent.client.stream("GET", f"/commands/{cid}/events") as r:
        events = [json.loads(line) async for line in r.aiter_lines()]
    assert "".join(e["text"] for e in events if e["type"] == "stdout") == "first\nsecond\n"
    assert events[-1]["exit_code"] == 0
    r = await agent.client.post(f"/commands/{cid}/stdin", json={"data": "late"})
    assert r.status_code == 409

    r = await agent.client.post("/commands", json={"cmd": ["sleep", "300"], "background": True})
    info = r.json()
    assert info["running"] and info["cmd"] == "sleep 300"
    assert (await agent.client.post(f"/commands/{info['id']}/kill", json={})).json() == {"killed": True}
    async with agent.client.stream("GET", f"/commands/{info['id']}/events") as r:
        end = [json.loads(line) async for line in r.aiter_lines()][-1]
    assert (end["status"], end["signal"], end["exit_code"]) == ("killed", 9, 137)
    assert (await agent.client.post(f"/commands/{info['id']}/kill", json={})).json() == {"killed": False}
    assert (await agent.client.post(f"/commands/{info['id']}/kill", json={"signal": "SIGSTOP"})).status_code == 400


async def test_timeout_reaches_a_setsid_daemon(agent: Agent) -> None:
    events = await run(agent, {"cmd": "(setsid sleep 333 & echo $! > daemon.pid); sleep 334", "timeout": 1})
    assert events[-1]["status"] == "timeout"
    daemon = int(open(os.path.join(agent.workdir, "daemon.pid")).read())
    deadline = time.monotonic() + 5
    while alive(daemon) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(daemon)
