"""Syscall probe, run *inside* a sandbox: prints one JSON object of results on stdout.

Standard library only (it runs on whatever Python the sandbox has). Every refused call is made
with bad pointers, fds or pids, so that if the filter let it through it would fail harmlessly
(EFAULT, EBADF, ESRCH ...) instead of doing something; calls that would change this process
(unshare, clone, personality) run in a forked child. Each result is the errno (0 = success,
negative = the child died from that signal).

Output::

    {"arch": "x86_64",
     "info": {"Seccomp": "2", ...},         # from /proc/self/status
     "native": {"ptrace": 1, ...},          # refused syscalls, raw numbers
     "clone_ns": {"CLONE_NEWUSER": 1, ...}, # clone(flag | SIGCHLD) in a child
     "args": {"socket_vsock": 1, ...},      # argument-checked calls
     "normal": {"fork": 0, ...},            # things that must keep working
     "i386": {...} | {"skipped": "..."},    # the int 0x80 entry point
     "x32": {...}}                          # the x32 entry point (syscall nr | 0x40000000)
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import platform
import signal
import socket
import subprocess
import sys
import threading

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

BAD_PID = 0x3FFFFFFF  # above pid_max: ESRCH
SIGCHLD = 17

# x86_64 numbers (the probe is x86_64-only; other arches are skipped by the test).
NR = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "process_madvise": 440,
    "kcmp": 312, "pidfd_getfd": 438, "move_pages": 279, "migrate_pages": 256,
    "keyctl": 250, "add_key": 248, "request_key": 249,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442,
    "unshare": 272, "setns": 308, "clone3": 435,
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "fanotify_init": 300,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "lookup_dcookie": 212, "uselib": 134,
    "modify_ldt": 154,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "create_module": 174, "reboot": 169, "swapon": 167, "swapoff": 168,
    "syslog": 103, "acct": 163, "quotactl": 179, "quotactl_fd": 443, "iopl": 172,
    "ioperm": 173, "vhangup": 153, "nfsservctl": 180,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    # argument-checked / controls
    "clone": 56, "socket": 41, "ioctl": 16, "personality": 135, "getpid": 39,
    "get_mempolicy": 239,
}  # fmt: skip

# Harmless arguments per refused syscall (see module docstring).
ARGS: dict[str, tuple[int, ...]] = {
    "ptrace": (16, BAD_PID, 0, 0),  # PTRACE_ATTACH to no one
    "process_vm_readv": (BAD_PID, 0, 0, 0, 0, 0),
    "process_vm_writev": (BAD_PID, 0, 0, 0, 0, 0),
    "process_madvise": (-1, 0, 0, 0, 0),
    "kcmp": (BAD_PID, BAD_PID, 0, 0, 0),
    "pidfd_getfd": (-1, -1, 0),
    "move_pages": (BAD_PID, 0, 0, 0, 0, 0),
    "migrate_pages": (BAD_PID, 0, 0, 0),
    "keyctl": (0xFFFF, 0, 0, 0, 0),  # unknown operation
    "add_key": (0, 0, 0, 0, 0),
    "request_key": (0, 0, 0, 0),
    "mount": (0, 0, 0, 0, 0),
    "umount2": (0, 0),
    "pivot_root": (0, 0),
    "chroot": (0,),
    "open_tree": (-1, 0, 0),
    "move_mount": (-1, 0, -1, 0, 0),
    "fsopen": (0, 0),
    "fsconfig": (-1, 0, 0, 0, 0),
    "fsmount": (-1, 0, 0),
    "fspick": (-1, 0, 0),
    "mount_setattr": (-1, 0, 0, 0, 0),
    "setns": (-1, 0),
    "clone3": (0, 0),
    "bpf": (0xFFFF, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0),
    "userfaultfd": (0xFFFFFFFF,),  # invalid flags
    "io_uring_setup": (0, 0),
    "io_uring_enter": (-1, 0, 0, 0, 0, 0),
    "io_uring_register": (-1, 0, 0, 0),
    "fanotify_init": (0xFFFFFFFF, 0),
    "name_to_handle_at": (-1, 0, 0, 0, 0),
    "open_by_handle_at": (-1, 0, 0),
    "lookup_dcookie": (0, 0, 0),
    "uselib": (0,),
    "modify_ldt": (0, 0, 0),  # read 0 bytes of the LDT
    "kexec_load": (0, 0, 0, 0),
    "kexec_file_load": (-1, -1, 0, 0, 0),
    "init_module": (0, 0, 0),
    "finit_module": (-1, 0, 0),
    "delete_module": (0, 0),
    "create_module": (0, 0),
    "reboot": (0, 0, 0, 0),  # bad magic
    "swapon": (0, 0),
    "swapoff": (0,),
    "syslog": (10, 0, 0),  # SYSLOG_ACTION_SIZE_BUFFER
    "acct": (0,),
    "quotactl": (0, 0, 0, 0),
    "quotactl_fd": (-1, 0, 0, 0),
    "iopl": (3,),
    "ioperm": (0, 0, 0),
    "vhangup": (),
    "nfsservctl": (0, 0, 0),
    "settimeofday": (0, 0),  # both NULL: a no-op
    "clock_settime": (0, 0),
    "clock_adjtime": (0, 0),
    "adjtimex": (0,),
}


def raw(nr: int, *args: int) -> tuple[int, int]:
    """syscall(nr, *args) → (return value, errno or 0)."""
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return ret, (ctypes.get_errno() if ret == -1 else 0)


def err(nr: int, *args: int) -> int:
    return raw(nr, *args)[1]


def in_child(fn) -> int:  # type: ignore[no-untyped-def]
    """Run fn() in a forked child; its errno (0 = success) comes back as the exit status."""
    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def clone_with(flags: int) -> int:
    """Raw clone(flags | SIGCHLD) with a NULL stack (fork-like); errno or 0."""
    ret, e = raw(NR["clone"], flags | SIGCHLD, 0, 0, 0, 0)
    if ret == 0:  # the new child
        os._exit(0)
    if ret > 0:
        os.waitpid(ret, 0)
    return e


def probe_native() -> dict[str, int]:
    out = {name: err(NR[name], *args) for name, args in ARGS.items()}
    # Calls that would change this process if they got through run in a child.
    out["unshare"] = in_child(lambda: err(NR["unshare"], 0x1000_0000))  # CLONE_NEWUSER
    return out


CLONE_FLAGS = {
    "CLONE_NEWNS": 0x0002_0000,
    "CLONE_NEWCGROUP": 0x0200_0000,
    "CLONE_NEWUTS": 0x0400_0000,
    "CLONE_NEWIPC": 0x0800_0000,
    "CLONE_NEWUSER": 0x1000_0000,
    "CLONE_NEWPID": 0x2000_0000,
    "CLONE_NEWNET": 0x4000_0000,
}


def probe_clone_ns() -> dict[str, int]:
    return {name: in_child(lambda f=flag: clone_with(f)) for name, flag in CLONE_FLAGS.items()}


def probe_args() -> dict[str, int]:
    out: dict[str, int] = {}
    for label, family, kind, proto in (
        ("vsock", 40, socket.SOCK_STREAM, 0), ("vsock_hibits", 0x1_0000_0028, socket.SOCK_STREAM, 0),
        ("af_key", 15, socket.SOCK_RAW, 2), ("af_alg", 38, socket.SOCK_SEQPACKET, 0),
        ("af_rxrpc", 33, socket.SOCK_DGRAM, 2), ("af_xdp", 44, socket.SOCK_RAW, 0),
        ("af_packet", 17, socket.SOCK_RAW, 0), ("af_bluetooth", 31, socket.SOCK_RAW, 0),
        ("af_future", 60, socket.SOCK_STREAM, 0), ("af_huge", 4096, socket.SOCK_STREAM, 0),
        ("netlink_xfrm", 16, socket.SOCK_RAW, 6), ("netlink_audit", 16, socket.SOCK_RAW, 9),
        ("netlink_netfilter", 16, socket.SOCK_RAW, 12), ("netlink_uevent", 16, socket.SOCK_RAW, 15),
        ("netlink_generic", 16, socket.SOCK_RAW, 16), ("netlink_route_hibits", 16, socket.SOCK_RAW, 1 << 32),
    ):  # fmt: skip
        ret, e = raw(NR["socket"], family, kind, proto)
        if ret >= 0:
            os.close(ret)
        out[f"socket_{label}"] = e
    out["ioctl_tiocsti"] = err(NR["ioctl"], -1, 0x5412, 0)  # EBADF if let through
    out["ioctl_tiocsti_hibits"] = err(NR["ioctl"], -1, 0xFFFF_FFFF_0000_5412, 0)
    out["ioctl_tioclinux"] = err(NR["ioctl"], -1, 0x541C, 0)
    out["personality_set"] = in_child(lambda: err(NR["personality"], 0x0040000))  # no ASLR
    out["personality_set0"] = in_child(lambda: err(NR["personality"], 0))
    return out


def probe_normal() -> dict[str, int]:
    out: dict[str, int] = {}

    def attempt(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        try:
            fn()
            out[name] = 0
        except OSError as exc:
            out[name] = exc.errno or -1000
        except Exception:  # noqa: BLE001 - report, don't crash the probe
            out[name] = -1000

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0

    def run_subprocess() -> None:
        subprocess.run(["/bin/sh", "-c", "exit 0"], check=True)

    def thread() -> None:
        box: list[int] = []
        t = threading.Thread(target=lambda: box.append(1))
        t.start()
        t.join()
        assert box == [1]

    def unix_socket() -> None:
        a, b = socket.socketpair(socket.AF_UNIX)
        a.sendall(b"x")
        assert b.recv(1) == b"x"
        a.close()
        b.close()

    def loopback_tcp() -> None:
        srv = socket.socket(socket.AF_INET)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        c = socket.create_connection(srv.getsockname())
        s, _ = srv.accept()
        c.sendall(b"y")
        assert s.recv(1) == b"y"
        for x in (c, s, srv):
            x.close()

    def personality_query() -> None:
        ret, e = raw(NR["personality"], 0xFFFF_FFFF)
        if ret < 0:
            raise OSError(e, "personality query")

    def ioctl_fionread() -> None:
        import fcntl
        import termios

        r, w = os.pipe()
        os.write(w, b"abc")
        buf = bytearray(4)
        fcntl.ioctl(r, termios.FIONREAD, buf)
        assert int.from_bytes(buf, sys.byteorder) == 3
        os.close(r)
        os.close(w)

    attempt("fork", fork)
    attempt("subprocess", run_subprocess)
    attempt("thread", thread)
    attempt("socket_unix", unix_socket)
    attempt("socket_inet_loopback", loopback_tcp)
    attempt("personality_query", personality_query)
    attempt("ioctl_fionread", ioctl_fionread)
    attempt("netlink_route", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
    attempt("netlink_sock_diag", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4).close())
    attempt("if_nameindex", lambda: _check(socket.if_nameindex()))  # netlink route underneath
    attempt("clone_plain", lambda: _raise_errno(in_child(lambda: clone_with(0))))
    out["get_mempolicy"] = err(NR["get_mempolicy"], 0, 0, 0, 0, 0)
    return out


def _check(value: object) -> None:
    assert value


def _raise_errno(e: int) -> None:
    if e:
        raise OSError(e, os.strerror(e) if e > 0 else f"signal {-e}")


# --- the i386 entry point: int 0x80 from a tiny machine-code stub -----------------------------

# long stub(long nr, long a, long b, long c): eax=nr, ebx=a, ecx=b, edx=c; int 0x80
_INT80 = bytes(
    [
        0x53,  # push rbx
        0x89, 0xF8,  # mov eax, edi
        0x89, 0xF3,  # mov ebx, esi
        0x87, 0xCA,  # xchg edx, ecx  → ecx = b, edx = c
        0xCD, 0x80,  # int 0x80
        0x5B,  # pop rbx
        0x48, 0x63, 0xC0,  # movsxd rax, eax  (sign-extend -errno)
        0xC3,  # ret
    ]
)  # fmt: skip

I386 = {"socket": 359, "socketcall": 102, "unshare": 310, "ptrace": 26, "clone3": 435,
        "ioctl": 54, "mount": 21, "getpid": 20, "personality": 136, "clone": 120}  # fmt: skip


def probe_i386() -> dict[str, object]:
    if platform.machine() != "x86_64":
        return {"skipped": "not x86_64"}
    try:
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError as exc:
        return {"skipped": f"no executable memory: {exc}"}
    mem.write(_INT80)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    proto = ctypes.CFUNCTYPE(
        ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long
    )
    stub = proto(addr)

    def call(name: str, a: int = 0, b: int = 0, c: int = 0) -> int:
        ret = stub(I386[name], a, b, c)
        return -ret if ret < 0 else 0

    out: dict[str, object] = {}
    getpid = stub(I386["getpid"], 0, 0, 0)
    out["getpid_ok"] = int(getpid == os.getpid())
    if getpid < 0 and -getpid == errno.ENOSYS:
        return {"skipped": "kernel without ia32 emulation"}
    out["socket_vsock"] = call("socket", 40, socket.SOCK_STREAM, 0)
    out["socketcall_socket"] = call("socketcall", 1, 0)  # SYS_SOCKET, args at NULL → EFAULT
    out["ptrace"] = call("ptrace", 16, BAD_PID)
    out["clone3"] = call("clone3", 0, 0)
    out["ioctl_tiocsti"] = call("ioctl", 0xFFFF_FFFF, 0x5412, 0)
    out["mount"] = call("mount", 0, 0, 0)
    out["unshare"] = in_child(lambda: call("unshare", 0x1000_0000))
    # clone(CLONE_NEWUSER | SIGCHLD, stack=NULL): if it got through, both sides return 0 here
    out["clone_newuser"] = in_child(lambda: call("clone", 0x1000_0000 | SIGCHLD, 0, 0))
    out["personality_set"] = in_child(lambda: call("personality", 0x0040000))
    return out


def probe_x32() -> dict[str, object]:
    if platform.machine() != "x86_64":
        return {"skipped": "not x86_64"}
    bit = 0x4000_0000
    return {
        "socket_vsock": err(bit | 41, 40, socket.SOCK_STREAM, 0),
        "unshare": in_child(lambda: err(bit | 272, 0x1000_0000)),
        "getpid": err(bit | 39),  # ENOSYS without CONFIG_X86_X32_ABI: proves we got here
    }


def probe_info() -> dict[str, object]:
    """Seccomp mode, filter count and NoNewPrivs from /proc/self/status."""
    info: dict[str, object] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Seccomp", "Seccomp_filters", "NoNewPrivs", "CapEff", "Uid"):
                info[key] = value.strip()
    return info


def main() -> None:
    if platform.machine() != "x86_64":
        print(json.dumps({"arch": platform.machine(), "skipped": "probe numbers are x86_64"}))
        return
    result = {
        "arch": platform.machine(),
        "info": probe_info(),
        "native": probe_native(),
        "clone_ns": probe_clone_ns(),
        "args": probe_args(),
        "normal": probe_normal(),
        "i386": probe_i386(),
        "x32": probe_x32(),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
