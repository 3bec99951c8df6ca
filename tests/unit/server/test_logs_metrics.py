"""Log lines carry the sandbox id (text and JSON); metric labels stay in closed sets."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from nullspace.server import logs
from nullspace.server.metrics import Metrics, observe_run


def _logger(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.SandboxField())
    handler.setFormatter(logs.JSONFormatter() if fmt == "json" else logs.TextFormatter())
    logger = logging.getLogger(f"test.logs.{fmt}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_sandbox_id_from_context_in_text_and_json() -> None:
    async def scenario(fmt: str) -> str:
        logger, stream = _logger(fmt)
        logger.info("before")
        logs.bind_sandbox("sb_0123456789abcdef")
        await asyncio.create_task(asyncio.sleep(0))  # tasks inherit it
        logger.info("about it")
        logs.bind_sandbox("sb_bad id\nforged")  # not an id: dropped, never printed
        logger.info("after")
        return stream.getvalue()

    text = asyncio.run(scenario("text")).splitlines()
    assert "[sb_" not in text[0] and text[1].endswith("test.logs.text [sb_0123456789abcdef]: about it")
    assert "[" not in text[2]
    lines = [json.loads(line) for line in asyncio.run(scenario("json")).splitlines()]
    assert "sandbox_id" not in lines[0]
    assert lines[1]["sandbox_id"] == "sb_0123456789abcdef" and lines[1]["message"] == "about it"
    assert lines[1]["level"] == "info" and lines[1]["ts"].endswith("Z")
    assert "sandbox_id" not in lines[2]


def test_access_lines_become_fields() -> None:
    logger, stream = _logger("json")
    logger.name = "uvicorn.access"
    logger.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "POST", "/v1/sandboxes/x/execute", "1.1", 200)
    line = json.loads(stream.getvalue())
    assert line["method"] == "POST" and line["status"] == 200 and line["path"] == "/v1/sandboxes/x/execute"


def test_sandbox_logs_are_bounded() -> None:
    buffer = logs.SandboxLogs(per_sandbox=3, sandboxes=2)
    logger = logging.getLogger("test.logs.buffer")
    logger.handlers = [buffer]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    opener = logging.getLogger(logs.SandboxLogs.OPENER)
    opener.addHandler(buffer)
    level, opener.level = opener.level, logging.INFO
    try:
        for sid in ("sb_a", "sb_b", "sb_c"):
            opener.info("sandbox created", extra={"sandbox_id": sid})
            for i in range(5):
                logger.info("line %d", i, extra={"sandbox_id": sid})
        for n in range(50):  # ids that were never created open nothing and evict nothing
            logger.info("GET /v1/sandboxes/sb_fake%d 404", n, extra={"sandbox_id": f"sb_fake{n}"})
    finally:
        opener.removeHandler(buffer)
        opener.setLevel(level)
    assert buffer.lines("sb_a") == []  # evicted: only the last 2 sandboxes are kept
    assert buffer.lines("sb_fake1") == []
    assert [line["message"] for line in buffer.lines("sb_c")] == ["line 2", "line 3", "line 4"]
    assert buffer.lines("sb_b")[0]["level"] == "info"


def test_hostile_run_events_cannot_grow_the_series() -> None:
    metrics = Metrics()

    class Manager:
        def __init__(self) -> None:
            self.metrics = metrics

        async def execute(self, n: int):  # noqa: ANN201
            yield {"type": "limit", "resource": f"r{n}"}
            yield {"type": "error", "name": f"Forged{n}", "value": ""}
            yield {"type": "end_of_execution", "status": f"s{n}"}

    run = observe_run(Manager.execute)

    async def main() -> None:
        for n in range(50):
            async for _ in run(Manager(), n):
                pass

    asyncio.run(main())
    body, _ = metrics.render()
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    limit = [s for s in samples if s.name == "nullspace_limit_hits_total"]
    runs = [s for s in samples if s.name == "nullspace_runs_total"]
    assert [(s.labels, s.value) for s in limit] == [({"resource": "other"}, 50.0)]
    assert [(s.labels, s.value) for s in runs] == [({"outcome": "error"}, 50.0)]
