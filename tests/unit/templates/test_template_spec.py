"""Spec parsing, validation messages (file + line) and digest stability."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import (
    BUILDER_VERSION,
    TemplateSpec,
    TemplateSpecError,
    builtin_spec,
    load_spec,
    parse_spec,
)


def write(tmp_path: Path, text: str, name: str = "demo.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_builtin_code_interpreter() -> None:
    spec = builtin_spec("code-interpreter")
    assert spec.name == "code-interpreter"
    assert spec.base == "debian:bookworm" and spec.base_kind == "debian"
    assert spec.base_ref == "bookworm"
    assert {"python3", "python3-venv", "ca-certificates", "fonts-dejavu-core"} <= set(spec.apt)
    names = {p.split(">")[0].split("=")[0] for p in spec.pip}
    assert {"ipykernel", "jupyter_client", "numpy", "pandas", "matplotlib", "pillow"} <= names
    assert {"uvicorn", "starlette"} <= names
    assert dict(spec.kernels) == {
        "python": "python3",
        "r": "ir",
        "javascript": "deno",
        "typescript": "deno",
        "java": "java",
        "bash": "nullspace-bash",
    }
    assert spec.user == "user" and spec.workdir == "/home/user" and spec.home == "/home/user"


def test_preload_round_trips_and_only_a_set_one_changes_the_digest() -> None:
    bare = parse_spec({"name": "p"})
    assert bare.preload is None and "preload" not in bare.to_dict()
    spec = parse_spec({"name": "p", "preload": ["numpy", "matplotlib.pyplot"]})
    assert spec.preload == ("numpy", "matplotlib.pyplot")
    assert parse_spec(spec.to_dict()) == spec
    assert spec.digest != bare.digest
    assert parse_spec({"name": "p", "preload": []}).preload == ()  # explicitly none


def test_builtin_code_interpreter_preloads_the_data_stack() -> None:
    assert builtin_spec("code-interpreter").preload == ("numpy", "pandas", "matplotlib.pyplot")


def test_minimal_spec_defaults_and_name_from_stem(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "", name="tiny.toml"))
    assert spec == TemplateSpec(name="tiny")
    assert spec.apt == () and spec.pip == () and dict(spec.env) == {}
    assert spec.user == "user" and spec.workdir == "/home/user" and spec.start is None


def test_full_spec(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """
            name = "data"
            apt = ["python3", "libgomp1:amd64", "curl=7.88.1-10+deb12u5"]
            pip = ["numpy>=1.26,<3", "uvicorn[standard] ~= 0.30", "zope.interface"]
            user = "root"
            start = "sleep infinity"

            [env]
            FOO = "bar baz"

            [kernels]
            py = "python3"
            js = "deno"
            """,
        )
    )
    assert spec.workdir == "/root" and spec.home == "/root"
    assert dict(spec.kernels) == {"python": "python3", "javascript": "deno"}  # aliases resolved
    assert spec.env["FOO"] == "bar baz"
    assert spec.start == "sleep infinity"
    with pytest.raises(TypeError):
        spec.env["X"] = "y"  # type: ignore[index]


def test_digest_is_stable_and_content_addressed(tmp_path: Path) -> None:
    text = 'pip = ["numpy", "pandas"]\n[env]\nA = "1"\nB = "2"\n'
    a = load_spec(write(tmp_path, text, "t.toml"))
    b = load_spec(write(tmp_path / "..", text.replace('A = "1"\nB = "2"', 'B = "2"\nA = "1"'), "t.toml"))
    assert a.digest == b.digest  # table order and file location do not matter
    assert len(a.digest) == 64 and int(a.digest, 16) >= 0
    assert parse_spec(a.to_dict()).digest == a.digest  # round trip
    changed = load_spec(write(tmp_path, text.replace('"pandas"', '"pandas", "scipy"'), "t.toml"))
    assert changed.digest != a.digest
    renamed = parse_spec({**a.to_dict(), "name": "other"})
    assert renamed.digest != a.digest
    assert BUILDER_VERSION  # part of the digest; a bump rebuilds everything


def test_builtin_digest_is_reproducible() -> None:
    assert builtin_spec("code-interpreter").digest == builtin_spec("code-interpreter").digest


BAD_SPECS = [
    # (source, expected text in the message, expected line)
    ('name = "Bad_Name"\n', "invalid name", 1),
    ('name = "-lead"\n', "invalid name", 1),
    ('name = "ok"\npip = "numpy"\n', "must be a list", 2),
    ('name = "ok"\npip = [\n  "numpy",\n  "-e git+https://x/y",\n]\n', "looks like an option", 4),
    ('pip = ["--index-url=http://evil/simple"]\n', "looks like an option", 1),
    ('pip = ["numpy --index-url=http://evil"]\n', "is not a requirement", 1),
    ('pip = ["numpy @ https://evil/x.whl"]\n', "is not a requirement", 1),
    ('pip = ["./local/path"]\n', "is not a requirement", 1),
    ("pip = [\"numpy; os_name=='posix'\"]\n", "is not a requirement", 1),
    ("pip = [1]\n", "entries must be strings", 1),
    ('pip = ["numpy", "numpy"]\n', "twice", 1),
    ('\napt = ["-oAPT::Get::AllowUnauthenticated=1"]\n', "looks like an option", 2),
    ('apt = ["curl,wget"]\n', "not a Debian package", 1),
    ('apt = ["curl wget"]\n', "not a Debian package", 1),
    ('base = "ubuntu:jammy"\n', "invalid base", 1),
    ("base = 12\n", "must be a string", 1),
    ('user = "Root!"\n', "invalid user", 1),
    ('workdir = "relative/dir"\n', "invalid workdir", 1),
    ('workdir = "/home/../etc"\n', "invalid workdir", 1),
    ("start = 5\n", "'start' must be", 1),
    ("piip = []\n", "unknown key 'piip'", 1),
    ('name = "x"\n[env]\nGOOD = "1"\nBAD = 2\n', "must be a string", 4),
    ('name = "x"\n[env]\n"1BAD" = "x"\n', "not a variable name", 3),
    ('env = "A=1"\n', "must be a table", 1),
    ('name = "x"\n\n[kernels]\npython = "../../etc"\n', "not a valid kernelspec", 4),
    ('[kernels]\n"Py thon" = "python3"\n', "not a language name", 2),
    ('[kernels]\npython = "python3"\npy = "other"\n', "listed twice", 3),
    ('name = "x"\npip = [\n  "a",,\n]\n', "invalid TOML", 3),
    ('name = "x"\nname = "y"\n', "invalid TOML", 2),
    ('name = "x"\npreload = "numpy"\n', "'preload' must be a list", 2),
    ('name = "x"\npreload = ["numpy; import os"]\n', "'preload' must be a list", 2),
    ('name = "x"\npreload = ["matplotlib..pyplot"]\n', "'preload' must be a list", 2),
]


@pytest.mark.parametrize(("source", "problem", "line"), BAD_SPECS)
def test_bad_specs_name_file_line_and_problem(tmp_path: Path, source: str, problem: str, line: int) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(source)
    with pytest.raises(TemplateSpecError) as info:
        load_spec(path)
    err = info.value
    assert isinstance(err, TemplateBuildError)
    assert problem in str(err)
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert err.line == line and err.path == path


def test_truncated_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "pip = [\n")
    with pytest.raises(TemplateSpecError, match="invalid TOML") as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "data",
    [
        {"name": "abc\n"},
        {"name": "x", "pip": ["numpy\n"]},
        {"name": "x", "apt": ["curl\n"]},
        {"name": "x", "user": "user\n"},
        {"name": "x", "workdir": "/home/user\n"},
        {"name": "x", "env": {"A\n": "1"}},
        {"name": "x", "kernels": {"python": "python3\n"}},
    ],
)
def test_trailing_newlines_are_rejected(data: dict) -> None:
    with pytest.raises(TemplateSpecError):
        parse_spec(data)


def test_unreadable_spec(tmp_path: Path) -> None:
    with pytest.raises(TemplateSpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.toml")


def test_parse_spec_without_source_has_no_line() -> None:
    with pytest.raises(TemplateSpecError) as info:
        parse_spec({"name": "x", "pip": ["-r /etc/passwd"]})
    assert info.value.line is None
    assert str(info.value).startswith("<template spec>: ")


def test_missing_name_without_file() -> None:
    with pytest.raises(TemplateSpecError, match="missing required key 'name'"):
        parse_spec({})
