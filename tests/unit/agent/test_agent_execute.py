"""End-to-end through the agent's HTTP surface with a real python3 kernel."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from .agent_harness import CAP, Agent

pytestmark = pytest.mark.anyio


async def test_health(agent: Agent) -> None:
    body = (await agent.client.get("/health")).json()
    assert body["status"] == "ok"
    assert body["ready"] is True
    assert body["contexts"] >= 1
    assert (await agent.client.get("/health", params={"wait": 5})).json()["ready"] is True  # no wait
    bad = await agent.client.get("/health", params={"wait": "soon"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_argument"


async def test_hello_world_and_execution_count(agent: Agent) -> None:
    ctx = await agent.context()
    first = await agent.run("print('hello world')", context_id=ctx)
    assert first.events[0] == {"type": "number_of_executions", "execution_count": 1}
    assert first.stdout == "hello world\n"
    assert first.of("stdout")[0]["timestamp"].endswith("+00:00")
    assert first.status == "ok"
    second = await agent.run("1 + 1", context_id=ctx)
    assert second.count == 2
    assert second.text == "2"
    assert second.of("result")[0]["is_main_result"] is True
    third = await agent.run("syntax error here", context_id=ctx)
    assert third.error["name"] == "SyntaxError"
    assert (await agent.run("3", context_id=ctx)).count == 4  # a SyntaxError still counts


async def test_state_across_runs(agent: Agent) -> None:
    await agent.run("x = 40 + 2")
    assert (await agent.run("x")).text == "42"
    assert (await agent.run("x", language="Python")).text == "42"  # same default context


async def test_stdout_streams_before_the_end(agent: Agent) -> None:
    ex = await agent.run("import time\nprint('early', flush=True)\ntime.sleep(3)\nprint('late')")
    early = ex.events.index(next(e for e in ex.events if e.get("text") == "early\n"))
    end = len(ex.events) - 1
    assert ex.times[early] < 1.5
    assert ex.times[end] > 2.9
    assert ex.times[end] - ex.times[early] > 1.5
    assert ex.of("keepalive"), "keepalive_interval is 1 s in the test agent"
    assert ex.stdout == "early\nlate\n"


async def test_matplotlib_png(agent: Agent) -> None:
    pytest.importorskip("matplotlib")
    ex = await agent.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    assert ex.status == "ok", ex.events
    images = [e for e in ex.of("result") if "image/png" in e["data"]]
    assert len(images) == 1
    assert images[0]["is_main_result"] is False
    assert len(images[0]["data"]["image/png"]) > 1000


async def test_display_data(agent: Agent) -> None:
    ex = await agent.run("from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))")
    [result] = ex.of("result")
    assert result["data"]["text/html"] == "<b>hi</b>"
    assert result["is_main_result"] is False


async def test_error(agent: Agent) -> None:
    ex = await agent.run("def f():\n    raise ValueError('bad value')\nf()")
    assert ex.status == "error"
    err = ex.error
    assert err["name"] == "ValueError"
    assert err["value"] == "bad value"
    assert "raise ValueError('bad value')" in err["traceback"]
    assert "\x1b[" not in err["traceback"]


async def test_timeout_interrupts_and_next_run_works(agent: Agent) -> None:
    ctx = await agent.context()
    await agent.run("kept = 'yes'", context_id=ctx)
    ex = await agent.run("import time\ntime.sleep(30)", context_id=ctx, timeout=1)
    assert ex.status == "timeout"
    assert ex.error == {
        "type": "error",
        "name": "ExecutionTimeout",
        "value": "execution exceeded the 1.0 s timeout; the kernel was interrupted",
        "traceback": "",
        "state_lost": False,
    }
    assert ex.times[-1] < 5
    assert (await agent.run("kept", context_id=ctx)).text == "'yes'"


async def test_timeout_with_sigint_ignored_restarts(agent: Agent) -> None:
    ctx = await agent.context()
    await agent.run("kept = 1", context_id=ctx)
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    ex = await agent.run(code, context_id=ctx, timeout=0.5)
    assert ex.status == "timeout"
    assert ex.error["value"].endswith("the kernel was restarted, state lost")
    after = await agent.run("1 + 1", context_id=ctx)
    assert after.text == "2"
    assert (await agent.run("kept", context_id=ctx)).error["name"] == "NameError"


async def test_exit_code_is_reported_and_kernel_restarts(agent: Agent) -> None:
    ctx = await agent.context()
    ex = await agent.run("import os\nprint('bye', flush=True)\nos._exit(3)", context_id=ctx)
    assert ex.status == "error"
    err = ex.error
    assert err["name"] == "KernelDied"
    assert err["value"] == "the kernel exited (exit code 3)"
    assert err["exit_code"] == 3 and err["signal"] is None and err["state_lost"] is True
    assert ex.times[-1] < 5
    after = await agent.run("1 + 1", context_id=ctx)
    assert after.text == "2"
    assert after.count == 1  # a fresh kernel
    contexts = (await agent.client.get("/contexts")).json()
    assert ctx in [c["id"] for c in contexts]


async def test_sigkill_is_reported(agent: Agent) -> None:
    ctx = await agent.context()
    ex = await agent.run("import os\nos.kill(os.getpid(), 9)", context_id=ctx)
    err = ex.error
    assert err["name"] == "KernelDied"
    assert err["value"] == "the kernel exited (killed by signal 9, SIGKILL)"
    assert err["signal"] == 9 and err["exit_code"] is None
    assert (await agent.run("2 + 2", context_id=ctx)).text == "4"


async def test_contexts_are_independent_and_parallel(agent: Agent) -> None:
    a, b = await agent.context(), await agent.context()
    await agent.run("only_a = 1", context_id=a)
    assert (await agent.run("only_a", context_id=b)).error["name"] == "NameError"
    start = time.monotonic()
    ra, rb = await asyncio.gather(
        agent.run("import time; time.sleep(1); 'a'", context_id=a),
        agent.run("import time; time.sleep(1); 'b'", context_id=b),
    )
    assert (ra.text, rb.text) == ("'a'", "'b'")
    assert time.monotonic() - start < 1.9


async def test_runs_in_one_context_are_serialized(agent: Agent) -> None:
    ctx = await agent.context()
    start = time.monotonic()
    r1, r2 = await asyncio.gather(
        agent.run("import time; time.sleep(0.8); 1", context_id=ctx),
        agent.run("import time; time.sleep(0.8); 2", context_id=ctx),
    )
    assert sorted([r1.text, r2.text]) == ["1", "2"]
    assert time.monotonic() - start >= 1.6
    assert sorted([r1.count, r2.count]) == [1, 2]


async def test_per_run_envs_are_applied_then_restored(agent: Agent) -> None:
    ctx = await agent.context()
    await agent.run("import os\nos.environ['KEEP'] = 'user'\nos.environ.pop('NEW', None)", context_id=ctx)
    tricky = 'it\'s "quoted" \\ back\nslash \u20ac \u2028 end'
    code = "import os, json\nprint(json.dumps([os.environ['KEEP'], os.environ['NEW']]))"
    ex = await agent.run(code, context_id=ctx, envs={"KEEP": "run", "NEW": tricky})
    assert ex.status == "ok", ex.events
    assert json.loads(ex.stdout) == ["run", tricky]
    assert ex.count == 2  # the silent setup runs do not count
    after = await agent.run("import os\nprint(os.environ.get('KEEP'), os.environ.get('NEW'))", context_id=ctx)
    assert after.stdout == "user None\n"
    assert after.count == 3
    names = await agent.run("[n for n in dir() if n.startswith('__ns')]", context_id=ctx)
    assert names.text == "[]"


async def test_envs_restored_after_an_error(agent: Agent) -> None:
    ctx = await agent.context()
    ex = await agent.run("raise RuntimeError('x')", context_id=ctx, envs={"ONCE": "1"})
    assert ex.error["name"] == "RuntimeError"
    after = await agent.run("import os; os.environ.get('ONCE')", context_id=ctx)
    assert after.text is None  # None displays nothing


async def test_unicode_line_separator_stays_on_one_line(agent: Agent) -> None:
    raw = b""
    body = {"code": "print('a\\u2028b\\u2029c\\x85d')"}
    async with agent.client.stream("POST", "/execute", json=body) as r:
        async for chunk in r.aiter_bytes():
            raw += chunk
    assert raw.isascii()
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["text"] for e in events if e["type"] == "stdout"] == ["a\u2028b\u2029c\x85d\n"]


async def test_output_cap_marker(agent: Agent) -> None:
    ex = await agent.run("import sys\nsys.stdout.write('x' * 300_000)\nprint('never', file=sys.stderr)")
    stdout = ex.of("stdout")
    assert all(len(e["text"].encode()) <= 64 * 1024 for e in stdout)
    assert sum(len(e["text"]) for e in stdout) == CAP
    assert ex.stderr == f"\n[nullspace: output truncated after {CAP} bytes]\n"
    assert ex.status == "ok"


async def test_big_stream_message_is_chunked(agent: Agent) -> None:
    ex = await agent.run("print('\u00e9' * 100_000, end='')")  # 200 000 bytes, one message
    stdout = ex.of("stdout")
    assert len(stdout) >= 4
    assert all(len(e["text"].encode()) <= 64 * 1024 for e in stdout)
    assert ex.stdout == "\u00e9" * 100_000
    assert not ex.stderr


async def test_client_disconnect_interrupts_the_kernel(agent: Agent) -> None:
    ctx = await agent.context()
    async with agent.client.stream(
        "POST", "/execute", json={"code": "import time\ntime.sleep(60)", "context_id": ctx}
    ) as r:
        async for line in r.aiter_lines():
            if json.loads(line)["type"] == "number_of_executions":
                break  # leaving the block closes the connection
    start = time.monotonic()
    after = await agent.run("'still usable'", context_id=ctx)
    assert after.text == "'still usable'"
    assert time.monotonic() - start < 5


async def test_kernel_process_environment(agent: Agent) -> None:
    code = (
        "import os\n"
        "print(os.environ.get('JPY_PARENT_PID'), open('/proc/self/oom_score_adj').read().strip(),"
        " os.getcwd())"
    )
    ex = await agent.run(code)
    parent, oom, cwd = ex.stdout.split()
    assert parent == "None"
    assert int(oom) >= 500
    assert cwd == agent.workdir


async def test_bad_requests(agent: Agent) -> None:
    c = agent.client
    r = await c.post("/execute", json={"code": "1", "language": "cobol"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_argument"
    assert "python" in r.json()["message"]
    r = await c.post("/execute", json={"code": "1", "language": "python", "context_id": "x"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    r = await c.post("/execute", json={"code": "1", "context_id": "nope"})
    assert r.status_code == 404 and r.json()["code"] == "context_not_found"
    r = await c.post("/execute", json={"code": 1})
    assert r.status_code == 400
    r = await c.post("/execute", content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    r = await c.post("/execute", json={"code": "1", "envs": {"A": 1}})
    assert r.status_code == 400
    r = await c.post("/execute", json={"code": "1", "timeout": -1})
    assert r.status_code == 400
    r = await c.post("/contexts", json={"language": "cobol"})
    assert r.status_code == 400
    r = await c.post("/contexts", json={"cwd": "/definitely/not/here"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    r = await c.post("/contexts/nope/restart")
    assert r.status_code == 404 and r.json()["code"] == "context_not_found"
    r = await c.delete("/contexts/nope")
    assert r.status_code == 404
    r = await c.get("/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_kernel_that_cannot_start(agent: Agent) -> None:
    before = (await agent.client.get("/contexts")).json()
    r = await agent.client.post("/execute", json={"code": "1", "language": "bogus"})
    assert r.status_code == 500
    assert r.json()["code"] == "internal"
    assert "no-such-kernelspec" in r.json()["message"]
    r = await agent.client.post("/contexts", json={"language": "bogus"})
    assert r.status_code == 500
    assert (await agent.client.get("/contexts")).json() == before


async def test_context_lifecycle(agent: Agent) -> None:
    c = agent.client
    r = await c.post("/contexts", json={"language": "PY", "cwd": "/tmp"})
    assert r.status_code == 201
    info = r.json()
    assert info["language"] == "python" and info["cwd"] == "/tmp"
    ctx = info["id"]
    assert (await agent.run("import os; os.getcwd()", context_id=ctx)).text == "'/tmp'"
    ids = [x["id"] for x in (await c.get("/contexts")).json()]
    assert ids[-1] == ctx
    await agent.run("y = 5", context_id=ctx)
    r = await c.post(f"/contexts/{ctx}/restart")
    assert r.status_code == 200 and r.json() == info
    ex = await agent.run("y", context_id=ctx)
    assert ex.error["name"] == "NameError"
    assert ex.error["value"] == "name 'y' is not defined"
    assert (await agent.run("import os; os.getcwd()", context_id=ctx)).text == "'/tmp'"
    r = await c.delete(f"/contexts/{ctx}")
    assert r.status_code == 204
    r = await c.post("/execute", json={"code": "1", "context_id": ctx})
    assert r.status_code == 404
    assert ctx not in [x["id"] for x in (await c.get("/contexts")).json()]


async def test_restart_preempts_a_running_execution(agent: Agent) -> None:
    ctx = await agent.context()

    async def restart_soon() -> httpx.Response:
        await asyncio.sleep(0.5)
        return await agent.client.post(f"/contexts/{ctx}/restart")

    ex, r = await asyncio.gather(agent.run("import time\ntime.sleep(60)", context_id=ctx), restart_soon())
    assert r.status_code == 200
    assert ex.error["name"] == "ContextRestarting"
    assert ex.status == "error"
    assert (await agent.run("1", context_id=ctx)).count == 1
