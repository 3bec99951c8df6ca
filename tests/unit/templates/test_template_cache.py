"""The cache API over a fake builder: hits, misses, failures, listing, deletion; step logging."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nullspace._exceptions import TemplateBuildError, TemplateNotFoundError
from nullspace.templates import (
    BuildProgress,
    TemplateSpec,
    _process,
    _store,
    builder,
    builtin_spec,
    default_data_dir,
    delete_template,
    ensure_template,
    find_template,
    list_templates,
    parse_spec,
)


def spec_named(name: str, *pip: str) -> TemplateSpec:
    return parse_spec({"name": name, "pip": list(pip)})


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NULLSPACE_HOME", raising=False)
    assert default_data_dir() == Path("/var/lib/nullspace")
    monkeypatch.setenv("NULLSPACE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path


def test_ensure_builds_once_then_hits_the_cache(tmp_path: Path, fake: Any) -> None:
    events: list[BuildProgress] = []
    image = ensure_template("code-interpreter", tmp_path, events.append)
    assert fake.calls == [builtin_spec("code-interpreter").digest]
    assert image.digest == builtin_spec("code-interpreter").digest
    assert image.rootfs == tmp_path / "templates/code-interpreter" / image.digest / "rootfs"
    assert image.spec == builtin_spec("code-interpreter") and image.size_bytes == 4096
    assert [(e.step, e.kind) for e in events if e.kind != "log"] == [
        ("bootstrap", "start"), ("bootstrap", "done"), ("commit", "start"), ("commit", "done"),
    ]  # fmt: skip
    assert events[0].index == 1 and events[0].total == len(builder.STEPS)
    assert BuildProgress("bootstrap", 1, 8, "I: fake bootstrap") in events
    again = ensure_template("code-interpreter", tmp_path)
    assert again == image and fake.calls == [image.digest]  # no second build
    assert find_template("code-interpreter", tmp_path) == image
    assert (image.rootfs.parent / "build.log").read_text().count("I: fake bootstrap") == 1
    assert not list((tmp_path / "templates").glob(".build-*"))
    assert (image.rootfs.parent.stat().st_mode & 0o777) == 0o755


def test_force_rebuilds(tmp_path: Path, fake: Any) -> None:
    ensure_template("code-interpreter", tmp_path)
    ensure_template("code-interpreter", tmp_path, force=True)
    assert len(fake.calls) == 2
    assert find_template("code-interpreter", tmp_path) is not None


def test_failed_build_keeps_the_previous_one(tmp_path: Path, fake: Any) -> None:
    good = ensure_template(spec_named("demo", "numpy"), tmp_path)
    current = (tmp_path / "templates/demo/current").read_text()
    fake.fail_at = "bootstrap"
    with pytest.raises(TemplateBuildError, match="step 'bootstrap'") as info:
        ensure_template(spec_named("demo", "numpy", "pandas"), tmp_path)
    assert "I: fake bootstrap" in info.value.log
    assert (tmp_path / "templates/demo/current").read_text() == current
    assert find_template("demo", tmp_path) == good
    assert not list((tmp_path / "templates").glob(".build-*"))
    assert [p.name for p in (tmp_path / "templates/demo").iterdir() if p.is_dir()] == [good.digest]


def test_switching_back_to_a_built_digest_needs_no_build(tmp_path: Path, fake: Any) -> None:
    first = ensure_template(spec_named("demo", "numpy"), tmp_path)
    second = ensure_template(spec_named("demo", "pandas"), tmp_path)
    assert find_template("demo", tmp_path) == second
    assert ensure_template(spec_named("demo", "numpy"), tmp_path) == first
    assert len(fake.calls) == 2 and find_template("demo", tmp_path) == first


def test_names_that_are_neither_builtin_nor_built(tmp_path: Path, fake: Any) -> None:
    with pytest.raises(TemplateNotFoundError):
        ensure_template("nope", tmp_path)
    built = ensure_template(spec_named("custom"), tmp_path)
    assert ensure_template("custom", tmp_path) == built  # a custom template built earlier
    assert find_template("../etc", tmp_path) is None
    assert find_template("missing", tmp_path) is None


def test_list_and_delete(tmp_path: Path, fake: Any) -> None:
    assert list_templates(tmp_path / "nowhere") == []
    ensure_template(spec_named("b-two"), tmp_path)
    ensure_template(spec_named("a-one"), tmp_path)
    assert [i.name for i in list_templates(tmp_path)] == ["a-one", "b-two"]
    assert delete_template("a-one", tmp_path) is True
    assert delete_template("a-one", tmp_path) is False
    assert delete_template("../x", tmp_path) is False
    assert [i.name for i in list_templates(tmp_path)] == ["b-two"]
    assert not list((tmp_path / "templates").glob(".trash-*"))


def test_damaged_builds_are_ignored(tmp_path: Path, fake: Any) -> None:
    image = ensure_template(spec_named("demo"), tmp_path)
    (image.rootfs.parent / "meta.json").write_text("{not json")
    assert find_template("demo", tmp_path) is None
    (tmp_path / "templates/demo/current").write_text('{"digest": "../../etc"}')
    assert find_template("demo", tmp_path) is None


def test_remove_tree_refuses_mounted_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "build"
    (victim / "rootfs/dev").mkdir(parents=True)
    monkeypatch.setattr(_store, "mounts_under", lambda path: [str(victim / "rootfs/dev")])
    with pytest.raises(TemplateBuildError, match="still mounted"):
        _store.remove_tree(victim)
    assert victim.is_dir()


def test_template_base_must_be_built_first(tmp_path: Path) -> None:
    spec = parse_spec({"name": "layered", "base": "template:my-base"})
    assert spec.base_kind == "template" and spec.base_ref == "my-base"
    with pytest.raises(TemplateBuildError, match="base template 'my-base' is not built"):
        builder.plan_build(spec, tmp_path)
    itself = parse_spec({"name": "loop", "base": "template:loop"})
    with pytest.raises(TemplateBuildError, match="cannot be based on itself"):
        builder.plan_build(itself, tmp_path)


def test_run_streams_lines_and_names_the_failing_step(tmp_path: Path) -> None:
    events: list[BuildProgress] = []
    log = _process.BuildLog(builder.STEPS, events.append)
    with pytest.raises(TemplateBuildError) as info, log.step_scope("pip"):
        _process.run([sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"],
                     log, label="pip install")  # fmt: skip
    assert str(info.value) == "template build failed at step 'pip': pip install exited with status 3"
    assert info.value.log.splitlines()[-2:] == ["one", "two"]
    assert [e.message for e in events if e.kind == "log"][-2:] == ["one", "two"]
    assert all(e.step == "pip" and e.index == 5 for e in events)


def test_step_scope_wraps_os_errors(tmp_path: Path) -> None:
    log = _process.BuildLog(builder.STEPS, None)
    with (
        pytest.raises(TemplateBuildError, match="step 'user': .*No such file"),
        log.step_scope("user"),
    ):
        (tmp_path / "missing").read_text()
    with pytest.raises(TemplateBuildError, match="cannot run"), log.step_scope("venv"):
        _process.run([str(tmp_path / "no-such-binary")], log)


def test_run_keeps_only_the_tail(tmp_path: Path) -> None:
    log = _process.BuildLog(builder.STEPS, None)
    with pytest.raises(TemplateBuildError) as info, log.step_scope("bootstrap"):
        _process.run([sys.executable, "-c", "[print(i) for i in range(1000)]; raise SystemExit(1)"], log)
    lines = info.value.log.splitlines()
    assert len(lines) == _process.TAIL_LINES and lines[-1] == "999"


def test_bwrap_argv_isolates_the_chroot(tmp_path: Path) -> None:
    argv = _process.bwrap_argv(tmp_path, ["/bin/true"], ro_binds=[(tmp_path / "w.whl", "/tmp/w/w.whl")])
    assert argv[:4] == ["bwrap", "--bind", str(tmp_path), "/"]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert ["--ro-bind", "/proc/sys", "/proc/sys"] == argv[8:11]  # no host-wide sysctl writes
    assert ["--ro-bind", str(tmp_path / "w.whl"), "/tmp/w/w.whl"] == argv[15:18]
    assert "--cap-add" not in argv and "/etc/resolv.conf" not in argv
    assert argv[argv.index("PIP_CONFIG_FILE") + 1] == "/dev/null"
    assert argv[-2:] == ["--", "/bin/true"]
    networked = _process.bwrap_argv(tmp_path, ["/bin/true"], caps=["CAP_CHOWN"], network=True)
    assert "--unshare-net" not in networked
    assert ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"] == networked[15:18]
    assert networked[networked.index("--cap-add") + 1] == "CAP_CHOWN"


def test_debian_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NULLSPACE_DEBIAN_MIRROR", "http://mirror.example/debian/")
    assert builder.debian_sources("bookworm") == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]
    assert builder.debian_sources("sid") == ["deb http://mirror.example/debian sid main"]


def test_stale_builds_of_this_name_only_are_removed(tmp_path: Path, fake: Any) -> None:
    templates = tmp_path / "templates"
    (templates / ".build-code.crashed/rootfs").mkdir(parents=True)
    (templates / ".build-code-interpreter.running/rootfs").mkdir(parents=True)
    ensure_template(spec_named("code"), tmp_path)
    assert not (templates / ".build-code.crashed").exists()
    assert (templates / ".build-code-interpreter.running").is_dir()  # another name's build


def test_cancelling_a_step_kills_its_process_group(tmp_path: Path) -> None:
    log = _process.BuildLog(builder.STEPS, None)
    pids: list[int] = []

    def cancel(line: str) -> None:
        pids.append(int(line))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), log.step_scope("bootstrap"):
        _process.run(["sh", "-c", "sleep 30 & echo $!; wait"], log, on_line=cancel)
    status = Path(f"/proc/{pids[0]}/status")
    deadline = time.monotonic() + 5  # SIGKILL takes effect asynchronously

    def gone() -> bool:
        try:
            return "\nState:\tZ" in status.read_text()
        except FileNotFoundError:
            return True

    while not gone() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone()


def test_share_builds_pins_builtins_to_this_versions_build(tmp_path: Path) -> None:
    from nullspace.templates import _store, builtin_spec, share_builds

    source, target = tmp_path / "shared", tmp_path / "mine"
    ours = builtin_spec("code-interpreter").digest
    for name, builds in {"code-interpreter": [ours, "0" * 64], "custom": ["1" * 64]}.items():
        for digest in builds:
            (source / "templates" / name / digest).mkdir(parents=True)
        _store.write_current(source, name, builds[-1])  # another version's server moved it
    target.mkdir()
    share_builds(source, target)
    assert _store.read_current(target, "code-interpreter") == ours
    assert _store.read_current(source, "code-interpreter") == "0" * 64  # the shared one untouched
    assert (target / "templates" / "code-interpreter" / ours).resolve() == source / "templates" / "code-interpreter" / ours
    assert (target / "templates" / "custom").is_symlink()


def test_prune_keeps_current_bases_and_mounted_builds(tmp_path: Path) -> None:
    import json
    import os
    import subprocess

    from nullspace.templates import _store, prune_templates

    if os.geteuid() != 0:
        pytest.skip("mounts an overlay")
    data = tmp_path / "data"
    labels = ("old", "older", "mounted", "new", "cur", "stale")
    DIGESTS = {label: f"{i:x}" * 64 for i, label in enumerate(labels, start=1)}  # noqa: N806
    root = data / "templates"

    def build(name: str, label: str, layers: list[str] | None = None) -> Path:
        path = root / name / DIGESTS[label]
        (path / "rootfs").mkdir(parents=True)
        (path / "meta.json").write_text(json.dumps({"layers": layers} if layers else {}))
        return path

    build("base", "old")
    build("base", "older")
    mounted = build("base", "mounted")
    build("base", "new")
    _store.write_current(data, "base", DIGESTS["new"])
    build("child", "cur", layers=[f"base/{DIGESTS['old']}/rootfs", f"child/{DIGESTS['cur']}/rootfs"])
    build("child", "stale", layers=[f"base/{DIGESTS['older']}/rootfs", f"child/{DIGESTS['stale']}/rootfs"])
    _store.write_current(data, "child", DIGESTS["cur"])
    (root / "linked").mkdir()
    (root / "linked" / "elsewhere").symlink_to(tmp_path)  # share_builds: never deleted through
    upper, work, target = (tmp_path / n for n in ("upper", "work", "merged"))
    for d in (upper, work, target):
        d.mkdir()
    options = f"lowerdir={mounted / 'rootfs'},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], check=True)
    try:
        removed = prune_templates(data)
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert sorted(removed) == sorted([f"base/{DIGESTS['older']}", f"child/{DIGESTS['stale']}"])
    left = {p.name for p in (root / "base").iterdir() if p.is_dir()}
    assert left == {DIGESTS["mounted"], DIGESTS["new"], DIGESTS["old"]}
    assert (root / "linked" / "elsewhere").is_symlink() and tmp_path.exists()
