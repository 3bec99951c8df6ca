"""The seccomp policy as data, and the BPF program libseccomp compiles from it.

No root and no bwrap needed: the last tests load the program into a forked child with
prctl(PR_SET_SECCOMP) (allowed unprivileged after PR_SET_NO_NEW_PRIVS) and make real calls.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct

import pytest

from nullspace.runtime import seccomp

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="seccomp is Linux-only")

REQUIRED_EPERM = """
ptrace process_vm_readv process_vm_writev keyctl add_key request_key mount umount umount2
pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick mount_setattr unshare setns
bpf perf_event_open userfaultfd io_uring_setup io_uring_enter io_uring_register kexec_load
kexec_file_load init_module finit_module delete_module syslog acct swapon swapoff reboot
settimeofday clock_settime clock_adjtime adjtimex quotactl lookup_dcookie name_to_handle_at
open_by_handle_at iopl ioperm vhangup nfsservctl pidfd_getfd kcmp move_pages migrate_pages
fanotify_init uselib
""".split()

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000
BPF_MAXINSNS = 4096
UNUSUAL_ERRNO = 133  # EHWPOISON: nothing returns it by accident


def instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    """Decode ``struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}``."""
    return [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]


# --- the policy data ------------------------------------------------------------------------


def test_policy_names_the_required_calls() -> None:
    for name in REQUIRED_EPERM:
        assert seccomp.DENIED_SYSCALLS[name] == errno.EPERM, name
    assert seccomp.DENIED_SYSCALLS["clone3"] == errno.ENOSYS
    assert seccomp.NAMESPACE_CLONE_FLAGS["CLONE_NEWUSER"] == 0x10000000
    assert set(seccomp.NAMESPACE_CLONE_FLAGS) >= {
        "CLONE_NEWNS", "CLONE_NEWCGROUP", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWUSER",
        "CLONE_NEWPID", "CLONE_NEWNET",
    }  # fmt: skip
    # socket families and netlink protocols: an allowlist, everything else refused
    assert seccomp.ALLOWED_SOCKET_FAMILIES == {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}
    assert seccomp.ALLOWED_NETLINK_PROTOCOLS == {"NETLINK_ROUTE": 0, "NETLINK_SOCK_DIAG": 4}
    denied = seccomp.denied_socket_families()
    for family in (40, 15, 17, 38, 33, 44, 0, 31, 63):  # VSOCK KEY PACKET ALG RXRPC XDP UNSPEC BLUETOOTH …
        assert family in denied
    assert seccomp.DENIED_IOCTLS == {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}
    assert seccomp.PERSONALITY_QUERY == 0xFFFFFFFF


def test_namespace_flags_do_not_touch_the_exit_signal_byte() -> None:
    for flag in seccomp.NAMESPACE_CLONE_FLAGS.values():
        assert flag & 0xFF == 0 and flag.bit_count() == 1


def test_allowlist_and_denylist_are_disjoint() -> None:
    assert not set(seccomp.DENIED_SYSCALLS) & set(seccomp.ALLOWED_SYSCALLS)
    assert len(set(seccomp.ALLOWED_SYSCALLS)) == len(seccomp.ALLOWED_SYSCALLS)
    # argument-checked calls must pass the allowlist so the stacked denylist can judge them
    assert {"clone", "socket", "ioctl", "personality"} <= set(seccomp.ALLOWED_SYSCALLS)


# --- the compiled program -------------------------------------------------------------------


def test_filter_builds_and_is_cached() -> None:
    program = seccomp.build_filter()
    assert isinstance(program, bytes)
    assert program and len(program) % 8 == 0
    assert len(program) // 8 <= BPF_MAXINSNS
    assert seccomp.build_filter() is program


def test_filter_checks_the_architecture_first() -> None:
    code, _jt, _jf, k = instructions(seccomp.build_filter())[0]
    assert code == 0x20 and k == 4  # BPF_LD|BPF_W|BPF_ABS of seccomp_data.arch


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 ABI list")
def test_filter_covers_i386_and_x32() -> None:
    assert seccomp.filter_architectures() == ("x86_64", "x86", "x32")
    constants = {k for _c, _t, _f, k in instructions(seccomp.build_filter())}
    assert AUDIT_ARCH_X86_64 in constants and AUDIT_ARCH_I386 in constants
    assert any(k & X32_SYSCALL_BIT and k < 0x50000000 for k in constants)  # x32 numbers
    pfc = seccomp.export_pfc()
    assert "filter for arch x86 (" in pfc and "filter for arch x32 (" in pfc
    # i386 socketcall(SYS_SOCKET) cannot be inspected: refused as a whole
    assert 'filter for syscall "socketcall"' in pfc


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")
def test_argument_checks_mask_to_32_bits() -> None:
    pfc = seccomp.export_pfc()
    assert "$a0.lo32 & 0xffffffff == 40" in pfc  # socket(AF_VSOCK)
    assert "$a0 >= 64" in pfc  # families a later kernel adds
    assert "$a2.lo32 & 0xffffffff == 6" in pfc  # socket(AF_NETLINK, _, NETLINK_XFRM)
    assert "$a2 >= 32" in pfc
    assert "$a1.lo32 & 0xffffffff == 21522" in pfc or "$a1.lo32 & 0xffffffff == 0x5412" in pfc
    assert "ERRNO(38)" in pfc  # clone3


def test_errno_override_changes_every_refusal() -> None:
    pfc = seccomp.export_pfc(errno_override=UNUSUAL_ERRNO)
    assert f"ERRNO({UNUSUAL_ERRNO})" in pfc
    assert "ERRNO(1)" not in pfc and "ERRNO(38)" not in pfc
    assert seccomp.compile_filter(errno_override=UNUSUAL_ERRNO) != seccomp.build_filter()


def test_unknown_syscall_names_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with seccomp._Filter(seccomp.SCMP_ACT_ALLOW) as f, caplog.at_level("DEBUG"):
        f.setup(seccomp.filter_architectures())
        assert f.rule(seccomp.SCMP_ACT_ERRNO(1), "no_such_syscall_xyz") is False
        assert f.rule(seccomp.SCMP_ACT_ERRNO(1), "ptrace") is True
        assert len(f.export_bpf()) % 8 == 0
    assert "no_such_syscall_xyz" in caplog.text


def test_allowlist_filter_builds() -> None:
    program = seccomp.build_allowlist_filter()
    assert program and len(program) % 8 == 0
    assert len(program) // 8 <= BPF_MAXINSNS
    assert seccomp.build_allowlist_filter() is program


def test_seccomp_fd_holds_the_program_sealed() -> None:
    program = seccomp.build_filter()
    fd = seccomp.seccomp_fd()
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        assert data == program
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\0" * 8, 0)
    finally:
        os.close(fd)
    other = seccomp.seccomp_fd(b"\x06\x00\x00\x00\x00\x00\xff\x7f")
    try:
        assert os.read(other, 64) == b"\x06\x00\x00\x00\x00\x00\xff\x7f"
    finally:
        os.close(other)


# --- the program in a real kernel (no root: NoNewPrivs + PR_SET_SECCOMP in a child) ---------

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def run_filtered(programs: list[bytes], calls: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """Fork, load `programs`, make each raw syscall, and report the errno (0 = success)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    names = list(calls)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only raw calls and _exit
        try:
            os.close(read_end)
            buffers = [ctypes.create_string_buffer(p, len(p)) for p in programs]
            if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                os._exit(101)
            for buf, program in zip(buffers, programs, strict=True):
                prog = SockFprog(len(program) // 8, ctypes.addressof(buf))
                if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
                    os._exit(102)
            results = []
            for name in names:
                ctypes.set_errno(0)
                ret = libc.syscall(*(ctypes.c_long(a) for a in calls[name]))
                results.append(ctypes.get_errno() if ret == -1 else 0)
            os.write(write_end, struct.pack(f"={len(results)}i", *results))
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 4096):
        data += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status:#x}"
    return dict(zip(names, struct.unpack(f"={len(names)}i", data), strict=True))


X86_64_CALLS: dict[str, tuple[int, ...]] = {
    "socket_vsock": (41, 40, 1, 0),
    "socket_vsock_hibits": (41, 0x1_0000_0028, 1, 0),
    "unshare_user": (272, 0x10000000),
    "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": (435, 0, 0),
    "ptrace": (101, 16, 0x3FFFFFFF, 0, 0),
    "ioctl_tiocsti": (16, -1, 0x5412, 0),
    "ioctl_tiocsti_hibits": (16, -1, 0x7_0000_5412, 0),
    "personality_set": (135, 0x0040000),
    "personality_query": (135, 0xFFFFFFFF),
    "getpid": (39,),
    "ioctl_other": (16, -1, 0x5401, 0),  # TCGETS on a bad fd: EBADF, not filtered
    "get_mempolicy": (239, 0, 0, 0, 0, 0),
}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")
def test_filter_in_the_kernel() -> None:
    got = run_filtered([seccomp.build_filter()], X86_64_CALLS)
    eperm = errno.EPERM
    assert got == {
        "socket_vsock": eperm,
        "socket_vsock_hibits": eperm,
        "unshare_user": eperm,
        "clone_newuser": eperm,
        "clone3": errno.ENOSYS,
        "ptrace": eperm,
        "ioctl_tiocsti": eperm,
        "ioctl_tiocsti_hibits": eperm,
        "personality_set": eperm,
        "personality_query": 0,
        "getpid": 0,
        "ioctl_other": errno.EBADF,
        "get_mempolicy": 0,
    }


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")
def test_allowlist_stacked_on_denylist_in_the_kernel() -> None:
    got = run_filtered([seccomp.build_allowlist_filter(), seccomp.build_filter()], X86_64_CALLS)
    assert got["socket_vsock"] == errno.EPERM  # argument check from the denylist
    assert got["clone_newuser"] == errno.EPERM
    assert got["unshare_user"] == errno.EPERM
    assert got["clone3"] == errno.ENOSYS
    assert got["getpid"] == 0 and got["personality_query"] == 0
    assert got["ioctl_other"] == errno.EBADF
    assert got["get_mempolicy"] == errno.ENOSYS  # not on the allowlist
