"""Custom templates end to end: build the example with the CLI, use it, rebuild one step, bad specs.

Derived templates are layers on top of code-interpreter's current build, so after the first
run (which downloads scikit-learn) these builds take seconds. Templates made here are deleted
at the end, and with them the layers nothing else uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nullspace import ConflictError, Sandbox, TemplateBuildError, TemplateNotFoundError
from nullspace.templates import (
    BuildProgress,
    _layers,
    delete_template,
    ensure_template,
    find_template,
    load_spec,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "templates" / "analysis"


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nullspace", "template", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def analysis(server) -> str:  # noqa: ANN001
    started = time.monotonic()
    result = cli("build", str(EXAMPLE), data_dir=server.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"example template: {time.monotonic() - started:.1f} s\n{result.stdout}")
    assert "analysis" in result.stdout
    return "analysis"


def test_example_template_imports_without_install(server, analysis: str) -> None:  # noqa: ANN001
    with Sandbox.create(template=analysis, timeout=120) as sandbox:
        execution = sandbox.run_code("%run /opt/analysis/train.py")
        assert execution.error is None, execution.error
        out = "".join(execution.logs.stdout)
        assert "rows=240" in out
        assert float(out.split("accuracy=")[1]) > 0.9
        # everything code-interpreter has is still there, and the env is merged over it
        check = sandbox.run_code(
            "import os, sklearn, pandas, matplotlib\nos.environ['ANALYSIS_DATA'], os.environ['PATH']"
        )
        assert check.error is None, check.error
        assert "/home/user/data" in check.text and "/opt/venv/bin" in check.text
    listed = cli("list", data_dir=server.data_dir)
    assert "analysis" in listed.stdout and "template:code-interpreter" in listed.stdout


def test_template_endpoints(server, analysis: str) -> None:  # noqa: ANN001
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as client:
        listing = client.get("/v1/templates").json()
        names = {t["name"]: t for t in listing}
        assert {"code-interpreter", "analysis"} <= set(names)
        assert names["analysis"]["base"] == "template:code-interpreter"
        assert names["analysis"]["layers"] > names["code-interpreter"]["layers"]
        assert names["analysis"]["packages"]["pip"] == ["scikit-learn>=1.4"]
        detail = client.get("/v1/templates/analysis").json()
        assert [s["name"] for s in detail["steps"]] == ["base", "pip", "files", "config"]
        assert detail["env"]["ANALYSIS_DATA"] == "/home/user/data"
        missing = client.get("/v1/templates/no-such-template")
        assert missing.status_code == 404 and missing.json()["code"] == "template_not_found"
        builtin = client.delete("/v1/templates/code-interpreter")
        assert builtin.status_code == 409 and builtin.json()["code"] == "conflict"
        with Sandbox.create(template=analysis, timeout=60):
            busy = client.delete("/v1/templates/analysis")
            assert busy.status_code == 409 and "run on template" in busy.json()["message"]


@pytest.fixture
def scratch_template(server, tmp_path: Path) -> Iterator[tuple[Path, str]]:  # noqa: ANN001
    """A small derived template (files + two commands) under a name of its own; deleted after."""
    name = f"t5-rebuild-{os.getpid()}"
    (tmp_path / "notes.txt").write_text("hello from the spec dir\n")
    spec = tmp_path / "template.toml"
    spec.write_text(
        textwrap.dedent(
            f"""
            name = "{name}"
            base = "template:code-interpreter"
            run = [
              "mkdir -p /opt/t5 && echo one > /opt/t5/first",
              "echo two > /opt/t5/second",
            ]

            [[files]]
            src = "notes.txt"
            dest = "/home/user/notes.txt"
            """
        ).lstrip()
    )
    yield spec, name
    delete_template(name, server.data_dir)


def _build(spec_file: Path, data_dir: Path) -> tuple[list[str], list[str], float]:
    """Build; returns (steps that ran, steps reused from the cache, seconds)."""
    events: list[BuildProgress] = []
    started = time.monotonic()
    ensure_template(load_spec(spec_file), data_dir, events.append)
    done = [e for e in events if e.kind == "done" and e.step != "commit"]
    return (
        [e.step for e in done if not e.cached],
        [e.step for e in done if e.cached],
        time.monotonic() - started,
    )


def test_changing_one_step_rebuilds_only_that_step(server, scratch_template) -> None:  # noqa: ANN001
    spec_file, name = scratch_template
    ran, cached, first = _build(spec_file, server.data_dir)
    assert {"files", "run-1", "run-2", "config"} <= set(ran) | set(cached)
    spec_file.write_text(spec_file.read_text().replace("echo two", "echo TWO"))
    ran, cached, seconds = _build(spec_file, server.data_dir)
    print(f"first build {first:.2f} s, one-step rebuild {seconds:.2f} s")
    assert ran == ["run-2", "config"]  # the changed step, and the metadata layer above it
    assert cached == ["base", "files", "run-1"]
    assert seconds < 30
    again, cached, _ = _build(spec_file, server.data_dir)
    assert again == [] and cached == []  # the whole build is a cache hit: no steps at all
    with Sandbox.create(template=name, timeout=60) as sandbox:
        run = sandbox.run_code(
            "for f in ('/opt/t5/first', '/opt/t5/second', '/home/user/notes.txt'): print(open(f).read(), end='')"
        )
        assert "".join(run.logs.stdout) == "one\nTWO\nhello from the spec dir\n"


def test_a_failing_step_shows_its_output_and_keeps_the_previous_build(server, scratch_template) -> None:  # noqa: ANN001
    spec_file, name = scratch_template
    good = ensure_template(load_spec(spec_file), server.data_dir)
    spec_file.write_text(
        spec_file.read_text().replace("echo two > /opt/t5/second", "echo about to fail; exit 3")
    )
    with pytest.raises(TemplateBuildError) as info:
        ensure_template(load_spec(spec_file), server.data_dir)
    assert "step 'run-2'" in str(info.value) and "status 3" in str(info.value)
    assert "about to fail" in info.value.log
    assert find_template(name, server.data_dir) == good  # still current, still usable
    with Sandbox.create(template=name, timeout=60) as sandbox:
        assert (
            "".join(sandbox.run_code("print(open('/opt/t5/second').read(), end='')").logs.stdout) == "two\n"
        )
    # the CLI prints the failing step's output too
    result = cli("build", str(spec_file), data_dir=server.data_dir)
    assert result.returncode == 1 and "about to fail" in result.stdout and "run-2" in result.stdout


BAD_SPECS = [
    (
        'base = "template:code-interpreter"\n[[files]]\nsrc = "../secret"\ndest = "/x"\n',
        3,
        "relative path inside",
    ),
    (
        'base = "template:code-interpreter"\n\n[[files]]\nsrc = "missing.csv"\ndest = "/home/user/m.csv"\n',
        4,
        "does not exist",
    ),
    ('[[files]]\nsrc = "link"\ndest = "/home/user/l"\n', 2, "outside"),
    ('[[files]]\nsrc = "ok.txt"\ndest = "/tmp/x"\n', 3, "mounts over /tmp"),
    ('npm = ["left-pad@git+https://evil/x"]\n', 1, "not an npm package"),
    ('run = ["echo ok", 7]\n', 1, "must be strings"),
    ('pip = ["numpy", "--extra-index-url=http://evil"]\n', 1, "looks like an option"),
    ('base = "template:Not A Name"\n', 1, "invalid base"),
    ("pip = [\n  'numpy',\n  'pandas'\n  'scipy',\n]\n", 4, "invalid TOML"),
]


@pytest.mark.parametrize(("source", "line", "problem"), BAD_SPECS)
def test_bad_specs_name_the_file_line_and_problem(
    tmp_path: Path, source: str, line: int, problem: str
) -> None:
    (tmp_path / "ok.txt").write_text("x")
    (tmp_path / "link").symlink_to("/etc/passwd")
    spec = tmp_path / "bad.toml"
    spec.write_text(source)
    result = cli("build", str(spec), data_dir=tmp_path / "data")
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert result.returncode == 1, output
    assert f"{spec}:{line}:" in output and problem in output, output


def test_base_template_must_exist(tmp_path: Path) -> None:
    spec = tmp_path / "orphan.toml"
    spec.write_text('base = "template:never-built-anywhere"\n')
    result = cli("build", str(spec), data_dir=tmp_path / "data")
    assert result.returncode == 1 and "is not built" in result.stdout


def test_deleting_a_base(server, analysis: str, scratch_template, tmp_path: Path) -> None:  # noqa: ANN001
    # A template whose root filesystem is one directory (code-interpreter) cannot go while
    # another template stacks on it (refused before anything is touched).
    assert "analysis" in _layers.users_of(server.data_dir, "code-interpreter")
    with pytest.raises(ConflictError, match="is the base of"):
        delete_template("code-interpreter", server.data_dir)
    assert find_template("code-interpreter", server.data_dir) is not None
    # A layered base can go: its children keep the layers they stack on.
    spec_file, name = scratch_template
    ensure_template(load_spec(spec_file), server.data_dir)
    child = tmp_path / "child.toml"
    child.write_text(
        f'name = "{name}-child"\nbase = "template:{name}"\nrun = ["echo child > /opt/t5/child"]\n'
    )
    ensure_template(load_spec(child), server.data_dir)
    try:
        assert delete_template(name, server.data_dir)
        with Sandbox.create(template=f"{name}-child", timeout=60) as sandbox:
            run = sandbox.run_code(
                "print(open('/opt/t5/child').read() + open('/opt/t5/first').read(), end='')"
            )
            assert "".join(run.logs.stdout) == "child\none\n"
    finally:
        delete_template(f"{name}-child", server.data_dir)
    with pytest.raises(TemplateNotFoundError):
        Sandbox.create(template=f"{name}-child", timeout=10)


def test_apt_and_npm_steps(server, tmp_path: Path) -> None:  # noqa: ANN001
    name = f"t5-apt-npm-{os.getpid()}"
    spec = tmp_path / "template.toml"
    spec.write_text(
        f'name = "{name}"\nbase = "template:code-interpreter"\napt = ["jq"]\nnpm = ["is-odd@3.0.1"]\n'
        'run = ["jq --version"]\n'
    )
    image = ensure_template(load_spec(spec), server.data_dir)
    try:
        assert len(image.layers) == len(find_template("code-interpreter", server.data_dir).layers) + 4
        with Sandbox.create(template=name, timeout=60) as sandbox:
            jq = sandbox.run_code(
                "import subprocess\nprint(subprocess.run(['jq', '--version'], capture_output=True, text=True).stdout)"
            )
            assert "jq-1." in "".join(jq.logs.stdout)
            kernels = sandbox.run_code(
                "import json\njson.load(open('/opt/nullspace/template.json'))['kernels']"
            ).text
            if "javascript" in kernels:
                js = sandbox.run_code("import isOdd from 'is-odd';\nisOdd(3)", language="javascript")
                assert js.error is None, js.error
                assert js.text == "true"
            # packages installed later keep the template's npm packages
            result = sandbox.install_packages(["is-even@1.0.0"], language="javascript")
            assert result.version("is-even") == "1.0.0"
            both = sandbox.run_code(
                "import os\nsorted(os.listdir(os.path.expanduser('~/node_modules')))"
            ).text
            assert "is-even" in both and "is-odd" in both
    finally:
        delete_template(name, server.data_dir)
