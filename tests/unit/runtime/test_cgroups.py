"""cgroups.py against fake cgroupfs trees under tmp_path (no root, no real cgroups).

A small fake "kernel" stands in for cgroupfs: `_mkdir` fills a new group with its control files,
`_rmdir` removes a group unless it still lists members (EBUSY, as the kernel does), and writes to
``cgroup.freeze`` update ``cgroup.events``. Everything else is plain files, so the tests read back
exactly what the driver wrote.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nullspace.runtime import cgroups as cg
from nullspace.runtime.cgroups import UNLIMITED, CgroupError, Limits

V1_HUGE = "9223372036854771712"

V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": V1_HUGE,
        "memory.memsw.limit_in_bytes": V1_HUGE,
        "memory.usage_in_bytes": "0",
        "memory.max_usage_in_bytes": "0",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0",
    },
    "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"},
    "cpuacct": {"cpuacct.usage": "0"},
    "pids": {"pids.max": "max", "pids.current": "0", "pids.events": "max 0"},
    "freezer": {"freezer.state": "THAWED"},
}

V2_FILES = {
    "cgroup.procs": "",
    "cgroup.subtree_control": "",
    "cgroup.events": "populated 0\nfrozen 0",
    "cgroup.freeze": "0",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.current": "0",
    "memory.peak": "0",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0",
    "cpu.max": "max 100000",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0",
    "pids.max": "max",
    "pids.current": "0",
    "pids.events": "max 0",
}


def write(path: Path, text: str) -> None:
    path.write_text(text)


class FakeKernel:
    """Emulates the bits of cgroupfs the driver relies on."""

    def __init__(self, mount_root: Path, version: int, *, with_kill: bool = False) -> None:
        self.mount_root = mount_root
        self.version = version
        self.with_kill = with_kill
        self.writes: list[tuple[str, str]] = []

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)
        write(path / "cgroup.procs", "")
        if self.version == 1:
            hierarchy = path.relative_to(self.mount_root).parts[0]
            for controller in hierarchy.split(","):
                for name, value in V1_FILES.get(controller, {}).items():
                    write(path / name, value)
        else:
            parent_enabled = (path.parent / "cgroup.subtree_control").read_text().split()
            write(path / "cgroup.controllers", " ".join(c.lstrip("+") for c in parent_enabled))
            for name, value in V2_FILES.items():
                write(path / name, value)
            if self.with_kill:
                write(path / "cgroup.kill", "")

    def rmdir(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such cgroup", str(path))
        if (path / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "busy", str(path))
        if any(p.is_dir() for p in path.iterdir()):
            raise OSError(errno.EBUSY, "has children", str(path))
        shutil.rmtree(path)

    def write(self, path: Path, value: str | int) -> None:
        text = str(value)
        self.writes.append((str(path.relative_to(self.mount_root)), text))
        if not path.exists():  # control files are never created by writing
            raise FileNotFoundError(errno.ENOENT, "no such control file", str(path))
        path.write_text(text)
        if path.name == "cgroup.freeze":
            write(path.parent / "cgroup.events", f"populated 0\nfrozen {text}")


def make_v1(
    root: Path, layout: tuple[str, ...] = ("memory", "cpu", "cpuacct", "pids", "freezer")
) -> None:
    for hierarchy in layout:
        (root / hierarchy).mkdir(parents=True)
        write(root / hierarchy / "cgroup.procs", "")


def make_v2(root: Path, controllers: str = "cpuset cpu io memory hugetlb pids rdma misc") -> None:
    root.mkdir(parents=True, exist_ok=True)
    write(root / "cgroup.controllers", controllers)
    write(root / "cgroup.subtree_control", "")
    write(root / "cgroup.procs", "1\n")


@pytest.fixture
def kernel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> FakeKernel:
    version, with_kill = getattr(request, "param", (1, False))
    k = FakeKernel(tmp_path, version, with_kill=with_kill)
    monkeypatch.setattr(cg, "_mkdir", k.mkdir)
    monkeypatch.setattr(cg, "_rmdir", k.rmdir)
    monkeypatch.setattr(cg, "_write", k.write)
    if version == 1:
        make_v1(tmp_path)
    else:
        make_v2(tmp_path)
    return k


LIMITS = Limits(memory_bytes=100 << 20, cpu=0.5, pids=32)


# --- Limits ---------------------------------------------------------------------------------


def test_limits_validate() -> None:
    assert Limits(1, 1.0, 1).cpu_quota_us() == 100_000
    assert Limits(1, 0.001, 1).cpu_quota_us() == 1_000  # kernel minimum
    assert Limits(1, 2.5, 1).cpu_quota_us() == 250_000
    assert Limits(UNLIMITED, UNLIMITED, UNLIMITED).cpu_quota_us() is None
    for bad in ((0, 1.0, 1), (1, 0.0, 1), (1, 1.0, 0), (-5, 1.0, 1), (1, float("nan"), 1)):
        with pytest.raises(ValueError):
            Limits(*bad)


# --- detection ------------------------------------------------------------------------------


def test_detects_v1(tmp_path: Path) -> None:
    make_v1(tmp_path)
    (tmp_path / "unified").mkdir()  # hybrid: the v2 mount lives below, not at the root
    write(tmp_path / "unified" / "cgroup.controllers", "hugetlb")
    driver = cg.open_driver("nullspace", mount_root=tmp_path)
    assert driver.version == 1
    assert isinstance(driver, cg.CgroupV1Driver)
    assert set(driver.hierarchies) == {"memory", "cpu", "cpuacct", "pids", "freezer"}


def test_detects_v1_with_shared_hierarchy(tmp_path: Path) -> None:
    make_v1(tmp_path, ("memory", "cpu,cpuacct", "pids", "freezer"))
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    driver = cg.open_driver(mount_root=tmp_path)
    assert isinstance(driver, cg.CgroupV1Driver)
    assert driver.hierarchies["cpu"] == driver.hierarchies["cpuacct"] == (tmp_path / "cpu,cpuacct")


def test_detects_v2(tmp_path: Path) -> None:
    make_v2(tmp_path)
    driver = cg.open_driver(mount_root=tmp_path)
    assert driver.version == 2
    assert isinstance(driver, cg.CgroupV2Driver)


def test_v2_without_memory_falls_back_to_v1(tmp_path: Path) -> None:
    make_v1(tmp_path)
    write(tmp_path / "cgroup.controllers", "hugetlb")
    assert cg.open_driver(mount_root=tmp_path).version == 1
    with pytest.raises(CgroupError, match="memory"):
        cg.open_driver(mount_root=tmp_path, version=2)


def test_no_usable_setup_names_what_is_missing(tmp_path: Path) -> None:
    make_v1(tmp_path, ("memory", "cpu"))
    with pytest.raises(CgroupError) as info:
        cg.open_driver(mount_root=tmp_path)
    message = str(info.value)
    assert "pids" in message and "freezer" in message and "cgroup v2" in message
    with pytest.raises(CgroupError):
        cg.open_driver(mount_root=tmp_path / "nothing-here")


def test_names_are_validated(tmp_path: Path) -> None:
    make_v1(tmp_path)
    with pytest.raises(ValueError):
        cg.open_driver("../escape", mount_root=tmp_path)
    driver = cg.open_driver(mount_root=tmp_path)
    for bad in ("", "..", "a/b", ".hidden", "x" * 200, "a b"):
        with pytest.raises(ValueError):
            driver.open(bad)


# --- v1 -------------------------------------------------------------------------------------


def test_v1_create_sets_limits_everywhere(kernel: FakeKernel, tmp_path: Path) -> None:
    driver = cg.open_driver("nullspace", mount_root=tmp_path)
    group = driver.create("sbx-1", LIMITS)
    assert group.name == "sbx-1"
    leaf = {
        c: tmp_path / c / "nullspace" / "sbx-1"
        for c in ("memory", "cpu", "cpuacct", "pids", "freezer")
    }
    assert all(p.is_dir() for p in leaf.values())
    assert (leaf["memory"] / "memory.limit_in_bytes").read_text() == str(100 << 20)
    assert (leaf["memory"] / "memory.memsw.limit_in_bytes").read_text() == str(100 << 20)
    assert (leaf["cpu"] / "cpu.cfs_period_us").read_text() == "100000"
    assert (leaf["cpu"] / "cpu.cfs_quota_us").read_text() == "50000"
    assert (leaf["pids"] / "pids.max").read_text() == "32"
    assert sorted(group.procs_files()) == sorted(str(p / "cgroup.procs") for p in leaf.values())
    assert all(isinstance(p, str) for p in group.procs_files())


def test_v1_memsw_ordering_when_raising_the_limit(
    kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel keeps limit <= memsw.limit; raising the limit needs memsw first."""
    driver = cg.open_driver(mount_root=tmp_path)
    group = driver.create("sbx", LIMITS)
    real_write = kernel.write

    def strict_write(path: Path, value: str | int) -> None:
        if path.name.endswith("limit_in_bytes") and int(value) == -1:
            value = V1_HUGE  # what the kernel stores for "unlimited"
        if path.name == "memory.limit_in_bytes":
            memsw = int((path.parent / "memory.memsw.limit_in_bytes").read_text())
            if int(value) > memsw:
                raise OSError(errno.EINVAL, "limit above memsw")
        real_write(path, value)

    monkeypatch.setattr(cg, "_write", strict_write)
    group.set_limits(Limits(memory_bytes=1 << 30, cpu=1, pids=10))
    mem = tmp_path / "memory" / "nullspace" / "sbx"
    assert (mem / "memory.limit_in_bytes").read_text() == str(1 << 30)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(1 << 30)
    group.set_limits(Limits(memory_bytes=UNLIMITED, cpu=UNLIMITED, pids=UNLIMITED))
    assert (mem / "memory.limit_in_bytes").read_text() == V1_HUGE
    assert group.stats().memory_limit == UNLIMITED
    assert (tmp_path / "cpu" / "nullspace" / "sbx" / "cpu.cfs_quota_us").read_text() == "-1"
    assert (tmp_path / "pids" / "nullspace" / "sbx" / "pids.max").read_text() == "max"


def test_v1_stats(kernel: FakeKernel, tmp_path: Path) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    mem = tmp_path / "memory" / "nullspace" / "sbx"
    pids = tmp_path / "pids" / "nullspace" / "sbx"
    write(mem / "memory.usage_in_bytes", "1000")
    write(mem / "memory.max_usage_in_bytes", "5000")
    write(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    write(pids / "pids.current", "3")
    write(pids / "pids.events", "max 17\n")
    write(tmp_path / "cpuacct" / "nullspace" / "sbx" / "cpuacct.usage", "2500000")
    s = group.stats()
    assert s == cg.CgroupStats(
        memory_current=1000, memory_peak=5000, memory_limit=100 << 20, oom_kills=2,
        pids_current=3, pids_limit=32, pids_max_hits=17, cpu_usage_usec=2500,
    )  # fmt: skip
    assert group.limit_events() == cg.LimitEvents(oom_kills=2, pids_max_hits=17)
    write(mem / "memory.limit_in_bytes", V1_HUGE)
    write(pids / "pids.max", "max")
    s = group.stats()
    assert s.memory_limit == UNLIMITED and s.pids_limit == UNLIMITED


def test_v1_open_list_destroy(kernel: FakeKernel, tmp_path: Path) -> None:
    driver = cg.open_driver(mount_root=tmp_path)
    assert driver.list_names() == []
    assert driver.open("a") is None
    driver.create("a", LIMITS)
    driver.create("b", LIMITS)
    with pytest.raises(FileExistsError):
        driver.create("a", LIMITS)
    assert driver.list_names() == ["a", "b"]
    # A half-removed leftover (only in one hierarchy) is still found and removable.
    for h in ("memory", "cpu", "cpuacct", "pids"):
        shutil.rmtree(tmp_path / h / "nullspace" / "b")
    assert driver.list_names() == ["a", "b"]
    leftover = driver.open("b")
    assert leftover is not None
    leftover.destroy()
    leftover.destroy()  # idempotent
    group = driver.open("a")
    assert group is not None
    group.destroy()
    assert driver.list_names() == []
    driver.remove_root()
    assert not any(
        (tmp_path / h / "nullspace").exists() for h in ("memory", "cpu", "pids", "freezer")
    )


def test_v1_create_rolls_back_on_failure(
    kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = cg.open_driver(mount_root=tmp_path)
    real_write = kernel.write

    def failing(path: Path, value: str | int) -> None:
        if path.name == "pids.max":
            raise OSError(errno.EINVAL, "nope")
        real_write(path, value)

    monkeypatch.setattr(cg, "_write", failing)
    with pytest.raises(OSError):
        driver.create("sbx", LIMITS)
    assert driver.list_names() == []


def test_destroy_retries_while_busy_then_gives_up(kernel: FakeKernel, tmp_path: Path) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    procs = tmp_path / "pids" / "nullspace" / "sbx" / "cgroup.procs"
    write(procs, "12345\n")
    start = time.monotonic()
    with pytest.raises(cg.CgroupBusyError, match="pids"):
        group.destroy(timeout=0.05)
    assert time.monotonic() - start < 1
    write(procs, "")
    group.destroy()
    assert not (tmp_path / "pids" / "nullspace" / "sbx").exists()


def test_destroy_removes_sub_cgroups(kernel: FakeKernel, tmp_path: Path) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    kernel.mkdir(tmp_path / "memory" / "nullspace" / "sbx" / "user")
    group.destroy()
    assert cg.open_driver(mount_root=tmp_path).list_names() == []


@pytest.fixture
def sleepers() -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_v1_kill_all_freezes_kills_only_members_and_thaws(
    kernel: FakeKernel, tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    members, outsider = sleepers[:2], sleepers[2]
    listing = "".join(f"{p.pid}\n" for p in members)
    for leaf in group.leaves:
        write(leaf / "cgroup.procs", listing)
    assert sorted(group.pids()) == sorted(p.pid for p in members)
    kernel.writes.clear()
    group.kill_all(timeout=5)
    for p in members:
        assert p.wait(timeout=5) == -signal.SIGKILL
    assert outsider.poll() is None, "a pid not listed in the cgroup was signalled"
    freezer = [(f, v) for f, v in kernel.writes if f.endswith("freezer.state")]
    assert freezer == [
        ("freezer/nullspace/sbx/freezer.state", "FROZEN"),
        ("freezer/nullspace/sbx/freezer.state", "THAWED"),
    ]


def test_v1_kill_all_on_half_removed_leftover(
    kernel: FakeKernel, tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    """A crash between rmdirs leaves the group in some hierarchies only; still killable."""
    driver = cg.open_driver(mount_root=tmp_path)
    driver.create("sbx", LIMITS)
    write(tmp_path / "memory" / "nullspace" / "sbx" / "cgroup.procs", f"{sleepers[0].pid}\n")
    for h in ("freezer", "cpu", "cpuacct", "pids"):
        shutil.rmtree(tmp_path / h / "nullspace" / "sbx")
    group = driver.open("sbx")
    assert group is not None
    group.kill_all(timeout=5)
    assert sleepers[0].wait(timeout=5) == -signal.SIGKILL
    assert sleepers[1].poll() is None


def test_kill_all_times_out_on_unkillable(
    kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    monkeypatch.setattr(cg.CgroupV1, "_kill_listed", lambda self: 0)  # signals get lost
    write(group.leaves[0] / "cgroup.procs", f"{os.getpid()}\n")
    with pytest.raises(CgroupError, match="still alive"):
        group.kill_all(timeout=0.1)


def test_kill_all_on_missing_cgroup_is_a_noop(kernel: FakeKernel, tmp_path: Path) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    group.destroy()
    group.kill_all()
    group.destroy()


# --- v2 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_create_delegates_and_sets_limits(kernel: FakeKernel, tmp_path: Path) -> None:
    driver = cg.open_driver("nullspace", mount_root=tmp_path)
    group = driver.create("sbx", LIMITS)
    leaf = tmp_path / "nullspace" / "sbx"
    assert group.procs_files() == [str(leaf / "cgroup.procs")]
    assert ("cgroup.subtree_control", "+memory +pids +cpu") in kernel.writes
    assert ("nullspace/cgroup.subtree_control", "+memory +pids +cpu") in kernel.writes
    assert (leaf / "memory.max").read_text() == str(100 << 20)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "pids.max").read_text() == "32"
    group.set_limits(Limits(UNLIMITED, UNLIMITED, UNLIMITED))
    assert (leaf / "memory.max").read_text() == "max"
    assert (leaf / "cpu.max").read_text() == "max 100000"
    assert (leaf / "pids.max").read_text() == "max"
    # A second sandbox does not re-delegate.
    kernel.writes.clear()
    driver.create("sbx2", LIMITS)
    assert not [w for w in kernel.writes if "subtree_control" in w[0]]


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_nested_root(kernel: FakeKernel, tmp_path: Path) -> None:
    driver = cg.open_driver("system.slice/nullspace.service/sandboxes", mount_root=tmp_path)
    group = driver.create("sbx", LIMITS)
    assert group.leaves == (tmp_path / "system.slice/nullspace.service/sandboxes/sbx",)
    delegated = [f for f, v in kernel.writes if f.endswith("subtree_control")]
    assert delegated == [
        "cgroup.subtree_control",
        "system.slice/cgroup.subtree_control",
        "system.slice/nullspace.service/cgroup.subtree_control",
        "system.slice/nullspace.service/sandboxes/cgroup.subtree_control",
    ]
    assert driver.list_names() == ["sbx"]


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_missing_controller_is_a_clear_error(kernel: FakeKernel, tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "memory pids")
    driver = cg.open_driver(mount_root=tmp_path)
    write(tmp_path / "cgroup.controllers", "cpu")
    with pytest.raises(CgroupError, match="memory, pids"):
        driver.create("sbx", LIMITS)


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_without_cpu_controller_still_works(kernel: FakeKernel, tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "memory pids")
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    assert ("cgroup.subtree_control", "+memory +pids") in kernel.writes
    assert (group.leaves[0] / "pids.max").read_text() == "32"


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_stats(kernel: FakeKernel, tmp_path: Path) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    leaf = group.leaves[0]
    write(leaf / "memory.current", "4096")
    write(leaf / "memory.peak", "8192")
    write(leaf / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n")
    write(leaf / "pids.current", "5")
    write(leaf / "pids.events", "max 9\n")
    write(leaf / "cpu.stat", "usage_usec 777\nuser_usec 700\nsystem_usec 77\n")
    assert group.stats() == cg.CgroupStats(
        memory_current=4096, memory_peak=8192, memory_limit=100 << 20, oom_kills=1,
        pids_current=5, pids_limit=32, pids_max_hits=9, cpu_usage_usec=777,
    )  # fmt: skip
    assert group.limit_events() == cg.LimitEvents(oom_kills=1, pids_max_hits=9)
    os.remove(leaf / "memory.peak")  # kernels before 5.19
    assert group.stats().memory_peak == 4096


@pytest.mark.parametrize("kernel", [(2, False)], indirect=True)
def test_v2_kill_all_without_cgroup_kill_freezes(
    kernel: FakeKernel, tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    write(group.leaves[0] / "cgroup.procs", f"{sleepers[0].pid}\n")
    kernel.writes.clear()
    group.kill_all(timeout=5)
    assert sleepers[0].wait(timeout=5) == -signal.SIGKILL
    assert sleepers[1].poll() is None
    assert kernel.writes == [
        ("nullspace/sbx/cgroup.freeze", "1"),
        ("nullspace/sbx/cgroup.freeze", "0"),
    ]


@pytest.mark.parametrize("kernel", [(2, True)], indirect=True)
def test_v2_kill_all_uses_cgroup_kill(
    kernel: FakeKernel,
    tmp_path: Path,
    sleepers: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group = cg.open_driver(mount_root=tmp_path).create("sbx", LIMITS)
    victim = sleepers[0]
    write(group.leaves[0] / "cgroup.procs", f"{victim.pid}\n")
    real_write = kernel.write

    def kill_write(path: Path, value: str | int) -> None:
        real_write(path, value)
        if path.name == "cgroup.kill":  # the kernel kills every member
            for pid in (path.parent / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)

    monkeypatch.setattr(cg, "_write", kill_write)
    kernel.writes.clear()
    group.kill_all(timeout=5)
    assert victim.wait(timeout=5) == -signal.SIGKILL
    assert kernel.writes == [("nullspace/sbx/cgroup.kill", "1")]
    group_dir = group.leaves[0]
    write(group_dir / "cgroup.procs", "")
    group.destroy()
    assert not group_dir.exists()
