"""Is a sandbox's agent alive and running? Asked of the kernel (cgroup membership, /proc), never
of the sandbox.

Code in a sandbox runs as the agent's uid, so it can ``SIGSTOP`` the agent: the server's requests
would then wait on a socket that never answers. While an agent request is silent, the server asks
`check` once a second; a stopped agent is resumed (``SIGCONT``) and the request fails at once as
"agent unresponsive" instead of hanging.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable

AGENT_NS_PID = 2  # bwrap --unshare-pid: bwrap is pid 1 of the sandbox, its command (the agent) pid 2
STOPPED = frozenset("Tt")  # stopped by a signal, or by a tracer


def _nspid(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return line.split()[1:]
    except OSError:
        pass
    return []


def find_agent(launcher_pid: int, pids: Iterable[int]) -> int | None:
    """The host pid of the agent: the cgroup member that is pid 2 one pid namespace below the
    launcher (bwrap). Nested pid namespaces need CAP_SYS_ADMIN, which nothing inside has."""
    depth = len(_nspid(launcher_pid)) + 1
    for pid in pids:
        nspid = _nspid(pid)
        if len(nspid) == depth and nspid[-1] == str(AGENT_NS_PID):
            return pid
    return None


def process_state(pid: int) -> str | None:
    """The one-letter state of /proc/PID/stat (R, S, D, T, t, Z, ...), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split(b" ", 1)  # the name may hold spaces and parens
    return fields[0].decode() if fields and fields[0] else None


def checker(launcher_pid: int, pids: Callable[[], Iterable[int]]) -> Callable[[], str | None]:
    """`check()` → None while the agent runs, else why it cannot answer (a stopped agent is
    resumed first, so the sandbox's next request works)."""

    def check() -> str | None:
        pid = find_agent(launcher_pid, pids())
        if pid is None:
            return "its agent process is gone"
        state = process_state(pid)
        if state is None:
            return "its agent process is gone"
        if state in STOPPED:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                return "its agent process was stopped (a process in the sandbox sent it SIGSTOP?)"
            return ("its agent process was stopped (a process in the sandbox sent it SIGSTOP?); "
                    "the server resumed it, so the next request can succeed")
        if state == "Z":
            return "its agent process has exited"
        return None

    return check
