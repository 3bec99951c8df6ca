"""`SandboxPolicy` → bubblewrap argv (pure), per ARCHITECTURE §2.

bwrap is run as the policy's unprivileged host uid (never as root with --uid: that maps the
sandbox user to host root). Inside: every namespace unshared (net too: only `lo`), all
capabilities dropped, NoNewPrivs (bwrap sets it with the seccomp filters), no /sys, a private /proc, a
minimal /dev, sized tmpfs mounts, and a clean environment.
"""

from __future__ import annotations

from .policy import AGENT_LIB, AGENT_RUNTIME_DIR, DEFAULT_PATH, SANDBOX_GID, SANDBOX_UID, SandboxPolicy

BWRAP = "/usr/bin/bwrap"


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
