"""Golden checks on the bwrap command line: the whole security model is in these arguments."""

from __future__ import annotations

import os
from pathlib import Path

from nullspace.runtime import bwrap
from nullspace.runtime.bwrap import build_argv
from nullspace.runtime.policy import AGENT_LIB, SandboxPolicy


def _argv(**overrides: object) -> list[str]:
    policy = SandboxPolicy(
        rootfs=Path("/data/sandboxes/sb_x/root"),
        agent_source=Path("/data/agent/abc/nullspace_agent"),
        command=("/opt/venv/bin/python", "-m", "nullspace_agent", "--fd", "3"),
        env={"USER_VAR": "1"},
        seccomp_fds=(4, 5),
        **overrides,  # type: ignore[arg-type]
    )
    return build_argv(policy)


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_isolation_flags() -> None:
    argv = _argv()
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert "--share-net" not in argv  # loopback only
    assert _pairs(argv, "--cap-drop") == ["ALL"]
    assert _pairs(argv, "--add-seccomp-fd") == ["4", "5"] and "--seccomp" not in argv
    assert _pairs(argv, "--uid") == ["1000"] and _pairs(argv, "--gid") == ["1000"]


def test_filesystem_has_no_sys_and_sized_tmpfs() -> None:
    argv = _argv()
    assert "/sys" not in argv
    assert argv[argv.index("--bind") + 1 : argv.index("--bind") + 3] == ["/data/sandboxes/sb_x/root", "/"]
    assert _pairs(argv, "--proc") == ["/proc"] and _pairs(argv, "--dev") == ["/dev"]
    for target in ("/dev/shm", "/run/nullspace"):
        i = argv.index(target)
        assert argv[i - 1] == "--tmpfs" and argv[i - 3] == "--size" and int(argv[i - 2]) > 0
    assert ["--ro-bind", "/data/agent/abc", AGENT_LIB] == argv[argv.index(AGENT_LIB) - 2 : argv.index(AGENT_LIB) + 1]


def test_environment_and_command() -> None:
    argv = _argv()
    env = dict(zip(_pairs(argv, "--setenv"), [argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"], strict=True))
    assert env["USER_VAR"] == "1" and env["HOME"] == "/home/user" and "PYTHONPATH" not in env
    assert argv[argv.index("--") + 1 :] == ["/opt/venv/bin/python", "-m", "nullspace_agent", "--fd", "3"]


def test_newer_bwrap_flags_only_when_asked() -> None:
    # bwrap without --disable-userns (before 0.8.0): seccomp alone refuses new user namespaces
    assert "--disable-userns" not in _argv()
    argv = _argv(disable_userns=True)
    assert "--disable-userns" in argv and "--unshare-user" in argv  # bwrap requires both


def test_installed_bwrap_features_are_read_from_its_help() -> None:
    found = bwrap.features()
    assert "--args" in found and "--unshare-all" in found  # every bwrap we support has these


def test_options_travel_through_an_fd_so_cmdline_names_no_host_path() -> None:
    argv, options = bwrap.via_args_fd(_argv())
    assert argv == [bwrap.BWRAP, "--args", "{fd}", "--", "/opt/venv/bin/python", "-m", "nullspace_agent", "--fd", "3"]
    parts = options.split(b"\0")
    assert parts[-1] == b"" and b"/data/sandboxes/sb_x/root" in parts and b"USER_VAR=1" not in parts and b"USER_VAR" in parts
    fd = bwrap.args_memfd(options)
    try:
        assert os.read(fd, len(options) + 1) == options
    finally:
        os.close(fd)
