"""The agent's terminal commands (``pty``) on the host: output, input, resize, ring, re-attach."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from .agent_harness import CAP, Agent

pytestmark = pytest.mark.anyio


async def start(agent: Agent, **body: Any) -> dict[str, Any]:
    r = await agent.client.post("/commands", json={"background": True, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def read_until(agent: Agent, cmd_id: str, needle: bytes, since: str = "") -> tuple[bytes, list[dict[str, Any]]]:
    """Terminal bytes of the command's events until `needle` shows up (or the end)."""
    seen = b""
    events: list[dict[str, Any]] = []
    url = f"/commands/{cmd_id}/events" + (f"?since={since}" if since else "")
    try:
        async with asyncio.timeout(20):
            async with agent.client.stream("GET", url) as r:
                async for line in r.aiter_lines():
                    event = json.loads(line)
                    events.append(event)
                    if event["type"] == "pty":
                        seen += base64.b64decode(event["data"])
                    if needle in seen or event["type"] == "end":
                        break
    except TimeoutError:
        raise AssertionError(f"{needle!r} not seen in {seen!r}") from None
    return seen, events


class Screen:
    """Follows a terminal command's events in the background; `wait_for` a piece of output."""

    def __init__(self, agent: Agent, cmd_id: str) -> None:
        self.out = b""
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._follow(agent, cmd_id))

    async def _follow(self, agent: Agent, cmd_id: str) -> None:
        async with agent.client.stream("GET", f"/commands/{cmd_id}/events") as r:
            async for line in r.aiter_lines():
                event = json.loads(line)
                self.events.append(event)
                if event["type"] == "pty":
                    self.out += base64.b64decode(event["data"])
                self.changed.set()
                if event["type"] == "end":
                    return

    async def wait_for(self, needle: bytes, after: int = 0) -> bytes:
        try:
            async with asyncio.timeout(20):
                while needle not in self.out[after:]:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"{needle!r} not seen in {self.out[after:]!r}") from None
        return self.out[after:]


async def test_a_terminal_command_sees_a_tty_of_its_size_and_reads_input(agent: Agent) -> None:
    info = await start(agent, cmd=["/bin/bash", "--norc", "-i"], pty={"rows": 30, "cols": 100})
    assert info["pty"] == {"rows": 30, "cols": 100}
    cmd = info["id"]
    screen = Screen(agent, cmd)
    stdin = f"/commands/{cmd}/stdin"
    r = await agent.client.post(stdin, json={"data": "tty; stty size; echo MARK-$((6*7))\n"})
    assert r.status_code == 204, r.text
    out = await screen.wait_for(b"MARK-42")
    assert screen.events[0]["type"] == "start"
    assert b"/dev/pts/" in out and b"30 100" in out

    r = await agent.client.post(f"/commands/{cmd}/resize", json={"rows": 12, "cols": 40})
    assert r.status_code == 204, r.text
    mark = len(screen.out)
    await agent.client.post(stdin, json={"data_base64": base64.b64encode(b"stty size; echo DONE-$((1+1))\n").decode()})
    assert b"12 40" in await screen.wait_for(b"DONE-2", mark)

    # Ctrl-C reaches the foreground job through the terminal, the shell survives
    await agent.client.post(stdin, json={"data": "sleep 30\n"})
    await asyncio.sleep(0.3)
    mark = len(screen.out)
    await agent.client.post(stdin, json={"data": "\x03echo AFTER-$((2+2))\n"})
    await screen.wait_for(b"AFTER-4", mark)

    # a late reader from now on sees the start event, then only new output
    _, late = await read_until(agent, cmd, b"", since="now")
    assert late[0] == {"type": "start", "id": cmd, "pid": info["pid"]}

    await agent.client.post(stdin, json={"data": "exit 3\n"})
    async with asyncio.timeout(20):
        await screen.task
    assert screen.events[-1]["type"] == "end" and screen.events[-1]["exit_code"] == 3


async def test_terminal_output_is_a_ring_not_a_cap(agent: Agent) -> None:
    # 4x the output cap: a terminal keeps running and keeps the newest output
    script = f"head -c {4 * CAP} /dev/zero | tr '\\0' x; echo; echo TAIL-$((3*3))"
    info = await start(agent, cmd=["/bin/bash", "-c", script], pty={"rows": 24, "cols": 80})
    await read_until(agent, info["id"], b"\x00never")
    out, events = await read_until(agent, info["id"], b"\x00never")  # a late reader: the newest
    assert events[0]["type"] == "start" and events[-1]["type"] == "end" and events[-1]["exit_code"] == 0
    assert b"TAIL-9" in out and len(out) <= CAP
    assert b"truncated" not in out


async def test_bad_terminal_requests(agent: Agent) -> None:
    for pty in ({"rows": 0, "cols": 10}, {"rows": 10}, "80x24", {"rows": 10, "cols": 100000}):
        r = await agent.client.post("/commands", json={"cmd": "true", "pty": pty})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", pty
    r = await agent.client.post("/commands", json={"cmd": "true", "pty": {"rows": 5, "cols": 5}, "stdin": "x"})
    assert r.status_code == 400
    info = await start(agent, cmd="sleep 5")
    r = await agent.client.post(f"/commands/{info['id']}/resize", json={"rows": 5, "cols": 5})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    await agent.client.post(f"/commands/{info['id']}/kill", json={})


async def test_find_by_pid_and_tag_and_stdin_closed_on_request(agent: Agent) -> None:
    info = await start(agent, cmd="cat; echo EOF-SEEN", tag="my-tag", stdin_open=False)
    r = await agent.client.get("/commands", params={"pid": info["pid"]})
    assert [c["id"] for c in r.json()] == [info["id"]]
    r = await agent.client.get("/commands", params={"tag": "my-tag"})
    assert r.json()[0]["tag"] == "my-tag"
    _, events = await read_until(agent, info["id"], b"EOF-SEEN")
    assert events[-1]["type"] == "end" and events[-1]["exit_code"] == 0  # cat read /dev/null
    r = await agent.client.get("/commands", params={"pid": 999999})
    assert r.status_code == 404
    r = await agent.client.get("/commands", params={"all": "1"})
    assert info["id"] in [c["id"] for c in r.json()]


async def test_ring_output_keeps_the_newest_instead_of_a_cap(agent: Agent) -> None:
    script = f"head -c {3 * CAP} /dev/zero | tr '\\0' y; echo; echo LAST-LINE"
    info = await start(agent, cmd=script, output="ring")
    await read_until(agent, info["id"], b"\x00never")
    async with agent.client.stream("GET", f"/commands/{info['id']}/events") as r:
        events = [json.loads(line) async for line in r.aiter_lines()]
    text = "".join(e.get("text", "") for e in events if e["type"] == "stdout")
    assert events[0]["type"] == "start" and events[-1]["type"] == "end"
    assert text.endswith("LAST-LINE\n") and len(text) <= CAP and "truncated" not in text
    r = await agent.client.post("/commands", json={"cmd": "true", "output": "all"})
    assert r.status_code == 400
