"""What a sandbox may do, as data. `bwrap.build_argv` turns it into a command line.

Bubblewrap's own rule: "the level of protection ... is entirely determined by the arguments
passed". So every security-relevant choice lives here, in one frozen dataclass, and the argv
builder is a pure function with golden tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_UID = 1000
SANDBOX_GID = 1000
AGENT_LIB = "/opt/nullspace/lib"
AGENT_RUNTIME_DIR = "/run/nullspace"
EGRESS_SOCKET_VIEW = f"{AGENT_RUNTIME_DIR}/egress.sock"   # the sandbox's only way out (nullspace.egress)
DEFAULT_PATH = "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxPolicy:
    """What bwrap sets up for one sandbox. (Who runs bwrap — the sandbox's unprivileged host uid —
    and its cgroup are the launcher's job: `local.py`.)"""

    rootfs: Path                      # merged overlay root on the host
    agent_source: Path                # host .../nullspace_agent; its parent is bound read-only as AGENT_LIB
    command: tuple[str, ...]          # what runs inside (the agent)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/home/user"
    hostname: str = "sandbox"
    runtime_dir_bytes: int = 16 << 20
    dev_shm_bytes: int = 64 << 20
    seccomp_fds: tuple[int, ...] = ()   # stacked filters (bwrap --add-seccomp-fd each)
    extra_ro_binds: tuple[tuple[Path, str], ...] = ()
    disable_userns: bool = False        # bwrap --disable-userns (when the installed bwrap has it)
