"""Six languages, one contract: Python, R, JavaScript, TypeScript, Java and Bash.

Every language gets the same checks (hello world, state across runs, an error with name, value
and traceback, stdout/stderr streamed separately, cwd through create_context, sandbox-level and
per-run environment variables, a run timeout that leaves the context usable) plus its own rich
result and, for TypeScript, the language features. One sandbox serves the whole module: each
language's default context is created on first use, exactly as a user's would be.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from nullspace import InvalidArgumentError, Sandbox

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Lang:
    name: str
    hello: str  # prints "hello" + newline to stdout
    set_state: str  # sets `counter` to 41
    read_state: str  # prints counter + 1
    error: str  # raises/fails
    error_name: str
    error_value: str  # a substring of the error value
    traceback_has: str
    stderr: str  # writes "oops" + newline to stderr
    cwd: str  # prints the working directory
    getenv: str  # prints the value of NS_VAR ("" / "null" style if unset: see `unset`)
    unset: str  # what `getenv` prints when NS_VAR is unset
    getenv_sandbox: str  # prints NS_SANDBOX_VAR
    stream: str  # prints "first", waits 2 s, prints "second"
    sleep: str  # runs for a minute
    expr: str | None = None  # an expression whose value is the main result "42"
    expr_text: str = "42"


LANGS = {
    "python": Lang(
        "python",
        hello="print('hello')",
        set_state="counter = 41",
        read_state="print(counter + 1)",
        error="def f():\n    raise ValueError('boom')\nf()",
        error_name="ValueError",
        error_value="boom",
        traceback_has="f()",
        stderr="import sys; print('oops', file=sys.stderr)",
        cwd="import os; print(os.getcwd())",
        getenv="import os; print(os.environ.get('NS_VAR', 'unset'))",
        unset="unset",
        getenv_sandbox="import os; print(os.environ['NS_SANDBOX_VAR'])",
        stream="import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second')",
        sleep="import time; time.sleep(60)",
        expr="40 + 2",
    ),
    "r": Lang(
        "r",
        hello='cat("hello\\n")',
        set_state="counter <- 41",
        read_state="cat(counter + 1, '\\n', sep = '')",
        error='f <- function() stop("boom")\nf()',
        error_name="simpleError",
        error_value="boom",
        traceback_has="f()",
        stderr='message("oops")',
        cwd="cat(getwd(), '\\n', sep = '')",
        getenv="cat(Sys.getenv('NS_VAR', 'unset'), '\\n', sep = '')",
        unset="unset",
        getenv_sandbox="cat(Sys.getenv('NS_SANDBOX_VAR'), '\\n', sep = '')",
        stream='cat("first\\n"); flush(stdout()); Sys.sleep(2); cat("second\\n")',
        sleep="Sys.sleep(60)",
        expr="40 + 2",
        expr_text="[1] 42",
    ),
    "javascript": Lang(
        "javascript",
        hello="console.log('hello')",
        set_state="let counter = 41",
        read_state="console.log(counter + 1)",
        error="function f() { throw new TypeError('boom') }\nf()",
        error_name="TypeError",
        error_value="boom",
        traceback_has="at f",
        stderr="console.error('oops')",
        cwd="console.log(process.cwd())",
        getenv="console.log(Deno.env.get('NS_VAR') ?? 'unset')",
        unset="unset",
        getenv_sandbox="console.log(process.env.NS_SANDBOX_VAR)",
        stream="console.log('first'); await new Promise(r => setTimeout(r, 2000)); console.log('second')",
        sleep="while (true) {}",
        expr="40 + 2",
    ),
    "typescript": Lang(
        "typescript",
        hello="const greeting: string = 'hello'\nconsole.log(greeting)",
        set_state="let counter: number = 41",
        read_state="console.log(counter + 1)",
        error="function f(n: number): never { throw new RangeError(`boom ${n}`) }\nf(1)",
        error_name="RangeError",
        error_value="boom 1",
        traceback_has="at f",
        stderr="console.error('oops')",
        cwd="console.log(Deno.cwd())",
        getenv="console.log(process.env.NS_VAR ?? 'unset')",
        unset="unset",
        getenv_sandbox="console.log(Deno.env.get('NS_SANDBOX_VAR'))",
        stream="console.log('first'); await new Promise<void>(r => setTimeout(r, 2000)); console.log('second')",
        sleep="while (Date.now() > 0) {}",  # an interrupt stops running code, not a pending await
        expr="const half: number = 21\nhalf * 2",
    ),
    "java": Lang(
        "java",
        hello='System.out.println("hello");',
        set_state="int counter = 41;",
        read_state="System.out.println(counter + 1);",
        error='void f() { throw new IllegalStateException("boom"); }\nf();',
        error_name="IllegalStateException",
        error_value="boom",
        traceback_has="IllegalStateException",
        stderr='System.err.println("oops");',
        cwd='System.out.println(System.getProperty("user.dir"));',
        getenv='System.out.println(System.getenv().getOrDefault("NS_VAR", "unset"));',
        unset="unset",
        getenv_sandbox='System.out.println(System.getenv("NS_SANDBOX_VAR"));',
        stream='System.out.println("first"); System.out.flush(); Thread.sleep(2000); System.out.println("second");',
        sleep="Thread.sleep(60000);",
        expr="40 + 2",
    ),
    "bash": Lang(
        "bash",
        hello="echo hello",
        set_state="counter=41",
        read_state="echo $((counter + 1))",
        error="f() { ls /nonexistent-dir; }\nf",
        error_name="BashError",
        error_value="exit status 2",
        traceback_has="nonexistent-dir",
        stderr="echo oops >&2",
        cwd="pwd",
        getenv='echo "${NS_VAR:-unset}"',
        unset="unset",
        getenv_sandbox='echo "$NS_SANDBOX_VAR"',
        stream="echo first; sleep 2; echo second",
        sleep="sleep 60",
    ),
}

ALL = list(LANGS)


@pytest.fixture(scope="module")
def polyglot(server) -> Iterator[Sandbox]:  # noqa: ANN001
    with Sandbox.create(
        template="code-interpreter", timeout=900, envs={"NS_SANDBOX_VAR": "from-sandbox"}
    ) as sb:
        yield sb


def stdout(execution) -> str:  # noqa: ANN001
    assert execution.error is None, execution.error
    return "".join(execution.logs.stdout)


@pytest.mark.parametrize("language", ALL)
def test_hello_world(polyglot: Sandbox, language: str) -> None:
    execution = polyglot.run_code(LANGS[language].hello, language=language, timeout=120)
    assert stdout(execution) == "hello\n"
    assert execution.logs.stderr == []


@pytest.mark.parametrize("language", ALL)
def test_state_is_kept_between_runs(polyglot: Sandbox, language: str) -> None:
    lang = LANGS[language]
    first = polyglot.run_code(lang.set_state, language=language, timeout=120)
    assert first.error is None, first.error
    assert stdout(polyglot.run_code(lang.read_state, language=language)) == "42\n"


@pytest.mark.parametrize("language", [name for name in ALL if LANGS[name].expr])
def test_last_expression_is_the_main_result(polyglot: Sandbox, language: str) -> None:
    execution = polyglot.run_code(LANGS[language].expr or "", language=language, timeout=120)
    assert execution.error is None, execution.error
    main = [r for r in execution.results if r.is_main_result]
    assert len(main) == 1, execution.results
    assert main[0].text == LANGS[language].expr_text


@pytest.mark.parametrize("language", ALL)
def test_error_has_name_value_traceback(polyglot: Sandbox, language: str) -> None:
    lang = LANGS[language]
    errors = []
    execution = polyglot.run_code(lang.error, language=language, on_error=errors.append, timeout=120)
    error = execution.error
    assert error is not None
    assert error.name == lang.error_name
    assert lang.error_value in error.value
    assert lang.traceback_has in error.traceback, error.traceback
    assert "\x1b[" not in error.traceback
    assert errors == [error]
    # the context survives its error
    assert stdout(polyglot.run_code(lang.hello, language=language)) == "hello\n"


@pytest.mark.parametrize("language", ALL)
def test_stdout_and_stderr_stream_separately(polyglot: Sandbox, language: str) -> None:
    lang = LANGS[language]
    execution = polyglot.run_code(lang.stderr, language=language, timeout=120)
    assert execution.error is None, execution.error
    assert "".join(execution.logs.stderr).strip() == "oops"
    assert execution.logs.stdout == []

    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    execution = polyglot.run_code(
        lang.stream, language=language, on_stdout=lambda m: seen.append((time.monotonic() - start, m.line))
    )
    total = time.monotonic() - start
    assert "".join(line for _, line in seen) == "first\nsecond\n"
    assert seen[0][0] < total - 1.5, (seen, total)  # "first" came while the run was still sleeping


@pytest.mark.parametrize("language", ALL)
def test_create_context_with_cwd(polyglot: Sandbox, language: str) -> None:
    ctx = polyglot.create_context(language=language.upper(), cwd="/tmp")
    assert ctx.language == language and ctx.cwd == "/tmp"
    try:
        assert stdout(polyglot.run_code(LANGS[language].cwd, context=ctx, timeout=60)) == "/tmp\n"
        # a context is its own kernel: the default context's state is not there
        assert stdout(polyglot.run_code(LANGS[language].cwd, language=language)) == "/home/user\n"
    finally:
        polyglot.remove_context(ctx)


@pytest.mark.parametrize("language", ALL)
def test_sandbox_and_run_environment_variables(polyglot: Sandbox, language: str) -> None:
    lang = LANGS[language]
    assert stdout(polyglot.run_code(lang.getenv_sandbox, language=language, timeout=120)) == "from-sandbox\n"
    value = "it's \"quoted\" \\ and ünïcode"
    assert stdout(polyglot.run_code(lang.getenv, language=language, envs={"NS_VAR": value})) == value + "\n"
    assert stdout(polyglot.run_code(lang.getenv, language=language)) == lang.unset + "\n"
    # a per-run value shadows the sandbox-level one for that run only
    shadow = polyglot.run_code(lang.getenv_sandbox, language=language, envs={"NS_SANDBOX_VAR": "per-run"})
    assert stdout(shadow) == "per-run\n"
    assert stdout(polyglot.run_code(lang.getenv_sandbox, language=language)) == "from-sandbox\n"


@pytest.mark.parametrize("language", [name for name in ALL if name != "python"])
def test_timeout_interrupts_and_the_context_survives(polyglot: Sandbox, language: str) -> None:
    from nullspace import ExecutionTimeoutError

    lang = LANGS[language]
    polyglot.run_code(lang.set_state, language=language, timeout=120)
    start = time.monotonic()
    with pytest.raises(ExecutionTimeoutError):
        polyglot.run_code(lang.sleep, language=language, timeout=2)
    assert time.monotonic() - start < 20
    assert stdout(polyglot.run_code(lang.read_state, language=language, timeout=60)) == "42\n"


# -- rich results -------------------------------------------------------------------------------


def test_r_plot_is_a_png(polyglot: Sandbox) -> None:
    execution = polyglot.run_code("plot(1:10, main = 'squares')", language="r", timeout=120)
    assert execution.error is None, execution.error
    pngs = [r for r in execution.results if r.png]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0].png).startswith(PNG_MAGIC)


def test_r_data_frame_is_html(polyglot: Sandbox) -> None:
    execution = polyglot.run_code("data.frame(a = 1:3, b = c('x', 'y', 'z'))", language="r")
    assert execution.results[0].is_main_result
    assert "<table" in (execution.results[0].html or "")


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_deno_display_gives_html(polyglot: Sandbox, language: str) -> None:
    execution = polyglot.run_code(
        'await Deno.jupyter.display({"text/html": "<b>bold</b>", "text/plain": "bold"}, {raw: true})\n'
        "Deno.jupyter.html`<i>main</i>`",
        language=language,
        timeout=120,
    )
    assert execution.error is None, execution.error
    shown = [r for r in execution.results if not r.is_main_result]
    main = [r for r in execution.results if r.is_main_result]
    assert shown and shown[0].html == "<b>bold</b>", execution
    assert main and main[0].html == "<i>main</i>"


def test_java_display_gives_html(polyglot: Sandbox) -> None:
    execution = polyglot.run_code('display("<b>bold</b>", "text/html");', language="java", timeout=120)
    assert execution.error is None, execution.error
    assert any(r.html == "<b>bold</b>" for r in execution.results), execution.results


# -- TypeScript is real TypeScript ----------------------------------------------------------------


def test_typescript_features(polyglot: Sandbox) -> None:
    code = """
interface Shape { area(): number }
enum Kind { Square = "square" }
class Square implements Shape {
  constructor(private readonly side: number) {}
  area(): number { return this.side ** 2 }
}
function total<T extends Shape>(shapes: T[]): number {
  return shapes.reduce((sum, s) => sum + s.area(), 0)
}
const shapes: Square[] = [new Square(3), new Square(4)]
const value = await Promise.resolve(total(shapes))
Kind.Square + ": " + value
"""
    execution = polyglot.run_code(code, language="ts", timeout=120)
    assert execution.error is None, execution.error
    assert execution.text == "square: 25"


def test_typescript_esm_imports(polyglot: Sandbox) -> None:
    polyglot.run_code(
        "open('/tmp/geometry.ts', 'w').write('export const double = (n: number): number => n * 2\\n')"
    )
    execution = polyglot.run_code(
        'import { double } from "/tmp/geometry.ts"\n'
        'import { basename } from "node:path"\n'
        'import * as fs from "node:fs"\n'
        '[double(21), basename("/a/b.txt"), fs.existsSync("/tmp/geometry.ts")].join(" ")',
        language="typescript",
        timeout=120,
    )
    assert execution.error is None, execution.error
    assert execution.text == "42 b.txt true"


def test_javascript_and_typescript_have_separate_default_contexts(polyglot: Sandbox) -> None:
    polyglot.run_code("var onlyInJs = 1", language="js", timeout=120)
    assert polyglot.run_code("typeof onlyInJs", language="ts", timeout=120).text == "undefined"
    languages = [ctx.language for ctx in polyglot.list_contexts()]
    assert "javascript" in languages and "typescript" in languages


# -- language names -------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["JS", "Javascript", " js "])
def test_language_names_are_case_insensitive(polyglot: Sandbox, alias: str) -> None:
    assert polyglot.run_code("6 * 7", language=alias, timeout=120).text == "42"


def test_unknown_language_lists_the_supported_ones(polyglot: Sandbox) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        polyglot.run_code("1", language="cobol")
    message = str(info.value)
    for name in ALL:
        assert name in message, message
    with pytest.raises(InvalidArgumentError):
        polyglot.create_context(language="cobol")


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_deno_output_after_idle_is_not_lost(polyglot: Sandbox, language: str) -> None:
    """Deno publishes some output just after its idle status; every run must still carry all of it."""
    for i in range(40):
        execution = polyglot.run_code(
            f'console.log("out {i}"); Deno.jupyter.display({{"text/plain": "shown {i}"}}, {{raw: true}}); {i}',
            language=language,
            timeout=60,
        )
        assert execution.logs.stdout == [f"out {i}\n"], (i, execution)
        assert [r.text for r in execution.results] == [f"shown {i}", str(i)], (i, execution)


# -- prestart ---------------------------------------------------------------------------------------


def _languages_after_idle(sb: Sandbox, wanted: set[str], wait: float) -> set[str]:
    deadline = time.monotonic() + wait
    while True:
        found = {ctx.language for ctx in sb.list_contexts()}
        if wanted <= found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_idle_sandbox_prestarts_bash_only(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=120) as sb:
        assert sb.run_code("1 + 1").text == "2"
        _languages_after_idle(sb, {"python", "bash"}, wait=45)
        time.sleep(2)  # a second idle period: nothing else may follow
        assert {ctx.language for ctx in sb.list_contexts()} == {"python", "bash"}  # the rest: on first use
        # the prestarted context is the language's default context, state and all
        sb.run_code("x=5", language="bash")
        assert sb.run_code("echo $x", language="bash").logs.stdout == ["5\n"]
        assert len([c for c in sb.list_contexts() if c.language == "bash"]) == 1


def test_a_sandbox_can_opt_in_to_more_prestarts(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=120, envs={"NULLSPACE_PRESTART": "r,javascript"}) as sb:
        assert sb.run_code("1 + 1").text == "2"
        found = _languages_after_idle(sb, {"python", "javascript", "r"}, wait=45)
        assert found == {"python", "javascript", "r"}, found


def test_prestart_can_be_turned_off(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=120, envs={"NULLSPACE_PRESTART": "none"}) as sb:
        assert sb.run_code("1 + 1").text == "2"
        time.sleep(3)
        assert [ctx.language for ctx in sb.list_contexts()] == ["python"]
