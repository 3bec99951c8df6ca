"""The agent with the host's ipykernel: display hooks loaded at kernel start, the artifacts event,
and the per-run output cap. (The end-to-end versions run in real sandboxes: tests/integration.)"""

from __future__ import annotations

import pytest

from .agent_harness import Agent

CHART = "application/vnd.nullspace.chart+json"
TABLE = "application/vnd.dataresource+json"

pytestmark = pytest.mark.anyio


async def test_hooks_load_at_start_without_touching_the_namespace_or_the_count(agent: Agent) -> None:
    ctx = await agent.context()
    run = await agent.run(
        "import sys\n"
        "(sorted(k for k in globals() if 'nullspace' in k), '_nullspace_kernel' in sys.modules,"
        " 'matplotlib' in sys.modules, 'pandas' in sys.modules)",
        context_id=ctx,
    )
    assert run.count == 1  # loading the hooks was not a user run
    assert run.text == "([], True, False, False)"  # nothing imported early, nothing left behind


async def test_matplotlib_figures_carry_a_chart(agent: Agent) -> None:
    run = await agent.run("import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 1])\nplt.show()")
    (result,) = run.of("result")
    assert {"image/png", CHART} <= set(result["data"])
    assert result["data"][CHART]["type"] == "bar"


async def test_dataframes_carry_table_schema(agent: Agent) -> None:
    pytest.importorskip("pandas")
    run = await agent.run("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    (result,) = run.of("result")
    assert result["data"][TABLE]["data"] == [{"index": 0, "a": 1}, {"index": 1, "a": 2}]
    assert "text/html" in result["data"]


async def test_artifacts_event_comes_before_the_end(agent: Agent) -> None:
    run = await agent.run("open('made.txt', 'w').write('x')\nraise KeyError('after')")
    types = [e["type"] for e in run.events]
    assert types[-2:] == ["artifacts", "end_of_execution"] and "error" in types
    (event,) = run.of("artifacts")
    assert [a["name"] for a in event["artifacts"]] == ["made.txt"] and event["root"] == agent.workdir
    assert not (await agent.run("1")).of("artifacts")


async def test_output_cap_per_run(agent: Agent) -> None:
    run = await agent.run("print('z' * 5000)", max_output_bytes=100)
    assert run.stdout == "z" * 100
    assert run.stderr.endswith("[nullspace: output truncated after 100 bytes]\n")
    r = await agent.client.post("/execute", json={"code": "1", "max_output_bytes": 0})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
