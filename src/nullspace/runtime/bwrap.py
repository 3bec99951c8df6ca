"""`SandboxPolicy` → bubblewrap argv (pure), per ARCHITECTURE §2.

bwrap is run as the policy's unprivileged host uid (never as root with --uid: that maps the
sandbox user to host root). Inside: every namespace unshared (net too: only `lo`), all
capabilities dropped, NoNewPrivs (bwrap sets it with the seccomp filters), no /sys, a private /proc, a
minimal /dev, sized tmpfs mounts, and a clean environment.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess

from .policy import AGENT_LIB, AGENT_RUNTIME_DIR, DEFAULT_PATH, SANDBOX_GID, SANDBOX_UID, SandboxPolicy

BWRAP = "/usr/bin/bwrap"


@functools.cache
def features(bwrap: str = BWRAP) -> frozenset[str]:
    """The options the installed bubblewrap offers (from ``--help``), e.g. ``--disable-userns``
    (0.8.0 has it: Debian 12's); cached per process."""
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(re.findall(r"^\s+(--[a-z0-9-]+)", out.stdout + out.stderr, re.MULTILINE))


def build_argv(policy: SandboxPolicy) -> list[str]:
    argv = [
        BWRAP,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_GID),
        "--hostname", policy.hostname,
        # newer bwrap: no user namespace can be made inside (seccomp refuses it too: belt and braces)
        *(["--unshare-user", "--disable-userns"] if policy.disable_userns else []),
        "--bind", str(policy.rootfs), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(policy.dev_shm_bytes), "--tmpfs", "/dev/shm",
        "--perms", "0700", "--size", str(policy.runtime_dir_bytes), "--tmpfs", AGENT_RUNTIME_DIR,
        "--ro-bind", str(policy.agent_source.parent), AGENT_LIB,
    ]
    for host_path, target in policy.extra_ro_binds:
        argv += ["--ro-bind", str(host_path), target]
    for fd in policy.seccomp_fds:  # the kernel runs every filter; the strictest answer wins
        argv += ["--add-seccomp-fd", str(fd)]
    # The agent starts in its own directory so `python -m nullspace_agent` finds itself
    # without a PYTHONPATH that kernels would inherit; kernels get the workdir as cwd.
    argv += ["--chdir", AGENT_LIB, "--clearenv"]
    for key, value in sorted(_environment(policy).items()):
        argv += ["--setenv", key, value]
    argv += ["--", *policy.command]
    return argv


def via_args_fd(argv: list[str]) -> tuple[list[str], bytes]:
    """Split `argv` into what runs (``bwrap --args FD -- COMMAND``) and the options for FD
    (NUL-separated): the sandbox's /proc/1/cmdline then names no host path, sandbox id or env."""
    end = argv.index("--")
    return [argv[0], "--args", "{fd}", *argv[end:]], b"".join(a.encode() + b"\0" for a in argv[1:end])


def args_memfd(options: bytes) -> int:
    """A memfd holding `options`, at offset 0, for ``--args``."""
    fd = os.memfd_create("bwrap-args", os.MFD_CLOEXEC)
    try:
        view = memoryview(options)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _environment(policy: SandboxPolicy) -> dict[str, str]:
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": policy.workdir,
        "USER": "user",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLCONFIGDIR": f"{AGENT_RUNTIME_DIR}/matplotlib",
    }
    env.update(policy.env)
    return env
