"""How the agent starts a kernel process: argv, environment, preexec, and the early boot launch.

Stdlib only. ``__main__`` calls `prelaunch` for the boot kernel before it imports jupyter_client,
starlette and uvicorn (~170 ms in a sandbox), so the kernel's own start (~200 ms) runs beside the
agent's instead of after it; `kernels.Kernel` then adopts the running process. Every other kernel
start (contexts, restarts) goes through jupyter_client with the same argv, env and preexec.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .config import AGENT_ONLY_ENV

PR_SET_PDEATHSIG = 1

PYTHON_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_startup", "launch.py")
"""Runs ipykernel without its debugger (kernel_startup/launch.py)."""

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()  # resolved in the parent: the forked child must not load libraries


def _own_oom_score_adj() -> int:
    try:
        with open("/proc/self/oom_score_adj", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def make_preexec(oom_score_adj: int) -> Any:
    """A Popen ``preexec_fn`` for kernels: raise ``oom_score_adj`` (the OOM killer then prefers
    kernels over the agent; raising is unprivileged) and die with the agent (PDEATHSIG)."""
    target = str(max(oom_score_adj, _own_oom_score_adj())).encode("ascii")
    prctl = _PRCTL

    def preexec() -> None:  # runs in the child between fork and exec: keep it to raw syscalls
        try:
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            try:
                os.write(fd, target)
            finally:
                os.close(fd)
        except OSError:
            pass
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # SIGKILL

    return preexec


def kernel_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: the agent's own, minus what only concerns the agent.

    ``JPY_PARENT_PID`` would make ipykernel's parent poller exit inside a PID namespace; the
    agent's library dir is dropped from ``PYTHONPATH`` so user code does not see the agent.
    """
    env = dict(os.environ if base is None else base)
    for key in ("JPY_PARENT_PID", *AGENT_ONLY_ENV):
        env.pop(key, None)
    lib_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if env.get("PYTHONPATH"):
        parts = [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p != lib_dir]
        if parts:
            env["PYTHONPATH"] = os.pathsep.join(parts)
        else:
            del env["PYTHONPATH"]
    return env


def kernel_argv(spec_argv: list[str]) -> list[str]:
    """The kernelspec's argv, with ``-m ipykernel_launcher`` replaced by our launcher (same
    interpreter, same arguments); any other kernel's argv is kept as it is."""
    if len(spec_argv) >= 3 and spec_argv[1:3] == ["-m", "ipykernel_launcher"]:
        return [spec_argv[0], PYTHON_LAUNCHER, *spec_argv[3:]]
    return list(spec_argv)


# -- the early boot launch ---------------------------------------------------------------------


@dataclass
class Prelaunched:
    """A kernel process started before jupyter_client was imported, waiting to be adopted."""

    process: subprocess.Popen[bytes] | ForkedProcess
    kernel_name: str
    resource_dir: str
    connection_file: str


def connection_file(runtime_dir: str, seq: int) -> str:
    """The connection file of the `seq`-th kernel the agent starts (1 is the boot kernel)."""
    return os.path.join(runtime_dir, f"k{seq}.json")


def jupyter_kernel_dirs() -> list[str]:
    """Where jupyter_client looks for kernelspecs, in its order (jupyter_core.paths.jupyter_path)."""
    dirs = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    dirs.append(os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter"))
    dirs += [os.path.join(sys.prefix, "share", "jupyter"), "/usr/local/share/jupyter", "/usr/share/jupyter"]
    return [os.path.join(d, "kernels") for d in dirs]


def find_kernelspec(kernel_name: str) -> tuple[str, dict[str, Any]] | None:
    for kernels in jupyter_kernel_dirs():
        path = os.path.join(kernels, kernel_name, "kernel.json")
        try:
            with open(path, encoding="utf-8") as fh:
                return os.path.dirname(path), json.load(fh)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
    return None


def ipc_connection(connection_file: str) -> dict[str, Any]:
    """What jupyter_client writes for an IPC kernel at `connection_file` (ports are suffixes)."""
    return {
        "transport": "ipc",
        "ip": os.path.splitext(connection_file)[0] + "-ipc",
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": os.urandom(32).hex(),  # what secrets.token_hex does, without its imports (~8 ms)
        "signature_scheme": "hmac-sha256",
    }


def prelaunch(
    kernel_name: str,
    *,
    connection_file: str,
    cwd: str,
    extra_arguments: list[str],
    oom_score_adj: int,
    kernel_output: str,
) -> Prelaunched | None:
    """Start `kernel_name` now, as jupyter_client would; None when this kernelspec needs more
    than we reproduce here (env substitutions, TCP, other placeholders): it then starts later."""
    found = find_kernelspec(kernel_name)
    if found is None:
        return None
    resource_dir, spec = found
    argv = spec.get("argv")
    metadata = spec.get("metadata") or {}
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(a, str) for a in argv)
        or spec.get("env")
        or (metadata.get("nullspace") or {}).get("transport") == "tcp"
        or not {m for a in argv for m in _PLACEHOLDER.findall(a)} <= {"connection_file", "resource_dir"}
    ):
        return None
    fd = os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({**ipc_connection(connection_file), "kernel_name": kernel_name}, fh)
    cmd = [
        a.replace("{connection_file}", connection_file).replace("{resource_dir}", resource_dir)
        for a in kernel_argv(argv)
    ] + extra_arguments
    if cmd[0] in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        cmd[0] = sys.executable  # as KernelManager.format_kernel_cmd does
    out = None if kernel_output == "inherit" else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: PLW1509 - preexec_fn makes raw syscalls only
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        cwd=cwd,
        env=kernel_env(),
        start_new_session=True,  # jupyter_client's independent=True
        preexec_fn=make_preexec(oom_score_adj),
    )
    return Prelaunched(process, kernel_name, resource_dir, connection_file)


# -- forked kernels ----------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of `pid` from /proc, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), fields[19]
    except (OSError, IndexError, ValueError):
        return None


class ForkedProcess:
    """The part of ``subprocess.Popen`` that jupyter_client's provisioner uses, for a kernel
    that another kernel forked (kernel_startup/fork.py): it is not the agent's child, so it is
    watched through /proc (its start time guards against a reused pid) and reaped by the kernel
    it was forked from (or the sandbox's init once that one is gone). Its exit status is not known: a killed one reports -9, others 1."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, parent: int) -> None:
        stat = _proc_stat(pid)
        if stat is None or stat[0] in "ZX" or stat[1] != parent or pid == os.getpid():
            raise ProcessLookupError(f"{pid} is not a running kernel forked by {parent}")
        self.pid = pid
        self._start = stat[2]
        self.returncode: int | None = None
        self._killed = False

    def poll(self) -> int | None:
        if self.returncode is None:
            stat = _proc_stat(self.pid)
            if stat is None or stat[0] in "ZX" or stat[2] != self._start:
                self.returncode = -9 if self._killed else 1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.01)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            if signum == 9:
                self._killed = True
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(9)

    def terminate(self) -> None:
        self.send_signal(15)
