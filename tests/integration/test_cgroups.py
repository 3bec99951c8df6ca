"""cgroups.py on the real hierarchy of this machine (v1 here, v2 elsewhere).

Processes join the cgroup the way the launcher does it: a ``preexec_fn`` that only
``os.open``/``os.write``s ``b"0"`` into each of `Cgroup.procs_files`. PID 1 here reaps orphans
only every ~2 s, so this test process becomes a child subreaper and reaps its own children and
grandchildren before destroying a cgroup.
"""

from __future__ import annotations

import ctypes
import glob
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from nullspace.runtime import cgroups
from nullspace.runtime.cgroups import Cgroup, CgroupDriver, Limits

PYTHON = "/usr/bin/python3"
ROOT = f"nullspace-test-{os.getpid()}"
PR_SET_CHILD_SUBREAPER = 36


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    try:
        cgroups.open_driver(ROOT)
    except cgroups.CgroupError as exc:
        return f"no usable cgroups: {exc}"
    if not os.path.exists(PYTHON):
        return f"{PYTHON} is missing"
    return None


pytestmark = pytest.mark.skipif(bool(reason := _skip_reason()), reason=reason or "")


def reap_orphans() -> None:
    """waitpid(-1, WNOHANG) until no zombie child is left (we are a subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def leftovers() -> list[str]:
    return glob.glob("/sys/fs/cgroup/*/nullspace-test*") + glob.glob(
        "/sys/fs/cgroup/nullspace-test*"
    )


@pytest.fixture(scope="module")
def driver() -> Iterator[CgroupDriver]:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    d = cgroups.open_driver(ROOT)
    yield d
    for name in d.list_names():
        group = d.open(name)
        if group is not None:
            group.kill_all()
            time.sleep(0.01)
            reap_orphans()
            group.destroy()
    d.remove_root()
    assert not [p for p in leftovers() if ROOT in p]


def joiner(group: Cgroup) -> Callable[[], None]:
    """The launcher's preexec_fn: join every hierarchy with raw os.open/os.write."""
    files = group.procs_files()

    def join() -> None:
        for path in files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    return join


def spawn(group: Cgroup, code: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, "-c", code], preexec_fn=joiner(group), text=True, **kwargs)  # type: ignore[call-overload]


def test_memory_bomb_is_oom_killed(driver: CgroupDriver) -> None:
    group = driver.create("oom", Limits(memory_bytes=100 << 20, cpu=1.0, pids=64))
    try:
        before = group.stats()
        assert before.oom_kills == 0 and before.memory_limit == 100 << 20
        proc = spawn(group, "b = b'x' * (300 << 20); print('survived')", stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, out
        stats = group.stats()
        assert stats.oom_kills >= 1 and group.limit_events().oom_kills == stats.oom_kills
        assert stats.memory_peak <= (100 << 20) + (1 << 20)
    finally:
        group.destroy()


def test_fork_loop_stops_at_pids_max(driver: CgroupDriver) -> None:
    group = driver.create("forks", Limits(memory_bytes=256 << 20, cpu=1.0, pids=16))
    code = """
import os, time
ok = failed = 0
for _ in range(200):
    try:
        pid = os.fork()
    except BlockingIOError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    ok += 1
print(ok, failed, flush=True)
time.sleep(30)
"""
    proc = spawn(group, code, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ok, failed = map(int, proc.stdout.readline().split())
        stats = group.stats()
        assert ok <= 15 and failed >= 185
        assert stats.pids_limit == 16 and stats.pids_current <= 16
        assert stats.pids_max_hits >= failed and group.limit_events().pids_max_hits >= failed
        assert len(group.pids()) == ok + 1
    finally:
        group.kill_all()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        time.sleep(0.01)
        reap_orphans()  # the orphaned forks, re-parented to us
        group.destroy()
    assert driver.open("forks") is None


def test_kill_all_reap_destroy_leaves_nothing(driver: CgroupDriver) -> None:
    group = driver.create("tree", Limits(memory_bytes=64 << 20, cpu=0.5, pids=32))
    proc = subprocess.Popen(
        ["/bin/sh", "-c", "for i in 1 2 3 4 5; do sleep 60 & done; wait"], preexec_fn=joiner(group)
    )
    deadline = time.monotonic() + 10
    while len(group.pids()) < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    members = group.pids()
    assert proc.pid in members and len(members) == 6
    outsider = subprocess.Popen(["sleep", "60"])  # not in the cgroup: must survive
    try:
        start = time.perf_counter()
        group.kill_all()
        kill_ms = (time.perf_counter() - start) * 1e3
        assert proc.wait(timeout=5) == -signal.SIGKILL
        reap_orphans()
        start = time.perf_counter()
        group.destroy()
        destroy_ms = (time.perf_counter() - start) * 1e3
        assert outsider.poll() is None
    finally:
        outsider.kill()
        outsider.wait()
    assert driver.open("tree") is None
    assert not [p for p in leftovers() if p.endswith("/tree")]
    print(f"kill_all 6 procs: {kill_ms:.2f} ms, destroy: {destroy_ms:.2f} ms", file=sys.stderr)


def test_cpu_quota_throttles(driver: CgroupDriver) -> None:
    group = driver.create("cpu", Limits(memory_bytes=128 << 20, cpu=0.2, pids=8))
    try:
        code = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass"
        proc = spawn(group, code)
        assert proc.wait(timeout=30) == 0
        used = group.stats().cpu_usage_usec / 1e6
        assert 0.05 < used < 0.45, f"{used:.2f} s of CPU in 1 s wall at 0.2 cores"
    finally:
        group.destroy()


def test_attach_and_leftover_cleanup(driver: CgroupDriver) -> None:
    group = driver.create("attach", Limits(memory_bytes=64 << 20, cpu=1.0, pids=8))
    proc = subprocess.Popen(["sleep", "60"])
    group.attach(proc.pid)
    assert group.pids() == [proc.pid]
    # A restarted server finds the group by name and cleans it up.
    assert "attach" in driver.list_names()
    found = driver.open("attach")
    assert found is not None
    found.kill_all()
    assert proc.wait(timeout=5) == -signal.SIGKILL
    found.destroy()
    assert "attach" not in driver.list_names()


def test_create_destroy_cost(driver: CgroupDriver) -> None:
    limits = Limits(memory_bytes=512 << 20, cpu=1.0, pids=256)
    create, destroy = [], []
    for i in range(30):
        t0 = time.perf_counter()
        group = driver.create(f"cost{i}", limits)
        t1 = time.perf_counter()
        group.destroy()
        t2 = time.perf_counter()
        create.append(t1 - t0)
        destroy.append(t2 - t1)
    c, d = statistics.median(create) * 1e3, statistics.median(destroy) * 1e3
    print(
        f"cgroup v{driver.version} create {c:.2f} ms, destroy {d:.2f} ms (median of 30)",
        file=sys.stderr,
    )
    assert c < 50 and d < 50
