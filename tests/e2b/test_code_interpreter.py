"""Port 49999 through the official `e2b_code_interpreter` SDK (sync and async), on real sandboxes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from e2b.exceptions import NotFoundException, SandboxException, TimeoutException
from e2b_code_interpreter import AsyncSandbox, Sandbox
from e2b_code_interpreter.charts import BarChart, LineChart


@pytest.fixture(scope="module")
def sbx(e2b_server) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=600, envs={"SANDBOX_LEVEL": "from-create"})
    yield sandbox
    sandbox.kill()


def test_python_results_logs_errors_and_execution_count(e2b_server) -> None:
    fresh = Sandbox.create(timeout=120)
    try:
        first = fresh.run_code("print('hi'); x = 1; x")
        assert first.execution_count == 1
        assert first.logs.stdout == ["hi\n"] and first.text == "1"
        assert first.results[0].is_main_result
        broken = fresh.run_code("1 +")
        assert broken.error.name == "SyntaxError"
        assert fresh.run_code("x").execution_count == 3  # a failed run counts too
        err = fresh.run_code("1 / 0").error
        assert (err.name, err.value) == ("ZeroDivisionError", "division by zero")
        assert "ZeroDivisionError" in err.traceback and "\x1b[" not in err.traceback
        assert fresh.run_code("'quoted'").text == "quoted"  # E2B strips one pair of quotes
        text = fresh.run_code("print('a\\u2028b ünï'); 'x\\u2029y'")  # line separators stay inside lines
        assert text.logs.stdout == ["a\u2028b ünï\n"] and text.text == "x\\u2029y"  # repr escapes it
    finally:
        fresh.kill()


LANGUAGES = [
    ("python", "print('out'); 40 + 2", "42", ["out\n"]),
    ("r", 'print("out"); 40 + 2', "[1] 42", ['[1] "out"\n']),
    ("javascript", "console.log('out'); 40 + 2", "42", ["out\n"]),
    ("typescript", "interface P { n: number }\nconst p: P = { n: 40 }\nconsole.log('out'); p.n + 2", "42", ["out\n"]),
    ("java", 'System.out.println("out");\n40 + 2', "42", ["out\n"]),
    ("bash", "echo out", None, ["out\n"]),
]


@pytest.mark.parametrize(("language", "code", "text", "stdout"), LANGUAGES, ids=[x[0] for x in LANGUAGES])
def test_every_language(sbx: Sandbox, language: str, code: str, text: str | None, stdout: list[str]) -> None:
    ex = sbx.run_code(code, language=language)
    assert ex.error is None, ex.error
    assert "".join(ex.logs.stdout) == "".join(stdout)
    assert ex.text == text
    state = {"python": "y = 5", "r": "y <- 5", "javascript": "var y = 5", "typescript": "var y = 5",
             "java": "int y = 5;", "bash": "y=5"}[language]  # fmt: skip
    sbx.run_code(state, language=language)
    show = {"bash": "echo $y", "java": "System.out.println(y);", "r": "cat(y, '\\n')",
            "python": "print(y)"}.get(language, "console.log(y)")  # fmt: skip
    assert "".join(sbx.run_code(show, language=language).logs.stdout).strip() == "5"


def test_language_errors(sbx: Sandbox) -> None:
    assert sbx.run_code("throw new TypeError('bad')", language="js").error.name == "TypeError"
    assert sbx.run_code('stop("bad")', language="r").error.value.strip().endswith("bad")
    assert sbx.run_code("exit 3", language="bash").error is not None


def test_envs_sandbox_level_and_per_run(sbx: Sandbox) -> None:
    assert sbx.run_code("import os; os.getenv('SANDBOX_LEVEL')").text == "from-create"
    assert sbx.run_code("import os; os.getenv('SANDBOX_LEVEL')", envs={"SANDBOX_LEVEL": "run"}).text == "run"
    assert sbx.run_code("import os; os.getenv('SANDBOX_LEVEL')").text == "from-create"  # restored
    assert sbx.run_code("process.env.ONE_RUN", language="js", envs={"ONE_RUN": "js"}).text == "js"
    assert sbx.run_code("process.env.ONE_RUN", language="js").text in (None, "undefined")
    assert sbx.run_code('Sys.getenv("ONE_RUN")', language="r", envs={"ONE_RUN": "r"}).text == '[1] "r"'
    assert sbx.run_code("echo $ONE_RUN", language="bash", envs={"ONE_RUN": "sh"}).logs.stdout == ["sh\n"]
    java = sbx.run_code('System.getProperty("ONE_RUN")', language="java", envs={"ONE_RUN": "jv"})
    assert java.text == "jv"
    # as in E2B, sandbox-level envs reach Java's System.getProperty too (and System.getenv)
    assert sbx.run_code('System.getProperty("SANDBOX_LEVEL")', language="java").text == "from-create"
    assert sbx.run_code('System.getenv("SANDBOX_LEVEL")', language="java").text == "from-create"
    java_ctx = sbx.create_code_context(language="java")
    assert sbx.run_code('System.getProperty("SANDBOX_LEVEL")', context=java_ctx).text == "from-create"
    assert sbx.run_code("process.env.SANDBOX_LEVEL", language="js").text == "from-create"


def test_contexts(sbx: Sandbox) -> None:
    listed = sbx.list_code_contexts()
    assert [c.language for c in listed[:2]] == ["python", "javascript"]
    ctx = sbx.create_code_context(cwd="/tmp")
    assert (ctx.language, ctx.cwd) == ("python", "/tmp")
    assert sbx.list_code_contexts()[-1].id == ctx.id
    assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "/tmp"
    sbx.run_code("z = 7", context=ctx)
    assert sbx.run_code("z", context=ctx).text == "7"
    assert sbx.run_code("'z' in globals()").text == "False"  # the default context is another kernel
    sbx.restart_code_context(ctx)
    err = sbx.run_code("z", context=ctx).error
    assert (err.name, err.value) == ("NameError", "name 'z' is not defined")
    r_ctx = sbx.create_code_context(language="r")
    assert sbx.run_code("1:3", context=r_ctx).text == "[1] 1 2 3"
    sbx.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in sbx.list_code_contexts()]
    with pytest.raises(NotFoundException):
        sbx.run_code("1", context=ctx)
    with pytest.raises(SandboxException, match="cannot be entered"):
        sbx.create_code_context(cwd="/root")  # exists, but the sandbox user may not enter it
    with pytest.raises(SandboxException, match="not an existing directory"):
        sbx.create_code_context(cwd="/no/such/dir")


def test_lazy_javascript_context(e2b_server) -> None:
    fresh = Sandbox.create(timeout=120)
    try:
        js = [c for c in fresh.list_code_contexts() if c.language == "javascript"]
        assert len(js) == 1  # listed before any JavaScript ran, as in E2B
        assert fresh.run_code("const a = 20; a * 2 + 2", context=js[0]).text == "42"
        assert fresh.run_code("a", language="javascript").text == "20"  # the same default context
        fresh.restart_code_context(js[0])
        assert fresh.run_code("typeof a", language="js").text == "undefined"
        assert len([c for c in fresh.list_code_contexts() if c.language == "javascript"]) == 1
    finally:
        fresh.kill()


def test_callbacks_stream_in_order(sbx: Sandbox) -> None:
    seen: list[tuple[str, object]] = []
    code = "import sys, time\nprint('one', flush=True)\ntime.sleep(0.3)\nprint('two', file=sys.stderr)\ndisplay(3)\n1 / 0"
    ex = sbx.run_code(
        code,
        on_stdout=lambda m: seen.append(("stdout", (m.line, m.error, time.monotonic()))),
        on_stderr=lambda m: seen.append(("stderr", m.line)),
        on_result=lambda r: seen.append(("result", r.text)),
        on_error=lambda e: seen.append(("error", e.name)),
    )
    assert [kind for kind, _ in seen] == ["stdout", "stderr", "result", "error"]
    assert seen[0][1][:2] == ("one\n", False)
    assert seen[2] == ("result", "3") and ex.error.name == "ZeroDivisionError"


def test_charts_and_display_data(sbx: Sandbox) -> None:
    bar = sbx.run_code(
        "import matplotlib.pyplot as plt\nplt.bar(['Mon', 'Tue'], [3, 5], label='orders')\n"
        "plt.title('Orders'); plt.ylabel('Orders (count)')\nplt.show()"
    ).results[0]
    assert isinstance(bar.chart, BarChart) and bar.chart.title == "Orders" and bar.chart.y_unit == "count"
    assert [(e.label, e.value, e.group) for e in bar.chart.elements] == [("Mon", 3, "orders"), ("Tue", 5, "orders")]
    assert bar.png and not bar.extra  # E2B: a figure has no extra formats
    line = sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2], [4, 8], label='l')\nplt.show()").results[0]
    assert isinstance(line.chart, LineChart) and line.chart.elements[0].points == [(1, 4), (2, 8)]
    assert line.chart.x_ticks and line.chart.x_scale.value == "linear"
    md = sbx.run_code("from IPython.display import Markdown, HTML, display\ndisplay(Markdown('**hi**'))\nHTML('<b>x</b>')")
    assert md.results[0].markdown == "**hi**" and not md.results[0].is_main_result
    assert md.results[1].html == "<b>x</b>" and md.results[1].is_main_result


def test_dataframe_data_is_column_lists(sbx: Sandbox) -> None:
    result = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})").results[0]
    assert result.data == {"a": [1, 2], "b": ["x", "y"]}
    assert "<table" in result.html and "data" in result.formats()


def test_timeout_interrupts_and_the_context_lives_on(sbx: Sandbox) -> None:
    sbx.run_code("kept = 'yes'")
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        sbx.run_code("import time; time.sleep(60)", timeout=2)
    assert time.monotonic() - started < 10
    ex = sbx.run_code("kept", timeout=20)  # the abandoned run was interrupted: no queueing behind it
    assert ex.text == "yes"


def test_killed_during_a_run_raises(e2b_server) -> None:
    doomed = Sandbox.create(timeout=120)
    threading.Timer(1.0, doomed.kill).start()
    with pytest.raises(TimeoutException, match="killed"):
        doomed.run_code("import time; time.sleep(30)")


def test_async_sandbox(e2b_server) -> None:
    async def main() -> None:
        sbx = await AsyncSandbox.create(timeout=120)
        try:
            lines: list[str] = []

            async def on_stdout(msg) -> None:  # async callbacks are awaited
                lines.append(msg.line)

            ex = await sbx.run_code("for i in range(3): print(i)", on_stdout=on_stdout)
            assert lines == ["0\n1\n2\n"] or "".join(lines) == "0\n1\n2\n"
            assert ex.error is None
            ctx = await sbx.create_code_context(language="ts")
            assert ctx.language == "typescript"
            assert (await sbx.run_code("const n: number = 2; n * 21", context=ctx)).text == "42"
            both = await asyncio.gather(sbx.run_code("6 * 7"), sbx.run_code("'ok'", language="bash"))
            assert both[0].text == "42"
            assert (await sbx.get_info()).sandbox_id == sbx.sandbox_id
            await sbx.set_timeout(200)
            assert await sbx.is_running()
        finally:
            await sbx.kill()
        assert not await sbx.is_running()

    asyncio.run(main())


def test_bad_input_on_the_interpreter_port(e2b_server, sbx: Sandbox) -> None:
    headers = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999", "X-Access-Token": sbx._envd_access_token}
    with httpx.Client(base_url=e2b_server.url, headers=headers, timeout=30) as client:
        for body, status, text in (
            (b"{nope", 400, "not valid JSON"),
            (b"[]", 400, "JSON object"),
            (b'{"code": 5}', 400, "code must be a string"),
            (b'{"code": "1", "language": "python", "context_id": "x"}', 400, "Only one of context_id or language"),
            (b'{"code": "1", "env_vars": {"A": 1}}', 400, "env_vars"),
            (b'{"code": "1", "language": "cobol"}', 400, "unsupported language"),
            (b'{"code": "1", "context_id": "../../etc"}', 404, "not found"),
            (b'{"code": "1", "context_id": "no-such-context"}', 404, "Context no-such-context not found"),
        ):
            reply = client.post("/execute", content=body)
            assert (reply.status_code, text in reply.text) == (status, True), (body, reply.status_code, reply.text)
        assert client.post("/contexts", json={"language": 3}).status_code == 400
        assert client.post("/contexts", json={"language": "cobol"}).status_code == 400
        assert client.delete("/contexts/no-such-context").status_code == 404
        assert client.post("/contexts/no-such-context/restart").status_code == 404
        assert client.get("/nothing").status_code == 404
        too_big = client.post("/execute", content=b'{"code": "' + b"x" * (17 << 20) + b'"}')
        assert too_big.status_code == 413
        assert client.get("/health").json() == "OK"
        ok = client.post("/execute", json={"code": "print('é\\u2028')", "context_id": None, "language": None, "env_vars": None})
        lines = ok.text.split("\n")
        assert lines[-1] == "" and all(line.isascii() and line for line in lines[:-1])  # NDJSON, ASCII, no blanks
