"""Server settings: one frozen dataclass. Defaults live here (paths and port in `nullspace._paths`);
the environment (`NULLSPACE_HOME`, `NULLSPACE_LOG_*`) and flags are read by `nullspace serve`,
which builds it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import DEFAULT_DATA_DIR, DEFAULT_PORT, SOCKET_NAME, default_data_dir, state_db
from ..egress.settings import EgressSettings
from .pool_policy import PoolBounds

MiB = 1 << 20


DEFAULT_POOL_SIZES = {"code-interpreter": PoolBounds(2, 8)}
"""Warm sandboxes per template unless `nullspace serve --pool` says otherwise: 2 kept ready,
up to 8 while creates come fast (pool_policy.py)."""


@dataclass(frozen=True)
class SandboxDefaults:
    memory_mb: int = 1024
    cpu: float = 1.0
    pids: int = 512
    disk_mb: int = 2048
    timeout: int = 300


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    socket_path: Path | None = None          # default: <data_dir>/nullspace.sock
    host: str | None = None                  # TCP listener (API keys required) when set
    port: int = DEFAULT_PORT
    defaults: SandboxDefaults = SandboxDefaults()
    max_memory_mb: int = 16384
    max_disk_mb: int = 65536
    max_contexts: int = 16                   # contexts (kernels) per sandbox; one more is a 409
    min_cpu: float = 0.1                     # below this a kernel takes ~2 s of wall time to start
    max_cpu: float = float(os.cpu_count() or 1)
    max_timeout: int = 24 * 3600
    max_paused_timeout: int = 7 * 24 * 3600   # a paused sandbox is killed after this (docs/pause.md)
    paused_resident_bytes: int = 4 * MiB      # what pause tries to leave in RAM (the rest is swapped)
    max_sandboxes: int = 1000
    max_body_bytes: int = 16 * MiB
    agent_ready_timeout: float = 60.0
    pool_sizes: dict[str, PoolBounds] = field(default_factory=lambda: dict(DEFAULT_POOL_SIZES))
    egress: EgressSettings = EgressSettings()   # nullspace serve --egress-config FILE
    console_no_login: bool = False           # a browser on this machine uses /console without a key

    @property
    def instance(self) -> str:
        """Servers with different data dirs never touch each other's cgroups or uids."""
        if self.data_dir.resolve() == DEFAULT_DATA_DIR:
            return ""
        return hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:8]

    @property
    def cgroup_root(self) -> str:
        return f"nullspace-{self.instance}" if self.instance else "nullspace"

    @property
    def uid_base(self) -> int:
        """Start of this instance's 65536 host uids (400000 + a slot derived from the data dir)."""
        return 400_000 + (int(self.instance, 16) % 4096 + 1) * 65_536 if self.instance else 400_000

    @property
    def unix_socket(self) -> Path:
        return self.socket_path or self.data_dir / SOCKET_NAME

    @property
    def db_path(self) -> Path:
        return state_db(self.data_dir)
