"""The sandbox syscall filter: a libseccomp-compiled BPF program for bwrap's ``--seccomp FD``.

The policy is data, at the top of this module, reviewable in one place:

* `DENIED_SYSCALLS` – name → errno, refused outright (clone3 gets ENOSYS so libc falls back to
  ``clone``, whose flags *can* be inspected; everything else EPERM).
* `NAMESPACE_CLONE_FLAGS` – ``clone`` with any of these flags is refused (no new namespaces, in
  particular no user namespace).
* `ALLOWED_SOCKET_FAMILIES` – ``socket(family, ...)`` of any other family is refused (AF_VSOCK
  reaches the Firecracker host and is not confined by a network namespace; AF_ALG, AF_RXRPC,
  AF_XDP, AF_KEY, AF_PACKET … are rarely used kernel attack surface).
* `ALLOWED_NETLINK_PROTOCOLS` – ``socket(AF_NETLINK, ..., protocol)`` of any other protocol is
  refused (XFRM, AUDIT, NETFILTER, KOBJECT_UEVENT …).
* `DENIED_IOCTLS` – ``ioctl(fd, request, ...)`` refused (TIOCSTI/TIOCLINUX push input into a
  terminal that may belong to someone else).
* `PERSONALITY_QUERY` – the only ``personality`` argument allowed (the query); setting a persona
  (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, UNAME26 …) is refused.

Argument comparisons mask to the 32 bits the kernel reads (``socket``'s family and ``ioctl``'s
request are ``int``/``unsigned int``), so junk in the upper half cannot slip past. The filter
covers every ABI the kernel offers a process: on x86_64 the native, i386 (``int 0x80``) and x32
entry points; on aarch64 native and arm. On i386, ``socketcall`` multiplexes all socket calls with
the arguments in memory, where BPF cannot look: libseccomp therefore refuses
``socketcall(SYS_SOCKET)`` as a whole, so 32-bit x86 programs that use ``socketcall`` get no
sockets (the direct i386 ``socket`` syscall is filtered by family like the native one).

Usage with bubblewrap::

    fds = [seccomp_fd(p) for p in sandbox_filters()]   # sealed memfds
    argv = ["bwrap", ..., "--add-seccomp-fd", str(fds[0]), "--add-seccomp-fd", str(fds[1]), ...]
    subprocess.Popen(argv, pass_fds=fds, ...); [os.close(fd) for fd in fds]

Sandboxes run two filters (`sandbox_filters`): this denylist with a default of ALLOW (ARCHITECTURE
§2) and, stacked on it (bwrap ``--add-seccomp-fd`` twice), the default-deny `build_allowlist_filter`:
the kernel runs both and the most restrictive answer wins, so the argument checks above stay in
the denylist and the allowlist only names syscalls; a syscall on neither list (one added to Linux
later, say) gets ENOSYS. Measured here: building the filter takes ~2–5 ms (cached
per process); running under it costs within noise (runtime-probe §1).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import functools
import logging
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

__all__ = [
    "DENIED_SYSCALLS",
    "NAMESPACE_CLONE_FLAGS",
    "ALLOWED_SOCKET_FAMILIES",
    "ALLOWED_NETLINK_PROTOCOLS",
    "denied_socket_families",
    "DENIED_IOCTLS",
    "PERSONALITY_QUERY",
    "sandbox_filters",
    "ALLOWED_SYSCALLS",
    "ARCHITECTURES",
    "SeccompError",
    "build_filter",
    "build_allowlist_filter",
    "compile_filter",
    "compile_allowlist_filter",
    "seccomp_fd",
    "filter_architectures",
    "export_pfc",
]

_EPERM = errno.EPERM

# --- the policy -----------------------------------------------------------------------------

DENIED_SYSCALLS: dict[str, int] = {
    # Inspecting or changing other processes.
    "ptrace": _EPERM,
    "process_vm_readv": _EPERM,
    "process_vm_writev": _EPERM,
    "process_madvise": _EPERM,
    "kcmp": _EPERM,
    "pidfd_getfd": _EPERM,
    "move_pages": _EPERM,
    "migrate_pages": _EPERM,
    # Kernel keyrings (not namespaced).
    "keyctl": _EPERM,
    "add_key": _EPERM,
    "request_key": _EPERM,
    # Mounts, old and new API.
    "mount": _EPERM,
    "umount": _EPERM,
    "umount2": _EPERM,
    "pivot_root": _EPERM,
    "chroot": _EPERM,
    "open_tree": _EPERM,
    "move_mount": _EPERM,
    "fsopen": _EPERM,
    "fsconfig": _EPERM,
    "fsmount": _EPERM,
    "fspick": _EPERM,
    "mount_setattr": _EPERM,
    # Namespaces (clone is checked by flag below; clone3 hides its flags in memory).
    "unshare": _EPERM,
    "setns": _EPERM,
    "clone3": errno.ENOSYS,
    # Big kernel attack surface.
    "bpf": _EPERM,
    "perf_event_open": _EPERM,
    "userfaultfd": _EPERM,
    "io_uring_setup": _EPERM,
    "io_uring_enter": _EPERM,
    "io_uring_register": _EPERM,
    "fanotify_init": _EPERM,
    "name_to_handle_at": _EPERM,
    "open_by_handle_at": _EPERM,
    "lookup_dcookie": _EPERM,
    "uselib": _EPERM,
    "modify_ldt": _EPERM,
    "vm86": _EPERM,
    "vm86old": _EPERM,
    # Kernel, modules, machine.
    "kexec_load": _EPERM,
    "kexec_file_load": _EPERM,
    "init_module": _EPERM,
    "finit_module": _EPERM,
    "delete_module": _EPERM,
    "create_module": _EPERM,
    "reboot": _EPERM,
    "swapon": _EPERM,
    "swapoff": _EPERM,
    "syslog": _EPERM,
    "acct": _EPERM,
    "quotactl": _EPERM,
    "quotactl_fd": _EPERM,
    "iopl": _EPERM,
    "ioperm": _EPERM,
    "vhangup": _EPERM,
    "nfsservctl": _EPERM,
    # Clocks.
    "settimeofday": _EPERM,
    "stime": _EPERM,
    "clock_settime": _EPERM,
    "clock_settime64": _EPERM,
    "clock_adjtime": _EPERM,
    "clock_adjtime64": _EPERM,
    "adjtimex": _EPERM,
}
"""Syscalls refused outright, with the errno the caller sees. Names unknown to the installed
libseccomp (or to the architecture) are skipped. ``mbind``/``set_mempolicy`` stay allowed: they
only affect the caller's own memory, and NUMA-aware runtimes (Java, libnuma) call them."""

NAMESPACE_CLONE_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x0002_0000,
    "CLONE_NEWCGROUP": 0x0200_0000,
    "CLONE_NEWUTS": 0x0400_0000,
    "CLONE_NEWIPC": 0x0800_0000,
    "CLONE_NEWUSER": 0x1000_0000,
    "CLONE_NEWPID": 0x2000_0000,
    "CLONE_NEWNET": 0x4000_0000,
}
"""``clone`` with any of these flags gets EPERM. (CLONE_NEWTIME, 0x80, is only accepted by
``clone3`` and ``unshare``, both refused whole; in ``clone``'s flags 0x80 is part of the exit
signal.)"""

ALLOWED_SOCKET_FAMILIES: dict[str, int] = {
    "AF_UNIX": 1,     # local IPC: the agent, kernels (zmq ipc), every runtime
    "AF_INET": 2,     # the sandbox's own loopback / egress proxy (network namespace)
    "AF_INET6": 10,
    "AF_NETLINK": 16,  # only the protocols below
}
"""``socket(family, ...)`` with any other family gets EPERM: AF_VSOCK (40, host ↔ guest sockets,
not confined by a network namespace), AF_KEY (15), AF_PACKET (17), AF_ALG (38, the kernel crypto
API), AF_RXRPC (33), AF_XDP (44), AF_BLUETOOTH, AF_CAN, AF_TIPC, … and any family a later
kernel adds (``>= SOCKET_FAMILY_LIMIT``)."""

SOCKET_FAMILY_LIMIT = 64  # AF_MAX is 46 on Linux 6.x; every family below this is listed explicitly

ALLOWED_NETLINK_PROTOCOLS: dict[str, int] = {
    "NETLINK_ROUTE": 0,      # getifaddrs(), getaddrinfo(AI_ADDRCONFIG), `ip addr`, psutil
    "NETLINK_SOCK_DIAG": 4,  # `ss`, psutil.net_connections (the sandbox's own sockets only)
}
"""``socket(AF_NETLINK, type, protocol)`` with any other protocol gets EPERM: XFRM (6), AUDIT (9),
NETFILTER (12), KOBJECT_UEVENT (15), GENERIC (16, nl80211, …) and the rest. Both allowed ones
only see the sandbox's own network namespace."""

NETLINK_PROTOCOL_LIMIT = 32  # MAX_LINKS in the kernel; protocols at or above it are refused whole

DENIED_IOCTLS: dict[str, int] = {
    "TIOCSTI": 0x5412,  # fake terminal input
    "TIOCLINUX": 0x541C,  # virtual console tricks, incl. selection paste
}
"""``ioctl(fd, request, ...)`` with these requests gets EPERM."""

PERSONALITY_QUERY = 0xFFFF_FFFF
"""``personality(0xffffffff)`` reads the persona; every other argument gets EPERM."""

ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "x86", "x32"),
    "aarch64": ("aarch64", "arm"),
}
"""libseccomp architecture names filtered on each native architecture (others: native only)."""

ALLOWED_SYSCALLS: tuple[str, ...] = (
    # Default-deny mode only (`build_allowlist_filter`). Docker's default profile
    # (moby/profiles/seccomp/default.json) without the calls refused above, plus newer calls.
    # Calls checked by argument (clone, socket, ioctl, personality) are allowed here: the
    # stacked denylist does the checking.
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "clone", "close", "close_range", "connect", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
    "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2",
    "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
    "getresuid32", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "ioprio_get",
    "ioprio_set", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
    "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
    "munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause",
    "personality", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid",
    "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "setsid", "setsockopt", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn",
    "socket", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4",
    "waitid", "waitpid", "write", "writev",
    # arm / aarch64
    "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
    "cacheflush", "set_tls",
)  # fmt: skip
"""The syscalls the default-deny filter lets through; anything else gets ENOSYS (so libc and
language runtimes take the fallback they use on older kernels)."""

# --- libseccomp via ctypes ------------------------------------------------------------------

SCMP_ACT_KILL_THREAD = 0x0000_0000
SCMP_ACT_KILL_PROCESS = 0x8000_0000
SCMP_ACT_ALLOW = 0x7FFF_0000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_OPTIMIZE = 8
SCMP_CMP_LT = 2
SCMP_CMP_GE = 5
SCMP_CMP_GT = 6
SCMP_CMP_MASKED_EQ = 7
_LOW32 = 0xFFFF_FFFF


def SCMP_ACT_ERRNO(value: int) -> int:  # noqa: N802 - the libseccomp macro's name
    """The action "fail with this errno"."""
    return 0x0005_0000 | (value & 0xFFFF)


class SeccompError(RuntimeError):
    """libseccomp is missing or refused to build the filter."""


class _ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(f"libseccomp not found ({exc}); install libseccomp2") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.restype = None
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_exist.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_native.argtypes = []
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_pfc.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_api_get.restype = ctypes.c_uint
    lib.seccomp_api_get.argtypes = []
    return lib


_NR_SCMP_ERROR = -1


def filter_architectures() -> tuple[str, ...]:
    """The libseccomp architecture names the filter covers on this host, native first."""
    lib = _lib()
    native = lib.seccomp_arch_native()
    for name, arches in ARCHITECTURES.items():
        if lib.seccomp_arch_resolve_name(name.encode()) == native:
            return arches
    machine = platform.machine()
    return (ARCHITECTURES.get(machine, (machine,))[0],)


def _clone_flags_arg(native_arch: str) -> int:
    """Which argument of clone() holds the flags (s390 swaps the first two)."""
    return 1 if native_arch.startswith("s390") else 0


class _Filter:
    """A libseccomp context, released when the ``with`` block ends."""

    def __init__(self, default_action: int) -> None:
        self.lib = _lib()
        ctx = self.lib.seccomp_init(default_action)
        if not ctx:
            raise SeccompError("seccomp_init failed")
        self.ctx = ctypes.c_void_p(ctx)

    def __enter__(self) -> _Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lib.seccomp_release(self.ctx)

    def setup(self, arches: Sequence[str]) -> None:
        lib = self.lib
        api = lib.seccomp_api_get()
        badarch = SCMP_ACT_KILL_PROCESS if api >= 3 else SCMP_ACT_KILL_THREAD
        self._check(lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_ACT_BADARCH, badarch), "badarch")
        # Binary-tree syscall dispatch; harmless if this libseccomp ignores it.
        lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for i, arch in enumerate(arches):
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                if i == 0:  # the native arch is in every new context anyway
                    continue
                raise SeccompError(f"libseccomp does not know architecture {arch!r}")
            if lib.seccomp_arch_exist(self.ctx, token) == 0:
                continue
            self._check(lib.seccomp_arch_add(self.ctx, token), f"seccomp_arch_add({arch})")

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc < 0:
            raise SeccompError(f"{what} failed: {os.strerror(-rc)}")

    def rule(self, action: int, name: str, *cmps: tuple[int, int, int, int]) -> bool:
        """Add one rule; False (and a debug log) when libseccomp does not know the syscall."""
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            log.debug("seccomp: libseccomp does not know syscall %r; skipped", name)
            return False
        array = (_ArgCmp * max(1, len(cmps)))(*(_ArgCmp(*c) for c in cmps))
        rc = self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(cmps), array)
        if rc == -errno.EDOM or rc == -errno.EFAULT:
            log.debug("seccomp: syscall %r does not exist on these architectures; skipped", name)
            return False
        self._check(rc, f"seccomp rule for {name}")
        return True

    def export_bpf(self) -> bytes:
        return self._export(self.lib.seccomp_export_bpf)

    def export_pfc(self) -> str:
        return self._export(self.lib.seccomp_export_pfc).decode()

    def _export(self, fn: Callable[[ctypes.c_void_p, int], int]) -> bytes:
        fd = os.memfd_create("nullspace-seccomp-build", os.MFD_CLOEXEC)
        try:
            self._check(fn(self.ctx, fd), "seccomp export")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)


def _add_denylist(
    f: _Filter,
    arches: Sequence[str],
    denied: Mapping[str, int],
    clone_flags: Iterable[int],
    ioctls: Iterable[int],
    errno_override: int | None,
) -> None:
    def act(value: int) -> int:
        return SCMP_ACT_ERRNO(errno_override if errno_override is not None else value)

    for name, err in denied.items():
        f.rule(act(err), name)
    flags_arg = _clone_flags_arg(arches[0])
    for flag in clone_flags:
        f.rule(act(_EPERM), "clone", (flags_arg, SCMP_CMP_MASKED_EQ, flag, flag))
    for family in denied_socket_families():
        f.rule(act(_EPERM), "socket", (0, SCMP_CMP_MASKED_EQ, _LOW32, family))
    # the whole 64-bit argument: junk in the upper half is refused too
    f.rule(act(_EPERM), "socket", (0, SCMP_CMP_GE, SOCKET_FAMILY_LIMIT, 0))
    netlink = ALLOWED_SOCKET_FAMILIES["AF_NETLINK"]
    for protocol in range(NETLINK_PROTOCOL_LIMIT):
        if protocol not in ALLOWED_NETLINK_PROTOCOLS.values():
            f.rule(act(_EPERM), "socket", (0, SCMP_CMP_MASKED_EQ, _LOW32, netlink),
                   (2, SCMP_CMP_MASKED_EQ, _LOW32, protocol))
    f.rule(act(_EPERM), "socket", (0, SCMP_CMP_MASKED_EQ, _LOW32, netlink), (2, SCMP_CMP_GE, NETLINK_PROTOCOL_LIMIT, 0))
    for request in ioctls:
        f.rule(act(_EPERM), "ioctl", (1, SCMP_CMP_MASKED_EQ, _LOW32, request))
    # personality(x) for x != PERSONALITY_QUERY, as two one-sided rules (libseccomp accepts
    # only one comparison per argument and rule).
    f.rule(act(_EPERM), "personality", (0, SCMP_CMP_LT, PERSONALITY_QUERY, 0))
    f.rule(act(_EPERM), "personality", (0, SCMP_CMP_GT, PERSONALITY_QUERY, 0))


def denied_socket_families() -> list[int]:
    """Every family below SOCKET_FAMILY_LIMIT that is not allowed (AF_UNSPEC, 0, included)."""
    return [f for f in range(SOCKET_FAMILY_LIMIT) if f not in ALLOWED_SOCKET_FAMILIES.values()]


def _denylist(errno_override: int | None) -> _Filter:
    f = _Filter(SCMP_ACT_ALLOW)
    try:
        arches = filter_architectures()
        f.setup(arches)
        _add_denylist(
            f,
            arches,
            DENIED_SYSCALLS,
            NAMESPACE_CLONE_FLAGS.values(),
            DENIED_IOCTLS.values(),
            errno_override,
        )
    except BaseException:
        f.__exit__()
        raise
    return f


def compile_filter(*, errno_override: int | None = None) -> bytes:
    """Compile the denylist to a raw BPF program (``struct sock_filter[]``, 8 bytes each).

    `errno_override` makes every refusal answer with that errno instead (tests use an unusual
    one to prove a refusal came from the filter, not from a missing capability).
    """
    with _denylist(errno_override) as f:
        return f.export_bpf()


@functools.cache
def build_filter() -> bytes:
    """The sandbox denylist as a raw BPF program, for bwrap ``--seccomp``. Cached."""
    return compile_filter()


def compile_allowlist_filter(
    allowed: Iterable[str] = ALLOWED_SYSCALLS,
    *,
    default_errno: int = errno.ENOSYS,
    errno_override: int | None = None,
) -> bytes:
    """Compile the default-deny filter: `allowed` pass, `DENIED_SYSCALLS` get their errno,
    everything else `default_errno`.

    It does **not** check arguments; always stack it with `build_filter` (bwrap
    ``--add-seccomp-fd A --add-seccomp-fd B``), which does.
    """
    with _Filter(SCMP_ACT_ERRNO(default_errno)) as f:
        f.setup(filter_architectures())
        default = SCMP_ACT_ERRNO(default_errno)
        for name, err in DENIED_SYSCALLS.items():
            action = SCMP_ACT_ERRNO(errno_override if errno_override is not None else err)
            if action != default:  # libseccomp refuses rules that repeat the default
                f.rule(action, name)
        for name in dict.fromkeys(allowed):
            if name not in DENIED_SYSCALLS:
                f.rule(SCMP_ACT_ALLOW, name)
        return f.export_bpf()


@functools.cache
def build_allowlist_filter() -> bytes:
    """The default-deny filter (stacked on `build_filter`). Cached."""
    return compile_allowlist_filter()


def sandbox_filters() -> tuple[bytes, bytes]:
    """What every sandbox runs under: the default-deny allowlist and the argument-checking
    denylist, stacked (bwrap ``--add-seccomp-fd`` twice)."""
    return build_allowlist_filter(), build_filter()


def export_pfc(*, errno_override: int | None = None) -> str:
    """The denylist as libseccomp's human-readable pseudo-filter code, for review and debugging."""
    with _denylist(errno_override) as f:
        return f.export_pfc()


_F_SEAL_ALL = (
    getattr(fcntl, "F_SEAL_SEAL", 0x0001)
    | getattr(fcntl, "F_SEAL_SHRINK", 0x0002)
    | getattr(fcntl, "F_SEAL_GROW", 0x0004)
    | getattr(fcntl, "F_SEAL_WRITE", 0x0008)
)


def seccomp_fd(program: bytes | None = None) -> int:
    """A fresh, sealed memfd holding `program` (default `build_filter()`), positioned at 0.

    bwrap reads the program from the fd's current offset to EOF and closes its copy, so use one
    fd per launch and close yours after spawning. The fd is O_CLOEXEC: hand it to the child
    with ``subprocess.Popen(..., pass_fds=(fd,))``, which clears CLOEXEC in the child only.
    The seals make the content immutable for whoever holds the fd.
    """
    data = build_filter() if program is None else program
    fd = os.memfd_create("nullspace-seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, getattr(fcntl, "F_ADD_SEALS", 1033), _F_SEAL_ALL)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
