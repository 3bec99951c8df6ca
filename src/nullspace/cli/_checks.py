"""Host checks for `nullspace doctor`: each one tries what the server will do and says, when it
fails, what is wrong and the command that fixes it.

Checks that can act (cgroups, bubblewrap, overlay) act for real and undo what they did: a
probe cgroup, an unprivileged `bwrap --unshare-all`, a tmpfs + overlay mount under the data
dir, like a sandbox gets. Paths come from `Host`, so a test can point a check at a fake
root (an empty cgroup mount, say) and see it fail with its fix.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
BWRAP_MIN = (0, 7, 0)  # --size for tmpfs mounts (0.7.0); --add-seccomp-fd, --perms (0.5.0)
PROBE_UID = 65534  # nobody: the unprivileged bwrap probe runs as a uid with no rights, like sandboxes
DISK_WANT, DISK_MIN = 3 << 30, 1200 << 20  # the code-interpreter template is 1.1 GiB
MEMORY_WANT, MEMORY_MIN = 2 << 30, 512 << 20
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37


@dataclass(frozen=True)
class Check:
    """One prerequisite: `status` ok / warn (works, but worse) / fail (blocks sandboxes)."""

    name: str
    status: str
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Host:
    """Where to look; every default is the real host's path."""

    data_dir: Path
    cgroup_fs: Path = Path("/sys/fs/cgroup")
    proc: Path = Path("/proc")
    bwrap: str = "/usr/bin/bwrap"
    api_health: Callable[[], str | None] | None = field(default=None, compare=False)
    """Returns None when the server answered, else why not (None for the whole check: skipped)."""


def _as_root(command: str) -> str:
    """`command` as the user types it: with sudo when we are not root and sudo exists."""
    if os.geteuid() == 0:
        return command
    return f"sudo {command}" if shutil.which("sudo") else f"su -c '{command}'"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


# -- the checks --------------------------------------------------------------------------------


def check_root(host: Host) -> Check:
    if os.geteuid() == 0:
        return Check("root", OK, "running as root")
    how = "sudo nullspace doctor" if shutil.which("sudo") else "su -c 'nullspace doctor' (sudo is not installed)"
    return Check("root", FAIL, f"running as uid {os.geteuid()}: the server creates cgroups, mounts and "
                 "per-sandbox users, so it and this check need root", f"run as root: {how}")


def check_cgroups(host: Host) -> Check:
    from ..runtime.cgroups import V1_REQUIRED, V2_OPTIONAL, V2_REQUIRED, CgroupError, Limits, open_driver

    fs = host.cgroup_fs
    controllers = _read(fs / "cgroup.controllers")
    if controllers is not None:
        have = set(controllers.split())
        missing = [c for c in V2_REQUIRED if c not in have]
        if missing:
            return Check("cgroups", FAIL, f"cgroup v2 at {fs} does not offer {', '.join(missing)}",
                         _as_root(f"sh -c 'echo \"{' '.join('+' + c for c in missing)}\" > {fs.parent}/cgroup.subtree_control'")
                         + " (the parent group must delegate them; in a container: run it with a private, writable "
                         "cgroup v2 namespace, e.g. docker run --cgroupns=private --privileged)")
        kind = f"v2 ({', '.join(c for c in V2_REQUIRED + V2_OPTIONAL if c in have)})"
        if "cpu" not in have:
            return Check("cgroups", WARN, f"cgroup {kind}: no cpu controller, so CPU limits do not apply",
                         _as_root(f"sh -c 'echo +cpu > {fs.parent}/cgroup.subtree_control'"))
    else:
        try:
            entries = [e.name for e in fs.iterdir()]
        except OSError:
            entries = []
        found = {c for e in entries for c in e.split(",") if (fs / e / "cgroup.procs").exists()}
        missing = [c for c in V1_REQUIRED if c not in found]
        if missing and not found:
            return Check("cgroups", FAIL, f"no cgroup filesystem at {fs} (neither v2's cgroup.controllers nor v1 "
                         "hierarchies)", _as_root(f"mount -t cgroup2 none {fs}"))
        if missing:
            mounts = "; ".join(f"mkdir -p {fs}/{c} && mount -t cgroup -o {c} none {fs}/{c}" for c in missing)
            return Check("cgroups", FAIL, f"cgroup v1 at {fs} lacks the {', '.join(missing)} hierarchies",
                         _as_root(f"sh -c '{mounts}'"))
        kind = "v1 (" + ", ".join(V1_REQUIRED) + ")"
    if os.geteuid() != 0:
        return Check("cgroups", WARN, f"cgroup {kind} found; not root, so no probe group was created", None)
    root = f"nullspace-doctor-{os.getpid()}"
    try:
        driver = open_driver(root, mount_root=fs)
        group = driver.create("probe", Limits(memory_bytes=64 << 20, cpu=0.5, pids=16))
        group.destroy()
        driver.remove_root()
    except (CgroupError, OSError) as exc:
        return Check("cgroups", FAIL, f"cgroup {kind}, but a sandbox group with limits could not be made: {exc}",
                     "give this host (or container) a writable cgroup tree: on v2 the group the server runs in "
                     "must be able to delegate memory, cpu and pids (docker run --cgroupns=private --privileged)")
    return Check("cgroups", OK, f"cgroup {kind}; a probe group with memory, cpu and pids limits worked")


def check_userns(host: Host) -> Check:
    sysctls = {
        "user.max_user_namespaces": ("user/max_user_namespaces", lambda v: int(v) > 0, "15000"),
        "kernel.unprivileged_userns_clone": ("kernel/unprivileged_userns_clone", lambda v: v == "1", "1"),
        "kernel.apparmor_restrict_unprivileged_userns": (
            "kernel/apparmor_restrict_unprivileged_userns", lambda v: v == "0", "0"),
    }
    for name, (rel, good, want) in sysctls.items():
        value = _read(host.proc / "sys" / rel)
        if value is not None and not good(value):
            return Check("user namespaces", FAIL,
                         f"{name} = {value}: sandboxes need unprivileged user namespaces",
                         _as_root(f"sysctl -w {name}={want}") + f" (and keep it: echo '{name} = {want}' > "
                         "/etc/sysctl.d/90-nullspace.conf)")
    if not Path(host.bwrap).exists():
        return Check("user namespaces", WARN, "not probed: bubblewrap is missing (see below)")
    if os.geteuid() != 0:
        return Check("user namespaces", OK, "sysctls allow them (not root: no probe)")

    def drop() -> None:
        os.setgroups([])
        os.setresgid(PROBE_UID, PROBE_UID, PROBE_UID)
        os.setresuid(PROBE_UID, PROBE_UID, PROBE_UID)

    argv = [host.bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        result = subprocess.run(argv, preexec_fn=drop, capture_output=True, text=True, timeout=20, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("user namespaces", FAIL, f"could not run bubblewrap: {exc}")
    if result.returncode != 0:
        return Check("user namespaces", FAIL, "an unprivileged `bwrap --unshare-all` failed: "
                     f"{(result.stderr or result.stdout).strip()[:300]}",
                     "allow unprivileged user namespaces: " + _as_root("sysctl -w user.max_user_namespaces=15000")
                     + "; in a container, run it with --privileged (or a seccomp/AppArmor profile that "
                     "allows unshare)")
    return Check("user namespaces", OK, "an unprivileged bwrap --unshare-all ran (all namespaces)")


def check_bwrap(host: Host) -> Check:
    install = _as_root("apt-get install -y bubblewrap")
    if not Path(host.bwrap).exists():
        return Check("bubblewrap", FAIL, f"{host.bwrap} is missing", install)
    try:
        out = subprocess.run([host.bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("bubblewrap", FAIL, f"{host.bwrap} --version failed: {exc}", install)
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        return Check("bubblewrap", FAIL, f"cannot read the version of {host.bwrap}: {out.strip()!r}", install)
    version = tuple(int(g or 0) for g in match.groups())
    want = ".".join(map(str, BWRAP_MIN))
    if version < BWRAP_MIN:
        return Check("bubblewrap", FAIL, f"bubblewrap {match.group(0)} is older than {want} (needs --size, "
                     "--add-seccomp-fd)", install + " (from a newer release: Debian 12 has 0.8.0)")
    if os.stat(host.bwrap).st_mode & 0o4000:
        return Check("bubblewrap", WARN, f"bubblewrap {match.group(0)} is setuid root; nullspace uses user "
                     "namespaces and needs no setuid", _as_root(f"chmod u-s {host.bwrap}"))
    return Check("bubblewrap", OK, f"bubblewrap {match.group(0)} (>= {want})")


def check_seccomp(host: Host) -> Check:
    status = _read(host.proc / "self" / "status") or ""
    if "Seccomp:" not in status:
        return Check("seccomp", FAIL, "the kernel has no seccomp (no Seccomp: line in /proc/self/status)",
                     "boot a kernel built with CONFIG_SECCOMP_FILTER=y (every Debian kernel is)")
    actions = _read(host.proc / "sys" / "kernel" / "seccomp" / "actions_avail")
    if actions is not None and "errno" not in actions.split():
        return Check("seccomp", FAIL, f"seccomp cannot return errors (actions: {actions})",
                     "boot a kernel with seccomp filter support")
    try:
        from ..runtime import seccomp

        programs = seccomp.sandbox_filters()
    except Exception as exc:  # libseccomp missing or too old
        return Check("seccomp", FAIL, f"cannot build the sandbox filters: {exc}",
                     _as_root("apt-get install -y libseccomp2"))
    return Check("seccomp", OK, f"{len(programs)} filters built with libseccomp")


def check_overlay(host: Host) -> Check:
    from ..runtime import mounts

    if "overlay" not in (_read(host.proc / "filesystems") or ""):
        return Check("overlayfs", FAIL, "the kernel has no overlay filesystem", _as_root("modprobe overlay"))
    if os.geteuid() != 0:
        return Check("overlayfs", WARN, "the kernel has overlayfs; not root, so no probe mount")
    parent = _existing(host.data_dir)
    if parent != host.data_dir:
        return Check("overlayfs", WARN, f"{host.data_dir} does not exist yet; overlayfs is in the kernel",
                     _as_root(f"mkdir -p {host.data_dir}") + " then run doctor again to probe it")
    scratch = Path(tempfile.mkdtemp(prefix=".doctor-", dir=host.data_dir))
    try:
        lower = scratch / "lower"
        lower.mkdir()
        (lower / "probe").write_text("lower\n")
        sfs = mounts.prepare(scratch / "sandbox", lower, uid=PROBE_UID, gid=PROBE_UID,
                             disk_bytes=1 << 20, home="/home/user")
        (sfs.root / "probe").write_text("upper\n")
        if (lower / "probe").read_text() != "lower\n":
            raise OSError("a write through the overlay changed the lower layer")
    except OSError as exc:
        fstype = _fstype(host.data_dir, host.proc)
        return Check("overlayfs", FAIL, f"tmpfs + overlay mount under {host.data_dir} ({fstype}) failed: {exc}",
                     "put the data dir on a local filesystem (ext4, xfs, btrfs): nullspace serve --data-dir "
                     "/var/lib/nullspace (or NULLSPACE_HOME), and in a container run with --privileged")
    finally:
        mounts.teardown(scratch / "sandbox")
        shutil.rmtree(scratch, ignore_errors=True)
    return Check("overlayfs", OK, f"tmpfs + overlay mount under {host.data_dir} ({_fstype(host.data_dir, host.proc)}) worked")


def check_disk(host: Host) -> Check:
    where = _existing(host.data_dir)
    free = shutil.disk_usage(where).free
    text = f"{free / 2**30:.1f} GiB free on {where}"
    fix = "free space there, or put the data dir on a bigger disk: nullspace serve --data-dir DIR (and NULLSPACE_HOME=DIR)"
    if free < DISK_MIN:
        return Check("disk", FAIL, text + " (the code-interpreter template needs 1.1 GiB)", fix)
    if free < DISK_WANT:
        return Check("disk", WARN, text + " (templates need 1.1 GiB each; builds need more)", fix)
    return Check("disk", OK, text)


def check_memory(host: Host) -> Check:
    info = _read(host.proc / "meminfo") or ""
    match = re.search(r"^MemAvailable:\s+(\d+) kB", info, re.M)
    if not match:
        return Check("memory", WARN, "cannot read MemAvailable from /proc/meminfo")
    available = int(match.group(1)) << 10
    text = f"{available / 2**30:.1f} GiB available"
    if available < MEMORY_MIN:
        return Check("memory", FAIL, text + " (a sandbox with the Python kernel needs ~70 MiB, the server more)",
                     "stop other workloads, or give the machine more memory")
    if available < MEMORY_WANT:
        return Check("memory", WARN, text + " (sandboxes get 1 GiB limits by default)",
                     "create sandboxes with memory_mb=... below it, or give the machine more memory")
    return Check("memory", OK, text)


def check_swap(host: Host) -> Check:
    """Paused sandboxes move their memory to swap (docs/pause.md); without it they keep it."""
    info = _read(host.proc / "meminfo") or ""
    match = re.search(r"^SwapTotal:\s+(\d+) kB", info, re.M)
    total = int(match.group(1)) << 10 if match else 0
    if total == 0:
        return Check("swap", WARN, "no swap: pause() freezes sandboxes but their memory stays in RAM",
                     _as_root("NULLSPACE_SWAP_MB=4096 scripts/setup.sh") + "  (or swapon a swap device; "
                     "encrypt it where tenants' data must not reach disk in clear)")
    free = re.search(r"^SwapFree:\s+(\d+) kB", info, re.M)
    left = int(free.group(1)) << 10 if free else 0
    return Check("swap", OK, f"{total / 2**30:.1f} GiB of swap ({left / 2**30:.1f} GiB free) for paused sandboxes")


def check_subreaper(host: Host) -> Check:
    libc = ctypes.CDLL(None, use_errno=True)
    was = ctypes.c_int(0)
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        return Check("subreaper", FAIL, f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}",
                     "run on Linux 3.4 or newer")
    libc.prctl(PR_SET_CHILD_SUBREAPER, was.value, 0, 0, 0)
    return Check("subreaper", OK, "the server can reap every sandbox process (PR_SET_CHILD_SUBREAPER)")


def check_templates(host: Host) -> Check:
    current = host.data_dir / "templates" / "code-interpreter" / "current"
    build = _as_root("nullspace template build code-interpreter")
    if current.exists():
        others = sorted(p.name for p in (host.data_dir / "templates").iterdir() if (p / "current").exists())
        return Check("templates", OK, f"built: {', '.join(others)}")
    if not shutil.which("mmdebstrap"):
        return Check("templates", FAIL, "code-interpreter is not built, and mmdebstrap (which builds it) is missing",
                     _as_root("apt-get install -y mmdebstrap") + " && " + build)
    return Check("templates", WARN, f"code-interpreter is not built in {host.data_dir} (the first create would "
                 "build it: 1-3 min)", build)


def check_server(host: Host) -> Check:
    assert host.api_health is not None
    problem = host.api_health()
    if problem is None:
        return Check("server", OK, "answers /v1/health")
    return Check("server", WARN, f"not reachable: {problem} (the SDK starts the local one on first use)",
                 _as_root("nullspace serve") + "   # or set NULLSPACE_API_URL to a running server")


CHECKS: tuple[Callable[[Host], Check], ...] = (
    check_root, check_cgroups, check_userns, check_bwrap, check_seccomp, check_overlay,
    check_disk, check_memory, check_swap, check_subreaper, check_templates, check_server,
)


def run_all(host: Host) -> list[Check]:
    results = []
    for check in CHECKS:
        if check is check_server and host.api_health is None:
            continue
        try:
            results.append(check(host))
        except Exception as exc:  # a check that breaks says so instead of hiding the others
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _fstype(path: Path, proc: Path) -> str:
    """The filesystem type of the mount holding `path` (from mountinfo)."""
    target, best = str(_existing(path).resolve()), ("", "unknown")
    for line in (_read(proc / "self" / "mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4] if len(left.split()) > 4 else ""
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
            best = (point, right.split()[0] if right else "unknown")
    return best[1]
