"""Test harness: an in-process agent on a temporary unix socket, driving the host .venv's
python3 kernel, and a client helper that records each event with its arrival time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import uvicorn

from nullspace.agent.__main__ import build_config, parse_args
from nullspace.agent.app import create_app
from nullspace.agent.contexts import Registry

CAP = 256 * 1024  # --max-output-bytes for the test agent


@dataclass
class Execution:
    events: list[dict[str, Any]]
    times: list[float]  # arrival time of each event, seconds after the request was sent

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def stdout(self) -> str:
        return "".join(e["text"] for e in self.of("stdout"))

    @property
    def stderr(self) -> str:
        return "".join(e["text"] for e in self.of("stderr"))

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of("error")
        assert len(errors) <= 1, errors
        return errors[0] if errors else None

    @property
    def status(self) -> str:
        assert self.events[-1]["type"] == "end_of_execution", self.events
        return self.events[-1]["status"]

    @property
    def text(self) -> str | None:
        main = [e for e in self.of("result") if e["is_main_result"]]
        return main[0]["data"].get("text/plain") if main else None

    @property
    def count(self) -> int | None:
        counts = self.of("number_of_executions")
        return counts[0]["execution_count"] if counts else None


@dataclass
class Agent:
    client: httpx.AsyncClient
    socket: str
    workdir: str

    async def run(self, code: str, **body: Any) -> Execution:
        events, times = [], []
        start = time.monotonic()
        async with self.client.stream("POST", "/execute", json={"code": code, **body}) as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"] == "application/x-ndjson"
            async for line in r.aiter_lines():
                events.append(json.loads(line))
                times.append(time.monotonic() - start)
        assert events and events[-1]["type"] == "end_of_execution", events
        assert [e["type"] for e in events].count("end_of_execution") == 1
        return Execution(events, times)

    async def context(self, **body: Any) -> str:
        r = await self.client.post("/contexts", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]


@contextlib.asynccontextmanager
async def running_agent(**overrides: Any) -> AsyncIterator[Agent]:
    base = tempfile.mkdtemp(prefix="nsa-", dir="/tmp")  # IPC paths must stay short
    workdir = os.path.join(base, "home")
    os.mkdir(workdir)
    template = os.path.join(base, "template.json")
    with open(template, "w") as fh:
        kernels = {"python": "python3", "bogus": "no-such-kernelspec"}
        json.dump({"kernels": kernels, "workdir": workdir}, fh)
    sock = os.path.join(base, "agent.sock")
    args = parse_args(
        [
            "--socket",
            sock,
            "--template-json",
            template,
            "--runtime-dir",
            os.path.join(base, "run"),
            "--max-output-bytes",
            str(CAP),
        ]
    )
    config = replace(build_config(args), keepalive_interval=1.0, interrupt_grace=1.5, **overrides)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Registry(config)),
            uds=sock,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the agent failed to start"
            await asyncio.sleep(0.01)
        transport = httpx.AsyncHTTPTransport(uds=sock)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent", timeout=60) as client:
            deadline = time.monotonic() + 60
            while not (await client.get("/health")).json()["ready"]:
                assert time.monotonic() < deadline, "default context never became ready"
                await asyncio.sleep(0.05)
            yield Agent(client, sock, workdir)
    finally:
        server.should_exit = True
        await task
        shutil.rmtree(base, ignore_errors=True)
