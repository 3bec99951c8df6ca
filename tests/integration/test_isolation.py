"""Hostile code inside a sandbox cannot reach the host or another sandbox."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from nullspace import Sandbox


def _value(sb: Sandbox, code: str) -> str:
    execution = sb.run_code(code)
    assert execution.error is None, execution.error
    assert execution.text is not None
    return execution.text


def test_host_file_is_unreadable(sandbox: Sandbox, tmp_path: Path) -> None:
    planted = Path("/var/tmp") / f"nullspace-secret-{secrets.token_hex(4)}"
    planted.write_text("host secret")
    os.chmod(planted, 0o644)  # even world-readable host files are not in the sandbox's world
    try:
        code = f"import os\n[os.path.exists({str(planted)!r}), os.path.exists('/root/.pyenv'), os.path.exists('/work')]"
        assert _value(sandbox, code) == "[False, False, False]"
        assert _value(sandbox, "import os; os.path.exists('/sys/class/net')") == "False"
    finally:
        planted.unlink()


def test_host_processes_are_invisible(sandbox: Sandbox) -> None:
    pids = _value(sandbox, "import os; sorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    visible = [int(p) for p in pids.strip("[]").split(",")]
    assert max(visible) < 100 and 1 in visible  # a fresh pid namespace, not the host's
    host_pid = os.getpid()
    cmdlines = _value(
        sandbox,
        "import os\n' '.join(open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit())",
    )
    assert "pytest" not in cmdlines and "nullspace serve" not in cmdlines, (host_pid, cmdlines)


def test_only_loopback_network(sandbox: Sandbox) -> None:
    assert _value(sandbox, "import socket; sorted(n for _, n in socket.if_nameindex())") == "['lo']"
    refused = sandbox.run_code(
        "import socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=3)"
    )
    assert refused.error is not None and refused.error.name in {
        "OSError",
        "TimeoutError",
        "ConnectionRefusedError",
    }


def test_sandbox_user_is_not_root_on_host(sandbox: Sandbox, server) -> None:  # noqa: ANN001
    assert _value(sandbox, "import os; (os.getuid(), os.geteuid())") == "(1000, 1000)"
    status = _value(
        sandbox,
        "[l for l in open('/proc/self/status').read().splitlines() if l.startswith(('CapEff', 'NoNewPrivs', 'Seccomp:'))]",
    )
    assert "CapEff:\\t0000000000000000" in status
    assert "NoNewPrivs:\\t1" in status
    assert "Seccomp:\\t2" in status
    # From the host: every process in the sandbox's cgroup runs as an unprivileged host uid
    uids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if sandbox.sandbox_id not in (entry / "cgroup").read_text():
                    continue
                status_text = (entry / "status").read_text()
            except OSError:
                continue
            uid_line = next(line for line in status_text.splitlines() if line.startswith("Uid:"))
            uids.update(int(u) for u in uid_line.split()[1:])
    assert uids and all(uid >= 400_000 for uid in uids), uids


def test_privilege_escalation_syscalls_refused(sandbox: Sandbox) -> None:
    code = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
out = {}
out['unshare_user'] = libc.unshare(0x10000000) == -1 and ctypes.get_errno()
out['ptrace'] = libc.ptrace(16, 1, 0, 0) == -1 and ctypes.get_errno()
out['mount'] = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == -1 and ctypes.get_errno()
try:
    socket.socket(40, socket.SOCK_STREAM)
    out['vsock'] = 0
except OSError as e:
    out['vsock'] = e.errno
out
"""
    assert _value(sandbox, code) == "{'unshare_user': 1, 'ptrace': 1, 'mount': 1, 'vsock': 1}"


def test_syscalls_off_the_allowlist_do_not_exist(sandbox: Sandbox) -> None:
    code = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
filters = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp_filters')]
mempolicy = libc.syscall(239, 0, 0, 0, 0, 0) == -1 and errno.errorcode[ctypes.get_errno()]  # get_mempolicy
(filters, mempolicy)
"""
    assert _value(sandbox, code) == "(['2'], 'ENOSYS')"  # the allowlist stacked on the denylist


def test_two_sandboxes_cannot_see_each_other(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=60) as a, Sandbox.create(timeout=60) as b:
        token = secrets.token_hex(8)
        a.run_code(
            f"open('/home/user/a.txt', 'w').write({token!r}); open('/tmp/a.txt', 'w').write({token!r})"
        )
        assert (
            _value(
                b, "import os; [os.path.exists('/home/user/a.txt'), os.path.exists('/tmp/a.txt')]"
            )
            == "[False, False]"
        )
        found = _value(
            b,
            f"import subprocess; subprocess.run(['grep', '-rl', {token!r}, '/home', '/tmp', '/run'], capture_output=True, text=True).stdout",
        )
        assert token not in found and "a.txt" not in found


def test_teardown_leaves_nothing(server) -> None:  # noqa: ANN001
    sb = Sandbox.create(timeout=60)
    sid = sb.sandbox_id
    sb.run_code("import subprocess; subprocess.Popen(['sleep', '1000'])")
    sb.kill()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert sid not in mounts
    assert not (server.data_dir / "sandboxes" / sid).exists()
    leftovers = [p for p in Path("/sys/fs/cgroup").glob(f"*/nullspace*/{sid}")]
    leftovers += list(Path("/sys/fs/cgroup").glob(f"nullspace*/{sid}"))
    assert leftovers == []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                assert b"sleep\x001000" not in (entry / "cmdline").read_bytes()
            except OSError:
                pass
