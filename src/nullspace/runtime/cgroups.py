"""One cgroup per sandbox: memory, cpu quota, pids, freeze and kill, on cgroup v1 and v2.

This machine runs cgroup **v1** (one hierarchy per controller under ``/sys/fs/cgroup``; the v2
mount at ``/sys/fs/cgroup/unified`` carries no controllers). Most modern hosts run **v2** (one
unified hierarchy with ``cgroup.controllers`` at ``/sys/fs/cgroup``). `open_driver` detects which
one is usable and returns a `CgroupDriver`; both drivers hand out `Cgroup` objects with the same
interface::

    driver = open_driver("nullspace")
    cg = driver.create(sandbox_id, Limits(memory_bytes=512 << 20, cpu=1.0, pids=256))
    # launcher: in preexec_fn, os.open/os.write b"0" into each of cg.procs_files()
    ...
    cg.kill_all()            # freeze, SIGKILL every member, thaw (v2: cgroup.kill)
    # the caller (a subreaper) reaps the killed processes, then:
    cg.destroy()

Layout: ``<mount>/<controller>/<root>/<name>`` on v1 (one leaf per hierarchy), and
``<mount>/<root>/<name>`` on v2. The sandbox is hostile, so nothing here acts on a pid it did not
read from the cgroup's own ``cgroup.procs``. Measured on this machine (runtime-probe §2): create
with limits ~0.3 ms, destroy ~0.15 ms, freeze+kill+thaw of 6 processes ~0.6 ms.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "UNLIMITED",
    "CPU_PERIOD_US",
    "Limits",
    "CgroupStats",
    "CgroupError",
    "CgroupBusyError",
    "Cgroup",
    "CgroupV1",
    "CgroupV2",
    "CgroupDriver",
    "CgroupV1Driver",
    "CgroupV2Driver",
    "open_driver",
]

UNLIMITED = -1
"""A `Limits` field set to this means "no limit"; `CgroupStats` reports unlimited the same way."""

CPU_PERIOD_US = 100_000
"""CFS period; a quota of ``cpu * CPU_PERIOD_US`` µs per period gives ``cpu`` cores."""

_MIN_CPU_QUOTA_US = 1_000  # the kernel refuses quotas below 1 ms
_V1_UNLIMITED_FLOOR = 1 << 62  # v1 reports "no memory limit" as PAGE_COUNTER_MAX * PAGE_SIZE
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

V1_REQUIRED = ("memory", "cpu", "pids", "freezer")
V1_OPTIONAL = ("cpuacct",)
V2_REQUIRED = ("memory", "pids")
V2_OPTIONAL = ("cpu",)


class CgroupError(RuntimeError):
    """The cgroup setup is unusable, or an operation on a cgroup failed."""


class CgroupBusyError(CgroupError):
    """A cgroup could not be removed because processes (often unreaped zombies) remain in it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox. Each field is positive, or `UNLIMITED` (-1).

    Attributes:
        memory_bytes: hard memory limit (RAM; swap is pinned to the same total, i.e. no swap).
        cpu: CPU bandwidth in cores, e.g. ``1.0`` → quota 100000 µs per 100000 µs period.
        pids: maximum number of tasks (processes and threads) in the cgroup.
    """

    memory_bytes: int
    cpu: float
    pids: int

    def __post_init__(self) -> None:
        for field_name in ("memory_bytes", "cpu", "pids"):
            value = getattr(self, field_name)
            if value != UNLIMITED and not value > 0:
                raise ValueError(
                    f"Limits.{field_name} must be > 0 or UNLIMITED (-1), got {value!r}"
                )

    def cpu_quota_us(self) -> int | None:
        """The CFS quota in µs for `CPU_PERIOD_US`, or None when unlimited."""
        if self.cpu == UNLIMITED:
            return None
        return max(_MIN_CPU_QUOTA_US, round(self.cpu * CPU_PERIOD_US))


@dataclass(frozen=True)
class LimitEvents:
    """The counters that say a limit was hit: OOM kills and forks refused by ``pids.max``."""

    oom_kills: int
    pids_max_hits: int


@dataclass(frozen=True)
class CgroupStats:
    """A snapshot of one cgroup's counters. Limits read back as `UNLIMITED` (-1) when unset.

    ``memory_peak`` is the high-water mark (v1 ``memory.max_usage_in_bytes``, v2 ``memory.peak``;
    equal to ``memory_current`` on v2 kernels older than 5.19, which lack ``memory.peak``).
    ``pids_max_hits`` counts forks refused because of ``pids.max``. ``cpu_usage_usec`` is the
    CPU time used (0 when the kernel does not account it here).
    """

    memory_current: int
    memory_peak: int
    memory_limit: int
    oom_kills: int
    pids_current: int
    pids_limit: int
    pids_max_hits: int
    cpu_usage_usec: int = 0


# --- small file helpers ---------------------------------------------------------------------


def _write(path: Path, value: str | int) -> None:
    """Write a control file in one write(2), as cgroupfs expects."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _mkdir(path: Path) -> None:
    """mkdir one cgroup (the kernel fills it with control files). A seam for unit tests."""
    os.mkdir(path)


def _rmdir(path: Path) -> None:
    """rmdir one cgroup (EBUSY while it has members). A seam for unit tests."""
    os.rmdir(path)


def _ensure_dirs(base: Path, parts: Iterable[str]) -> Path:
    """Create base/part1/part2/... as cgroups where missing; returns the last one."""
    path = base
    for part in parts:
        path = path / part
        try:
            _mkdir(path)
        except FileExistsError:
            pass
    return path


def _read(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read().decode().strip()


def _read_int(path: Path, default: int = 0) -> int:
    """An integer control file; "max" and v1's huge "unlimited" values read as UNLIMITED."""
    try:
        text = _read(path)
    except FileNotFoundError:
        return default
    if text == "max":
        return UNLIMITED
    value = int(text)
    return UNLIMITED if value >= _V1_UNLIMITED_FLOOR else value


def _read_keyed(path: Path, key: str, default: int = 0) -> int:
    """One value of a flat-keyed file such as ``memory.events`` (``oom_kill 3``)."""
    try:
        text = _read(path)
    except FileNotFoundError:
        return default
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return default


def _read_pids(path: Path) -> list[int]:
    try:
        text = _read(path)
    except FileNotFoundError:
        return []
    return [int(line) for line in text.split()]


def _is_dead(pid: int) -> bool:
    """True when the pid is gone or a zombie (dead, waiting to be reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state in (b"Z", b"X", b"x")


def _check_name(name: str, what: str = "cgroup name") -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (max 128)")
    return name


def _check_root(root: str) -> tuple[str, ...]:
    parts = tuple(p for p in root.strip("/").split("/") if p)
    if not parts:
        raise ValueError("cgroup root must not be empty")
    for part in parts:
        _check_name(part, "cgroup root component")
    return parts


def _walk_bottom_up(leaf: Path) -> Iterator[Path]:
    """The leaf's descendant directories (deepest first), then the leaf itself."""
    for dirpath, _dirnames, _files in os.walk(leaf, topdown=False):
        yield Path(dirpath)


def _rmdir_tree(leaf: Path) -> bool:
    """rmdir the leaf and any sub-cgroups; True when gone, False when still busy."""
    try:
        for path in _walk_bottom_up(leaf):
            _rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise
    return not leaf.exists()


# --- the per-sandbox cgroup -----------------------------------------------------------------


class Cgroup(ABC):
    """One sandbox's cgroup (one leaf per hierarchy on v1, one on v2)."""

    name: str

    def __init__(self, name: str, leaves: Iterable[Path]) -> None:
        self.name = name
        self._leaves: tuple[Path, ...] = tuple(leaves)
        self._procs_files: tuple[str, ...] = tuple(
            str(leaf / "cgroup.procs") for leaf in self._leaves
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, leaves={[str(p) for p in self._leaves]})"

    @property
    def leaves(self) -> tuple[Path, ...]:
        """The cgroup's directories (v1: one per hierarchy; v2: one)."""
        return self._leaves

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` paths a process must be written into to join this cgroup.

        Precomputed strings, so a launcher can use them in a ``preexec_fn`` with only
        ``os.open``/``os.write`` (writing ``b"0"`` moves the writing process itself).
        """
        return list(self._procs_files)

    def attach(self, pid: int) -> None:
        """Move a process (the whole thread group) into this cgroup, in every hierarchy."""
        for path in self._procs_files:
            _write(Path(path), pid)

    def pids(self) -> list[int]:
        """Pids of every process in this cgroup and its sub-cgroups (v1: all hierarchies)."""
        seen: dict[int, None] = {}
        for leaf in self._leaves:
            for directory in _walk_bottom_up(leaf):
                for pid in _read_pids(directory / "cgroup.procs"):
                    seen[pid] = None
        return list(seen)

    def live_pids(self) -> list[int]:
        """`pids` without zombies: the processes that still run (or are frozen)."""
        return [pid for pid in self.pids() if not _is_dead(pid)]

    @abstractmethod
    def stats(self) -> CgroupStats:
        """Current usage, limits and event counters."""

    @abstractmethod
    def limit_events(self) -> LimitEvents:
        """Just the limit counters: two small reads, taken around every run."""

    @abstractmethod
    def cpu_usage_usec(self) -> int:
        """CPU time used by every member so far (one small read)."""

    @abstractmethod
    def set_limits(self, limits: Limits) -> None:
        """Apply memory (no swap), CPU quota and pids limits."""

    @abstractmethod
    def _freeze(self) -> None: ...

    @abstractmethod
    def _wait_frozen(self, deadline: float) -> bool: ...

    @abstractmethod
    def _thaw(self) -> None: ...

    def freeze(self, timeout: float = 2.0) -> bool:
        """Stop every member (freezer); True once the kernel reports the cgroup frozen."""
        self._freeze()
        return self._wait_frozen(time.monotonic() + timeout)

    def thaw(self) -> None:
        """Let a frozen cgroup run again."""
        self._thaw()

    @abstractmethod
    def release_memory(self, keep_bytes: int) -> None:
        """Push a frozen cgroup's pages out to swap until about `keep_bytes` stay resident.

        Best effort, never an OOM kill: what cannot be reclaimed (no swap, unreclaimable
        pages) stays resident. `restore_memory` undoes it.
        """

    @abstractmethod
    def restore_memory(self, memory_bytes: int) -> None:
        """Give the cgroup its memory limit back after `release_memory` (pages swap in lazily)."""

    def _kill_native(self) -> bool:
        """Kill every member with one kernel operation if the kernel offers one (v2 cgroup.kill)."""
        return False

    def _kill_listed(self) -> int:
        """SIGKILL each pid listed in the cgroup right now; returns how many were signalled."""
        count = 0
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
                count += 1
            except ProcessLookupError:
                pass
        return count

    def kill_all(self, timeout: float = 2.0) -> None:
        """SIGKILL every process in the cgroup and wait (up to `timeout`) until none runs.

        v2 uses ``cgroup.kill`` when present; otherwise the cgroup is frozen so nothing can fork
        or exit while its members are listed and signalled, then thawed so the signals land.
        Only pids read from the cgroup's own ``cgroup.procs`` are signalled. Killed processes
        stay as zombies until their parent reaps them: the caller (a subreaper) must reap
        before `destroy`. Raises `CgroupError` if live processes remain after `timeout`.
        """
        if not any(leaf.exists() for leaf in self._leaves):
            return
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            if not self._kill_native():
                try:
                    self._freeze()
                    frozen = True
                except FileNotFoundError:  # a half-removed leftover: kill without freezing
                    frozen = False
                try:
                    if frozen:
                        self._wait_frozen(deadline)
                    self._kill_listed()
                finally:
                    if frozen:
                        self._thaw()
            # Signals are delivered on thaw; wait for the members to die (zombies are fine).
            while True:
                alive = self.live_pids()
                if not alive:
                    return
                if time.monotonic() >= deadline:
                    raise CgroupError(
                        f"cgroup {self.name}: processes still alive after kill: {alive}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
                if delay >= 0.02:
                    break  # something survived a whole round (e.g. forked during attach): again

    def destroy(self, timeout: float = 1.0) -> None:
        """Remove the cgroup directories (v1: in every hierarchy). Idempotent.

        Retries for up to `timeout` while the kernel says busy: killed processes leave the
        cgroup only once reaped. Raises `CgroupBusyError` if it is still busy then.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        remaining = list(self._leaves)
        while True:
            remaining = [leaf for leaf in remaining if not _rmdir_tree(leaf)]
            if not remaining:
                return
            if time.monotonic() >= deadline:
                raise CgroupBusyError(
                    f"cgroup {self.name} still busy after {timeout}s (unreaped processes?): "
                    + ", ".join(str(p) for p in remaining)
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class CgroupV1(Cgroup):
    """A sandbox cgroup on the v1 hierarchies (memory, cpu, pids, freezer, optionally cpuacct)."""

    def __init__(self, name: str, dirs: dict[str, Path]) -> None:
        # Several controllers can share one hierarchy (e.g. "cpu,cpuacct"): one leaf each.
        unique = list(dict.fromkeys(dirs.values()))
        super().__init__(name, unique)
        self._dirs = dict(dirs)

    def _dir(self, controller: str) -> Path | None:
        return self._dirs.get(controller)

    def set_limits(self, limits: Limits) -> None:
        mem = self._dirs["memory"]
        self._set_memory(mem, limits.memory_bytes)
        cpu = self._dirs["cpu"]
        quota = limits.cpu_quota_us()
        _write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
        _write(cpu / "cpu.cfs_quota_us", -1 if quota is None else quota)
        _write(self._dirs["pids"] / "pids.max", "max" if limits.pids == UNLIMITED else limits.pids)

    @staticmethod
    def _set_memory(mem: Path, value: int) -> None:
        limit = mem / "memory.limit_in_bytes"
        memsw = mem / "memory.memsw.limit_in_bytes"
        has_memsw = memsw.exists()
        try:
            _write(limit, value)
        except OSError as exc:
            # The kernel keeps limit <= memsw.limit: raising the limit needs memsw raised first.
            if exc.errno != errno.EINVAL or not has_memsw:
                raise
            _write(memsw, value)
            _write(limit, value)
        if has_memsw:
            try:
                _write(memsw, value)  # RAM + swap == RAM: no swap escape
            except OSError as exc:
                log.warning("cannot set %s (%s): swap is not limited", memsw, exc)

    def release_memory(self, keep_bytes: int) -> None:
        # Lowering memory.limit_in_bytes below usage makes the kernel reclaim (swap out) in the
        # writer's context; memsw.limit stays, so RAM + swap is still bounded by the old limit.
        # When the target cannot be reached the write fails with EBUSY (v1 never OOM-kills for
        # a limit write): try doubling targets, and keep the lowest limit that took.
        limit = self._dirs["memory"] / "memory.limit_in_bytes"
        current = _read_int(limit, UNLIMITED)
        target = max(keep_bytes, 1 << 20)
        while target < current:
            try:
                _write(limit, target)
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            target *= 2

    def restore_memory(self, memory_bytes: int) -> None:
        self._set_memory(self._dirs["memory"], memory_bytes)

    def limit_events(self) -> LimitEvents:
        return LimitEvents(
            oom_kills=_read_keyed(self._dirs["memory"] / "memory.oom_control", "oom_kill"),
            pids_max_hits=_read_keyed(self._dirs["pids"] / "pids.events", "max"),
        )

    def cpu_usage_usec(self) -> int:
        cpuacct = self._dir("cpuacct")
        return max(_read_int(cpuacct / "cpuacct.usage"), 0) // 1000 if cpuacct is not None else 0

    def stats(self) -> CgroupStats:
        mem = self._dirs["memory"]
        pids = self._dirs["pids"]
        cpuacct = self._dir("cpuacct")
        usage_ns = _read_int(cpuacct / "cpuacct.usage") if cpuacct is not None else 0
        return CgroupStats(
            memory_current=_read_int(mem / "memory.usage_in_bytes"),
            memory_peak=_read_int(mem / "memory.max_usage_in_bytes"),
            memory_limit=_read_int(mem / "memory.limit_in_bytes", UNLIMITED),
            oom_kills=_read_keyed(mem / "memory.oom_control", "oom_kill"),
            pids_current=_read_int(pids / "pids.current"),
            pids_limit=_read_int(pids / "pids.max", UNLIMITED),
            pids_max_hits=_read_keyed(pids / "pids.events", "max"),
            cpu_usage_usec=max(usage_ns, 0) // 1000,
        )

    def _freeze(self) -> None:
        _write(self._dirs["freezer"] / "freezer.state", "FROZEN")

    def _wait_frozen(self, deadline: float) -> bool:
        state_file = self._dirs["freezer"] / "freezer.state"
        delay = 0.0002
        while True:
            state = _read(state_file)
            if state == "FROZEN":
                return True
            if time.monotonic() >= deadline:
                log.warning("cgroup %s: freezer still %s; killing anyway", self.name, state)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _thaw(self) -> None:
        try:
            _write(self._dirs["freezer"] / "freezer.state", "THAWED")
        except FileNotFoundError:
            pass


class CgroupV2(Cgroup):
    """A sandbox cgroup in the unified (v2) hierarchy."""

    def __init__(self, name: str, leaf: Path) -> None:
        super().__init__(name, [leaf])
        self._leaf = leaf

    def set_limits(self, limits: Limits) -> None:
        leaf = self._leaf
        _write(
            leaf / "memory.max", "max" if limits.memory_bytes == UNLIMITED else limits.memory_bytes
        )
        swap = leaf / "memory.swap.max"
        if swap.exists():
            _write(swap, 0)
        cpu_max = leaf / "cpu.max"
        quota = limits.cpu_quota_us()
        if cpu_max.exists():
            _write(cpu_max, f"{'max' if quota is None else quota} {CPU_PERIOD_US}")
        elif quota is not None:
            log.warning("cgroup %s: cpu controller not enabled, CPU quota not applied", self.name)
        _write(leaf / "pids.max", "max" if limits.pids == UNLIMITED else limits.pids)

    def release_memory(self, keep_bytes: int) -> None:
        # Lowering memory.max below usage would OOM-kill when reclaim falls short: use
        # memory.reclaim (5.19+) or memory.high instead, which only reclaim.
        leaf = self._leaf
        swap = leaf / "memory.swap.max"
        if swap.exists():
            _write(swap, "max")
        current = _read_int(leaf / "memory.current")
        reclaim = leaf / "memory.reclaim"
        if reclaim.exists():
            try:
                _write(reclaim, max(current - keep_bytes, 0))
            except OSError as exc:
                if exc.errno != errno.EAGAIN:  # could not reclaim all of it: fine
                    raise
        else:
            _write(leaf / "memory.high", max(keep_bytes, 1 << 20))

    def restore_memory(self, memory_bytes: int) -> None:
        leaf = self._leaf  # memory.max was never lowered
        high = leaf / "memory.high"
        if high.exists():
            _write(high, "max")
        swap = leaf / "memory.swap.max"
        if swap.exists():
            _write(swap, 0)  # what is in swap stays there until touched; nothing new goes out

    def limit_events(self) -> LimitEvents:
        return LimitEvents(
            oom_kills=_read_keyed(self._leaf / "memory.events", "oom_kill"),
            pids_max_hits=_read_keyed(self._leaf / "pids.events", "max"),
        )

    def cpu_usage_usec(self) -> int:
        return _read_keyed(self._leaf / "cpu.stat", "usage_usec")

    def stats(self) -> CgroupStats:
        leaf = self._leaf
        current = _read_int(leaf / "memory.current")
        peak_file = leaf / "memory.peak"
        return CgroupStats(
            memory_current=current,
            memory_peak=_read_int(peak_file) if peak_file.exists() else current,
            memory_limit=_read_int(leaf / "memory.max", UNLIMITED),
            oom_kills=_read_keyed(leaf / "memory.events", "oom_kill"),
            pids_current=_read_int(leaf / "pids.current"),
            pids_limit=_read_int(leaf / "pids.max", UNLIMITED),
            pids_max_hits=_read_keyed(leaf / "pids.events", "max"),
            cpu_usage_usec=_read_keyed(leaf / "cpu.stat", "usage_usec"),
        )

    def _kill_native(self) -> bool:
        kill_file = self._leaf / "cgroup.kill"
        if not kill_file.exists():
            return False
        _write(kill_file, 1)
        return True

    def _freeze(self) -> None:
        _write(self._leaf / "cgroup.freeze", 1)

    def _wait_frozen(self, deadline: float) -> bool:
        delay = 0.0002
        while True:
            if _read_keyed(self._leaf / "cgroup.events", "frozen") == 1:
                return True
            if time.monotonic() >= deadline:
                log.warning("cgroup %s: not frozen in time; killing anyway", self.name)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _thaw(self) -> None:
        try:
            _write(self._leaf / "cgroup.freeze", 0)
        except FileNotFoundError:
            pass


# --- drivers --------------------------------------------------------------------------------


class CgroupDriver(ABC):
    """Creates, opens and lists the sandbox cgroups under one root group."""

    version: int

    def __init__(self, root: str, mount_root: Path) -> None:
        self.root = "/".join(_check_root(root))
        self.mount_root = mount_root

    @abstractmethod
    def create(self, name: str, limits: Limits) -> Cgroup:
        """Create ``<root>/<name>`` with `limits`; raises FileExistsError if it exists."""

    @abstractmethod
    def open(self, name: str) -> Cgroup | None:
        """The existing cgroup `name` (even if only partly present), or None."""

    @abstractmethod
    def _root_dirs(self) -> list[Path]: ...

    def list_names(self) -> list[str]:
        """Names of the cgroups under the root: leftovers to clean up at server start."""
        names: set[str] = set()
        for root_dir in self._root_dirs():
            try:
                entries = list(os.scandir(root_dir))
            except FileNotFoundError:
                continue
            names.update(
                e.name
                for e in entries
                if e.is_dir(follow_symlinks=False) and _NAME_RE.match(e.name)
            )
        return sorted(names)

    def remove_root(self) -> None:
        """rmdir the (empty) root group itself; a no-op while sandboxes remain in it."""
        for root_dir in self._root_dirs():
            try:
                _rmdir(root_dir)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise


class CgroupV1Driver(CgroupDriver):
    """cgroup v1: one directory per sandbox in each controller hierarchy."""

    version = 1

    def __init__(self, root: str, mount_root: Path, hierarchies: dict[str, Path]) -> None:
        super().__init__(root, mount_root)
        self.hierarchies = dict(hierarchies)  # controller → hierarchy mount dir

    def _root_dirs(self) -> list[Path]:
        return [h / self.root for h in dict.fromkeys(self.hierarchies.values())]

    def _dirs(self, name: str) -> dict[str, Path]:
        return {ctrl: h / self.root / name for ctrl, h in self.hierarchies.items()}

    def create(self, name: str, limits: Limits) -> Cgroup:
        _check_name(name)
        dirs = self._dirs(name)
        parts = self.root.split("/")
        created: list[Path] = []
        try:
            for hierarchy in dict.fromkeys(self.hierarchies.values()):
                leaf = _ensure_dirs(hierarchy, parts) / name
                _mkdir(leaf)  # FileExistsError: never adopt someone else's group
                created.append(leaf)
            cgroup = CgroupV1(name, dirs)
            cgroup.set_limits(limits)
        except BaseException:
            for leaf in reversed(created):
                _rmdir_tree(leaf)
            raise
        return cgroup

    def open(self, name: str) -> Cgroup | None:
        _check_name(name)
        dirs = self._dirs(name)
        if not any(d.is_dir() for d in dirs.values()):
            return None
        return CgroupV1(name, dirs)


class CgroupV2Driver(CgroupDriver):
    """cgroup v2: one directory per sandbox under ``<mount>/<root>``."""

    version = 2

    def __init__(self, root: str, mount_root: Path) -> None:
        super().__init__(root, mount_root)
        self._root_dir = mount_root / self.root
        self._enabled = False

    def _root_dirs(self) -> list[Path]:
        return [self._root_dir]

    def _enable_controllers(self) -> None:
        """Create the root group (and its ancestors) and delegate memory, cpu and pids to it.

        Writes ``+memory +cpu +pids`` into ``cgroup.subtree_control`` of the mount root, of each
        ancestor and of the root group itself, so every sandbox leaf gets those controllers.
        """
        if self._enabled:
            return
        path = self.mount_root
        self._delegate(path)
        for part in self.root.split("/"):
            path = _ensure_dirs(path, [part])
            self._delegate(path)
        self._enabled = True

    @staticmethod
    def _delegate(group: Path) -> None:
        available = _read(group / "cgroup.controllers").split()
        enabled = _read(group / "cgroup.subtree_control").split()
        absent = [c for c in V2_REQUIRED if c not in available]
        if absent:
            raise CgroupError(
                f"cgroup v2 group {group} does not offer the {', '.join(absent)} controller(s)"
            )
        missing = [c for c in V2_REQUIRED + V2_OPTIONAL if c in available and c not in enabled]
        if not missing:
            return
        control = group / "cgroup.subtree_control"
        try:
            _write(control, " ".join(f"+{c}" for c in missing))
            return
        except OSError:
            pass
        for c in missing:  # one by one, so an unusable cpu controller does not block memory
            try:
                _write(control, f"+{c}")
            except OSError as exc:
                if c in V2_REQUIRED:
                    raise CgroupError(
                        f"cannot enable the {c} controller in {control} ({exc}); note that a"
                        " non-root cgroup that holds processes cannot delegate controllers"
                    ) from exc
                log.warning("cannot enable the %s controller in %s: %s", c, control, exc)

    def create(self, name: str, limits: Limits) -> Cgroup:
        _check_name(name)
        self._enable_controllers()
        leaf = self._root_dir / name
        _mkdir(leaf)
        cgroup = CgroupV2(name, leaf)
        try:
            cgroup.set_limits(limits)
        except BaseException:
            _rmdir_tree(leaf)
            raise
        return cgroup

    def open(self, name: str) -> Cgroup | None:
        _check_name(name)
        leaf = self._root_dir / name
        return CgroupV2(name, leaf) if leaf.is_dir() else None


# --- detection ------------------------------------------------------------------------------


def _v2_controllers(mount_root: Path) -> set[str] | None:
    try:
        return set(_read(mount_root / "cgroup.controllers").split())
    except (FileNotFoundError, NotADirectoryError):
        return None


def _v1_hierarchies(mount_root: Path) -> dict[str, Path]:
    """controller → hierarchy dir, from directory names such as ``memory`` or ``cpu,cpuacct``.

    Symlinked aliases (``cpu -> cpu,cpuacct``) are resolved so one hierarchy is used once.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(mount_root.iterdir())
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.is_dir() or not (entry / "cgroup.procs").exists():
            continue
        for controller in entry.name.split(","):
            found.setdefault(controller, entry.resolve())
    return found


def open_driver(
    root: str = "nullspace",
    *,
    mount_root: Path = Path("/sys/fs/cgroup"),
    version: int | None = None,
) -> CgroupDriver:
    """Detect the usable cgroup version and return its driver.

    v2 is chosen when ``<mount_root>/cgroup.controllers`` lists memory and pids; otherwise v1 is
    used when memory, cpu, pids and freezer hierarchies are mounted under `mount_root`. `root`
    is the group that holds all sandboxes (a relative path; on v2 with systemd, a delegated
    subtree such as ``system.slice/nullspace.service/sandboxes`` is the polite choice). Pass
    `version` to force one. Raises `CgroupError` naming what is missing.
    """
    v2 = _v2_controllers(mount_root)
    if version in (None, 2) and v2 is not None and set(V2_REQUIRED) <= v2:
        return CgroupV2Driver(root, mount_root)
    if version == 2:
        have = "no cgroup.controllers" if v2 is None else f"controllers {sorted(v2)}"
        raise CgroupError(
            f"cgroup v2 at {mount_root} is unusable: need {list(V2_REQUIRED)}, {have}"
        )
    hierarchies = _v1_hierarchies(mount_root)
    missing = [c for c in V1_REQUIRED if c not in hierarchies]
    if not missing:
        wanted = {c: hierarchies[c] for c in V1_REQUIRED + V1_OPTIONAL if c in hierarchies}
        return CgroupV1Driver(root, mount_root, wanted)
    v2_note = (
        "no cgroup v2 (cgroup.controllers) there"
        if v2 is None
        else f"cgroup v2 there lacks {sorted(set(V2_REQUIRED) - v2)}"
    )
    raise CgroupError(
        f"no usable cgroup setup under {mount_root}: {v2_note}, and cgroup v1 lacks the "
        f"{', '.join(missing)} hierarchies (need {', '.join(V1_REQUIRED)}). "
        "Mount them or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)."
    )
