"""The agent's artifact scan (agent/artifacts.py) and the kernel's post-import hooks
(kernel_startup/imports.py): pure file-system and import-system logic, no kernel."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

from nullspace.agent import artifacts
from nullspace.agent.kernel_startup import imports


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_new_and_changed_files_are_reported_with_hash_and_type(tmp_path: Path) -> None:
    write(tmp_path / "same.txt", b"same")
    write(tmp_path / "grow.log", b"a")
    before = artifacts.walk(str(tmp_path))
    write(tmp_path / "grow.log", b"ab")
    write(tmp_path / "out" / "chart.png", b"\x89PNG")
    write(tmp_path / ".cache" / "skip", b"x")
    write(tmp_path / "__pycache__" / "m.pyc", b"x")
    os.symlink(tmp_path / "same.txt", tmp_path / "link.txt")
    event = artifacts.report(before)
    assert event is not None and event["type"] == "artifacts" and event["root"] == str(tmp_path)
    items = {a["path"]: a for a in event["artifacts"]}
    assert set(items) == {str(tmp_path / "grow.log"), str(tmp_path / "out" / "chart.png")}
    png = items[str(tmp_path / "out" / "chart.png")]
    assert png == {
        "path": str(tmp_path / "out" / "chart.png"),
        "name": "chart.png",
        "size": 4,
        "mime_type": "image/png",
        "sha256": hashlib.sha256(b"\x89PNG").hexdigest(),
        "change": "created",
        "modified_at": png["modified_at"],
    }
    assert items[str(tmp_path / "grow.log")]["change"] == "modified"
    assert artifacts.report(artifacts.walk(str(tmp_path))) is None  # nothing changed


def test_rewriting_with_the_same_size_is_a_change(tmp_path: Path) -> None:
    write(tmp_path / "f", b"aaaa")
    before = artifacts.walk(str(tmp_path))
    time.sleep(0.01)
    write(tmp_path / "f", b"bbbb")
    event = artifacts.report(before)
    assert event is not None and event["artifacts"][0]["sha256"] == hashlib.sha256(b"bbbb").hexdigest()


def test_limits_on_listing_and_hashing(tmp_path: Path) -> None:
    before = artifacts.walk(str(tmp_path))
    for i in range(5):
        write(tmp_path / f"f{i}", b"x" * 100)
    event = artifacts.report(before, max_artifacts=3, max_hash_bytes=250)
    assert event is not None and event["truncated"] is True and event["total"] == 5
    assert [a["sha256"] is not None for a in event["artifacts"]] == [True, True, False]


def test_a_cut_walk_only_counts_files_newer_than_the_run(tmp_path: Path) -> None:
    for i in range(20):
        write(tmp_path / f"old{i:02}", b"o")
    old = time.time() - 3600
    for path in tmp_path.iterdir():
        os.utime(path, (old, old))
    before = artifacts.walk(str(tmp_path), max_entries=5)
    assert not before.complete
    write(tmp_path / "new", b"n")
    found = artifacts.changed(before, artifacts.walk(str(tmp_path), max_entries=100))
    assert found == [(str(tmp_path / "new"), "created")]


def test_mime_types() -> None:
    assert artifacts.mime_type("a.csv") == "text/csv"
    assert artifacts.mime_type("a.parquet") == "application/vnd.apache.parquet"
    assert artifacts.mime_type("noext") == "application/octet-stream"


def test_post_import_hook_runs_once_after_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "ns_hook_probe.py", b"VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    imports.when_imported("ns_hook_probe", lambda m: seen.append(m.VALUE))
    imports.when_imported("ns_hook_probe", lambda m: 1 / 0)  # a failing hook is ignored
    assert seen == []
    import ns_hook_probe  # noqa: F401

    assert seen == [1]
    module = sys.modules["ns_hook_probe"]
    assert type(module.__loader__).__name__ == "SourceFileLoader"  # the real loader stays
    imports.when_imported("ns_hook_probe", lambda m: seen.append("now"))  # already imported
    assert seen == [1, "now"]
    del sys.modules["ns_hook_probe"]
