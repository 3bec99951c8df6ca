"""Layered templates without root: spec keys, build plans and their cache keys, the layer store."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import (
    TemplateSpec,
    TemplateSpecError,
    _layers,
    _steps,
    _store,
    builder,
    ensure_template,
    load_spec,
    parse_spec,
)
from nullspace.templates.spec import package_problem


def write(directory: Path, text: str, name: str = "template.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_new_keys_parse_and_keep_old_digests(tmp_path: Path) -> None:
    directory = tmp_path / "my-analysis"
    (directory / "data").mkdir(parents=True)
    (directory / "data/a.csv").write_text("a\n")
    spec = load_spec(
        write(
            directory,
            """
            base = "template:code-interpreter"
            npm = ["lodash@^4.17.21", "@types/node"]
            run = ["echo one", "echo two"]

            [[files]]
            src = "data"
            dest = "/home/user/data"
            mode = "0755"
            """,
        )
    )
    assert spec.name == "my-analysis"  # template.toml is named after its directory
    assert spec.base_kind == "template" and spec.layered_steps
    assert spec.npm == ("lodash@^4.17.21", "@types/node") and spec.run == ("echo one", "echo two")
    assert spec.files[0].src == "data" and spec.files[0].mode == "0755"
    assert parse_spec(spec.to_dict()) == spec  # round trip (source is not compared)
    plain = TemplateSpec(name="x")
    assert not {"npm", "files", "run"} & set(plain.to_dict())  # old specs keep their digest


def test_package_problem() -> None:
    assert package_problem("humanize==4.9.0", "python") is None
    assert package_problem("scikit-learn[all]>=1.4,<2", "python") is None
    for bad in ("-r /etc/passwd", "x @ https://e/x.whl", "x; sys_platform", "./x", "x y", "x\n", 3):
        assert package_problem(bad, "python"), bad
    assert package_problem("@scope/pkg@^1.2.3", "javascript") is None
    for bad in ("git+https://e/x", "x@file:../y", "x@npm:evil", "-g", "x@1 || 2"):
        assert package_problem(bad, "javascript"), bad
    assert "no package installer" in str(package_problem("x", "r"))


@pytest.fixture
def parent(tmp_path: Path, fake: Any) -> Path:
    """A built single-directory template `base-t` in a data dir (via the fake builder)."""
    data_dir = tmp_path / "data"
    ensure_template(TemplateSpec(name="base-t", env={"PATH": "/bin", "A": "1"}), data_dir)
    return data_dir


def derived(directory: Path, run2: str = "echo two", data: str = "x") -> TemplateSpec:
    (directory / "f.txt").write_text(data)
    return load_spec(
        write(
            directory,
            f"""
            name = "child"
            base = "template:base-t"
            pip = ["humanize"]
            run = ["echo one", "{run2}"]

            [[files]]
            src = "f.txt"
            dest = "/opt/f.txt"

            [env]
            B = "2"
            """,
        )
    )


def test_plan_of_a_derived_template(parent: Path, tmp_path: Path) -> None:
    plan = builder.plan_build(derived(tmp_path), parent)
    assert plan.layered and plan.parent is not None and plan.parent.name == "base-t"
    assert [(s.name, s.kind) for s in plan.steps] == [
        ("base", "parent"), ("pip", "pip"), ("files", "files"), ("run-1", "run"), ("run-2", "run"),
        ("config", "config"),
    ]  # fmt: skip
    assert dict(plan.effective.env) == {"PATH": "/bin", "A": "1", "B": "2"}  # merged over the parent's
    assert len(plan.digest) == 64 and plan.digest == builder.plan_build(derived(tmp_path), parent).digest
    assert [name for name, _ in plan.step_list()][-1] == "commit"


def keys(plan: builder.BuildPlan) -> dict[str, str | None]:
    return {s.name: s.key for s in plan.steps}


def test_changing_one_step_changes_its_key_and_those_after_it(parent: Path, tmp_path: Path) -> None:
    before = keys(builder.plan_build(derived(tmp_path), parent))
    after = keys(builder.plan_build(derived(tmp_path, run2="echo TWO"), parent))
    assert [n for n in before if before[n] == after[n]] == ["base", "pip", "files", "run-1"]
    content = keys(builder.plan_build(derived(tmp_path, data="changed"), parent))
    assert [n for n in before if before[n] == content[n]] == ["base", "pip"]  # file content counts
    forced = keys(builder.plan_build(derived(tmp_path), parent, force=True))
    assert all(forced[n] != before[n] for n in before if n != "base")


def test_a_rebuilt_parent_changes_every_key(parent: Path, tmp_path: Path, fake: Any) -> None:
    before = builder.plan_build(derived(tmp_path), parent)
    ensure_template(TemplateSpec(name="base-t", env={"PATH": "/bin", "A": "other"}), parent)
    after = builder.plan_build(derived(tmp_path), parent)
    assert after.digest != before.digest and keys(after)["pip"] != keys(before)["pip"]
    assert dict(after.effective.env)["A"] == "other"


def test_a_debian_spec_with_layered_steps_gets_a_debian_base_layer(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'name = "d"\npip = ["numpy"]\nrun = ["echo hi"]\n', "d.toml"))
    plan = builder.plan_build(spec, tmp_path / "data")
    assert [(s.name, s.kind) for s in plan.steps] == [
        ("base", "debian"),
        ("run-1", "run"),
        ("config", "config"),
    ]
    base_spec = plan.steps[0].content
    assert base_spec.pip == ("numpy",) and base_spec.run == ()
    plain = parse_spec({"name": "d", "pip": ["numpy"]})
    assert not builder.plan_build(plain, tmp_path).layered
    assert builder.plan_build(plain, tmp_path).digest == plain.digest


def test_a_stored_spec_with_files_cannot_be_rebuilt(parent: Path) -> None:
    spec = parse_spec({"name": "c", "base": "template:base-t", "files": [{"src": "a", "dest": "/a"}]})
    with pytest.raises(TemplateBuildError, match="from its spec file"):
        builder.plan_build(spec, parent)


def test_layer_keys_and_lowerdir(tmp_path: Path) -> None:
    key = _layers.layer_key("parent", "run", "echo hi")
    assert len(key) == _layers.KEY_LEN and key == _layers.layer_key("parent", "run", "echo hi")
    assert (
        key != _layers.layer_key("parent", "run", "echo ho") != _layers.layer_key("other", "run", "echo hi")
    )
    assert _layers.lowerdir([Path("/a/top"), Path("/a/base")]) == "/a/top:/a/base"
    with pytest.raises(TemplateBuildError, match="overlayfs"):
        _layers.lowerdir([Path("/a:b")])
    with pytest.raises(ValueError):
        _layers.layer_dir(tmp_path, "../../etc")


def _build_record(data_dir: Path, name: str, layers: list[str]) -> None:
    record = _store.template_dir(data_dir, name) / ("0" * 64)
    record.mkdir(parents=True)
    (record / "meta.json").write_text(json.dumps({"layers": layers}))


def test_users_and_garbage_collection(tmp_path: Path) -> None:
    for key in ("a" * 32, "b" * 32, "c" * 32):
        (_layers.layer_dir(tmp_path, key) / "fs").mkdir(parents=True)
        (_layers.layer_dir(tmp_path, key) / "meta.json").write_text("{}")
    _build_record(tmp_path, "base", [".layers/" + "a" * 32 + "/fs"])
    _build_record(tmp_path, "child", ["plain/" + "1" * 64 + "/rootfs", ".layers/" + "b" * 32 + "/fs"])
    assert _layers.users_of(tmp_path, "plain") == ["child"]
    assert _layers.users_of(tmp_path, "base") == []
    assert _layers.collect_garbage(tmp_path) == ["c" * 32]
    assert _layers.find(tmp_path, "a" * 32) and _layers.find(tmp_path, "b" * 32)
    with _layers.building(tmp_path):  # a build in progress: no collection at all
        _store.remove_tree(_store.template_dir(tmp_path, "base"))
        assert _layers.collect_garbage(tmp_path) == []
    assert _layers.collect_garbage(tmp_path) == ["a" * 32]


def test_constraints_pin_what_is_installed_but_not_requested(tmp_path: Path) -> None:
    path = _steps.write_constraints({"numpy": "2.0.1", "pandas": "2.2.0"}, ["Pandas>=2"], tmp_path)
    assert path.read_text() == "numpy==2.0.1\n"


def test_bad_file_entries(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"outside-{os.getpid()}.txt"
    outside.write_text("secret")
    try:
        (tmp_path / "escape").symlink_to(outside)
        with pytest.raises(TemplateSpecError, match="outside"):
            load_spec(write(tmp_path, '[[files]]\nsrc = "escape"\ndest = "/x"\n', "a.toml"))
    finally:
        outside.unlink()
    cases = [
        ('[[files]]\nsrc = "/etc/passwd"\ndest = "/x"\n', "relative path"),
        ('[[files]]\nsrc = "a"\n', "need 'src' and 'dest'"),
        ('[[files]]\nsrc = "a"\ndest = "x"\n', "normalized absolute path"),
        ('[[files]]\nsrc = "a"\ndest = "/proc/x"\n', "mounts over /proc"),
        ('[[files]]\nsrc = "a"\ndest = "/x"\nowner = "root"\n', "unknown key 'owner'"),
        ('[[files]]\nsrc = "a"\ndest = "/x"\nmode = "rwx"\n', "octal"),
        ('files = "a"\n', "array of tables"),
        ('run = [""]\n', "non-empty"),
    ]
    (tmp_path / "a").write_text("a")
    for source, problem in cases:
        with pytest.raises(TemplateSpecError, match=problem):
            load_spec(write(tmp_path, source, "b.toml"))


def test_delete_removes_the_lock_file_and_a_stale_lock_is_not_trusted(tmp_path: Path, fake: Any) -> None:
    ensure_template(TemplateSpec(name="gone"), tmp_path)
    lock = tmp_path / "templates/.lock-gone"
    assert lock.exists()
    from nullspace.templates import delete_template

    assert delete_template("gone", tmp_path) and not lock.exists()
    with open(lock, "a") as stale:  # a waiter's handle on a lock file that was removed meanwhile
        lock.unlink()
        lock.write_text("")
        assert not _store._same_file(stale.fileno(), lock)
    with _store.name_lock(tmp_path, "gone"):
        assert lock.exists()


def test_a_derived_template_inherits_the_parents_preload_unless_it_sets_its_own() -> None:
    from nullspace.templates.spec import parse_spec

    parent_spec = parse_spec({"name": "base-t", "preload": ["numpy"]})
    child = parse_spec({"name": "child", "base": "template:base-t"})
    assert builder._merge_parent(child, parent_spec).preload == ("numpy",)
    opted_out = parse_spec({"name": "child", "base": "template:base-t", "preload": []})
    assert builder._merge_parent(opted_out, parent_spec).preload == ()
