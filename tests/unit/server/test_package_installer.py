"""The trusted side of install_packages, without a sandbox: validation, agent replies, messages."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from nullspace._exceptions import InvalidArgumentError, PackageInstallError
from nullspace.server import packages
from nullspace.server.packages import PackageInstaller


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("requested", "language", "problem"),
    [
        (["-e git+https://evil/x"], "python", "option"),
        (["--index-url=http://evil"], "python", "option"),
        (["x @ https://evil/x.whl"], "python", "not a requirement"),
        (["x", "x"], "python", "twice"),
        ([], "python", "1 to"),
        (["x"] * 100, "python", "1 to"),
        (["left-pad@file:../x"], "javascript", "not an npm package"),
        (["x"], "ruby", "can be installed for"),
    ],
)
async def test_requests_are_validated_before_anything_runs(
    tmp_path: Path, requested: list[str], language: str, problem: str
) -> None:
    installer = PackageInstaller(tmp_path, reaper=None)  # type: ignore[arg-type]  # never reached
    live = SimpleNamespace(record=SimpleNamespace(id="sb_x", template="t", digest="0" * 64))
    with pytest.raises(InvalidArgumentError, match=problem):
        await installer.install(live, requested, language, None)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # nothing downloaded, no cache created


def test_agent_replies_are_checked() -> None:
    reply = packages._check_reply(
        {"status": "ok", "installed": [{"name": "a", "version": "1"}, {"name": 3}, "x", {"name": "b" * 300, "version": "1"}],
         "log": "x" * (packages.MAX_LOG + 10), "extra": 1}
    )  # fmt: skip
    assert reply["installed"] == [{"name": "a", "version": "1"}]
    smuggled = packages._check_reply(
        {"status": "ok", "installed": [{"name": "x", "version": "1\n--extra-index-url http://evil/simple"},
                                      {"name": "-e x", "version": "1"}, {"name": "@s/p", "version": "2.0"}]}
    )  # fmt: skip
    assert smuggled["installed"] == [{"name": "@s/p", "version": "2.0"}]
    assert len(reply["log"]) == packages.MAX_LOG
    for bad in (None, [], {"status": "maybe"}, "ok"):
        with pytest.raises(PackageInstallError, match="malformed"):
            packages._check_reply(bad)


def test_failure_messages_carry_the_installers_own_lines() -> None:
    pip = (
        "Looking in indexes: https://pypi.org/simple\n"
        "ERROR: Could not find a version that satisfies the requirement nope==1.0 (from versions: none)\n"
        "ERROR: No matching distribution found for nope==1.0\n"
    )
    message = packages._failure("pip download", ["nope==1.0"], pip)
    assert message.startswith("pip download failed for nope==1.0:")
    assert "No matching distribution found for nope==1.0" in message and "Looking in" not in message
    npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope\n"
    assert "E404" in packages._failure("npm install", ["nope"], npm)
    assert "last line" in packages._failure("x", ["y"], "a\nlast line\n")


def test_lock_versions(tmp_path: Path) -> None:
    lock = {
        "packages": {
            "": {"dependencies": {"is-odd": "^3"}},
            "node_modules/is-odd": {"version": "3.0.1"},
            "node_modules/@scope/pkg": {"version": "1.2.3"},
        }
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    assert packages._lock_versions(tmp_path) == {"is-odd": "3.0.1", "@scope/pkg": "1.2.3"}
    assert packages._lock_versions(tmp_path / "missing") == {}


def test_npm_staging_is_seeded_from_the_template(tmp_path: Path) -> None:
    staging, live = tmp_path / "staging", tmp_path / "live"
    live.mkdir()
    files = {"package.json": '{"dependencies": {"is-odd": "^3.0.1"}}', "evil/../x": "no"}
    packages._prepare_npm_staging(live, staging, {"files": files})
    assert sorted(p.name for p in staging.iterdir()) == ["package.json"]
    (live / "package.json").write_text("{}")
    packages._prepare_npm_staging(live, staging, {"files": files})
    assert (staging / "package.json").read_text() == "{}"  # the sandbox's own project wins


def test_remembered_resolutions_and_cached_wheels(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    cache.mkdir()
    (cache / "humanize-4.9.0-py3-none-any.whl").write_bytes(b"w")
    (cache / "Zope.Interface-6.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"w")
    assert packages._cached_wheel("humanize==4.9.0", cache)
    assert packages._cached_wheel("zope-interface == 6.0", cache)
    assert not packages._cached_wheel("humanize==4.9.1", cache)
    assert not packages._cached_wheel("humanize>=4", cache)
    memo = tmp_path / "resolutions" / "k.json"
    assert packages._recall(memo, cache) == []
    packages._remember(memo, [cache / "humanize-4.9.0-py3-none-any.whl"])
    assert packages._recall(memo, cache) == [cache / "humanize-4.9.0-py3-none-any.whl"]
    (cache / "humanize-4.9.0-py3-none-any.whl").unlink()
    assert packages._recall(memo, cache) == []  # a wheel went away: resolve again
    memo.write_text('["../../etc/passwd.whl"]')
    assert packages._recall(memo, cache) == []
