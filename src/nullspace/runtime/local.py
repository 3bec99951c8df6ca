"""The host side of sandboxes on this machine: cgroup + overlay + bwrap, started and torn down.

`LocalRuntime` is the mechanism; what a sandbox may do comes in as a `SandboxPolicy` built by
`LocalRuntime.start` from a `SandboxRequest`. The sandbox is hostile: we never act on a pid or
path it reports. Killing goes through its cgroup; the agent socket is created here, on the host,
in a root-only directory, and only its listening fd is handed in.
"""

from __future__ import annotations

import asyncio
import collections
import compileall
import contextlib
import hashlib
import logging
import os
import py_compile
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import bwrap, mounts, seccomp
from .cgroups import Cgroup, CgroupDriver, Limits
from .policy import AGENT_LIB, EGRESS_SOCKET_VIEW, SandboxPolicy
from .reaper import Reaper

log = logging.getLogger(__name__)

AGENT_PYTHON = "/opt/venv/bin/python"
LOG_TAIL_BYTES = 64 << 10


@dataclass(frozen=True)
class SandboxRequest:
    sandbox_id: str
    rootfs: Path
    host_uid: int
    limits: Limits
    disk_bytes: int
    env: dict[str, str]
    workdir: str = "/home/user"
    layers: tuple[Path, ...] = ()     # a layered template's lower dirs, top first (else rootfs)


@dataclass
class RunningSandbox:
    """A started sandbox as the host sees it."""

    sandbox_id: str
    base: Path
    agent_socket: Path
    cgroup: Cgroup
    process: subprocess.Popen[bytes]
    exited: asyncio.Future[int]
    egress: socket.socket | None = None  # listening; served by nullspace.egress, bound in at EGRESS_SOCKET_VIEW
    output: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=256))
    drainer: asyncio.Task[None] | None = field(default=None, repr=False)  # fills `output` until EOF

    def output_tail(self) -> str:
        return b"".join(self.output)[-LOG_TAIL_BYTES:].decode("utf-8", "replace")


class LocalRuntime:
    def __init__(
        self,
        data_dir: Path,
        cgroups: CgroupDriver,
        reaper: Reaper,
        seccomp_programs: tuple[bytes, ...],
        agent_package: Path,
    ) -> None:
        self.data_dir = data_dir
        self.sandboxes_dir = data_dir / "sandboxes"
        self.cgroups = cgroups
        self.reaper = reaper
        self.seccomp_programs = seccomp_programs
        self.agent_source = _install_agent(agent_package, data_dir / "agent")
        for path in (data_dir, self.sandboxes_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o711)

    async def start(self, request: SandboxRequest) -> RunningSandbox:
        sid = request.sandbox_id
        base = self.sandboxes_dir / sid
        cgroup = self.cgroups.create(sid, request.limits)
        try:
            sfs = mounts.prepare(
                base, request.layers or request.rootfs,
                uid=request.host_uid, gid=request.host_uid,
                disk_bytes=request.disk_bytes, home=request.workdir,
            )
            _package_cache(base)
            return await self._launch(request, base, sfs.root, cgroup)
        except BaseException:
            await asyncio.to_thread(_destroy, cgroup, base)
            raise

    async def _launch(
        self, request: SandboxRequest, base: Path, root: Path, cgroup: Cgroup
    ) -> RunningSandbox:
        agent_socket = base / "agent.sock"
        read_out, write_out = os.pipe()
        with contextlib.ExitStack() as on_error:
            on_error.callback(os.close, read_out)
            egress = on_error.enter_context(_egress_listener(base / "egress.sock", request.host_uid))
            with contextlib.ExitStack() as closing:  # our copies of what the child inherits
                closing.callback(os.close, write_out)
                listener = closing.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
                seccomp_fds = []
                for program in self.seccomp_programs:
                    seccomp_fds.append(seccomp.seccomp_fd(program))
                    closing.callback(os.close, seccomp_fds[-1])
                listener.bind(str(agent_socket))
                os.chmod(agent_socket, 0o600)
                listener.listen(128)
                policy = SandboxPolicy(
                    rootfs=root,
                    agent_source=self.agent_source,
                    command=(AGENT_PYTHON, "-m", "nullspace_agent", "--fd", str(listener.fileno())),
                    env=request.env,
                    workdir=request.workdir,
                    seccomp_fds=tuple(seccomp_fds),
                    extra_ro_binds=(*_package_cache_bind(base, root), (base / "egress.sock", EGRESS_SOCKET_VIEW)),
                    disable_userns="--disable-userns" in bwrap.features(),
                )
                argv, options = bwrap.via_args_fd(bwrap.build_argv(policy))
                args_fd = bwrap.args_memfd(options)
                closing.callback(os.close, args_fd)
                process, exited = await self.reaper.spawn(
                    [str(args_fd) if a == "{fd}" else a for a in argv],
                    pass_fds=(listener.fileno(), *seccomp_fds, args_fd),
                    stdin=subprocess.DEVNULL,
                    stdout=write_out,
                    stderr=write_out,
                    cwd="/",
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                    preexec_fn=_enter_sandbox_credentials(cgroup.procs_files(), request.host_uid),
                )
            on_error.pop_all()  # read_out now belongs to _drain
        sandbox = RunningSandbox(request.sandbox_id, base, agent_socket, cgroup, process, exited, egress)
        sandbox.drainer = asyncio.get_running_loop().create_task(_drain(read_out, sandbox.output))
        return sandbox

    async def stop(self, sandbox: RunningSandbox, attempts: int = 3) -> None:
        """Kill every process of the sandbox and remove its cgroup, mounts and files.

        Each step runs even when an earlier one failed, and the whole round is retried (with
        longer waits) until nothing is left. Raises `TeardownError` if processes, the cgroup or
        the directory survive every round: the caller must then keep the sandbox's uid.
        """
        if sandbox.egress is not None:
            with contextlib.suppress(OSError):
                sandbox.egress.close()
        problems: list[str] = []
        for attempt in range(1, attempts + 1):
            problems = []
            try:
                await asyncio.to_thread(sandbox.cgroup.kill_all, 2.0 * attempt)
            except Exception as exc:  # noqa: BLE001 - every step runs, whatever the last one did
                problems.append(f"kill: {exc}")
            try:
                await asyncio.wait_for(asyncio.shield(sandbox.exited), timeout=5.0 if attempt == 1 else 1.0)
            except TimeoutError:
                problems.append("bwrap did not exit after the kill")
            try:
                await asyncio.to_thread(sandbox.cgroup.destroy, 1.0 * attempt)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"cgroup: {exc}")
            try:
                await asyncio.to_thread(mounts.teardown, sandbox.base)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"mounts: {exc}")
            if sandbox.base.exists():
                problems.append(f"{sandbox.base} still exists")
            if not problems:
                return
            log.warning("sandbox %s: teardown round %d/%d incomplete: %s",
                        sandbox.sandbox_id, attempt, attempts, "; ".join(problems))
        raise TeardownError(f"sandbox {sandbox.sandbox_id}: teardown incomplete: {'; '.join(problems)}")

    def cleanup_leftovers(self, keep: set[str] = frozenset()) -> list[str]:
        """Remove cgroups, mounts and directories of sandboxes we no longer run."""
        removed = []
        for name in self.cgroups.list_names():
            if name not in keep:
                cgroup = self.cgroups.open(name)
                if cgroup is not None:
                    cgroup.kill_all()
                    cgroup.destroy()
                removed.append(name)
        if self.sandboxes_dir.exists():
            for entry in self.sandboxes_dir.iterdir():
                if entry.name not in keep:
                    mounts.teardown(entry)
                    if entry.name not in removed:
                        removed.append(entry.name)
        return removed


PACKAGE_CACHE_VIEW = "/opt/nullspace/cache"


def _package_cache(base: Path) -> Path:
    """`<base>/cache/{wheels,npm}`: what the trusted side fetched for this sandbox's
    install_packages calls (server/packages.py), bound read-only at PACKAGE_CACHE_VIEW."""
    cache = base / "cache"
    for path in (cache, cache / "wheels", cache / "npm"):
        path.mkdir(mode=0o755)
        os.chmod(path, 0o755)
    return cache


def _package_cache_bind(base: Path, root: Path) -> tuple[tuple[Path, str], ...]:
    """The bind, if the template has the mount point as a real directory (templates built
    before it existed have none; bwrap 0.8 would follow a symlink there: §7.8)."""
    current = root
    for part in PACKAGE_CACHE_VIEW.strip("/").split("/"):
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return ()
    return ((base / "cache", PACKAGE_CACHE_VIEW),)


def _egress_listener(path: Path, uid: int) -> socket.socket:
    """The sandbox's egress socket: the sandbox user may connect (nobody else can reach the path);
    the egress service accepts. Listening from the start, so a pooled sandbox can get network
    when it is claimed."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chown(path, uid, uid)
        os.chmod(path, 0o600)
        listener.listen(64)
    except BaseException:
        listener.close()
        raise
    return listener


class TeardownError(RuntimeError):
    """Something of a sandbox (processes, cgroup, mounts, files) survived every teardown round."""


def _destroy(cgroup: Cgroup, base: Path) -> None:
    try:
        cgroup.kill_all()
        cgroup.destroy()
    finally:
        mounts.teardown(base)


def _enter_sandbox_credentials(procs_files: list[str], uid: int):  # type: ignore[no-untyped-def]
    """preexec_fn: join the sandbox cgroup, then drop to its unprivileged host uid.

    Runs between fork and exec, so it only makes raw syscalls: the cgroup is joined before
    bwrap (and everything it starts) exists, so nothing escapes the limits or the kill.
    """
    payload = b"0"

    def enter() -> None:
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return enter


async def _drain(fd: int, sink: collections.deque[bytes]) -> None:
    """Keep the last bytes the sandbox wrote to its stdout/stderr, bounded."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        while chunk := await reader.read(1 << 14):
            sink.append(chunk)
    finally:
        transport.close()


def _install_agent(package: Path, target_root: Path) -> Path:
    """Copy the agent package to a root-owned, world-readable place bwrap can bind from.

    The source may live under /root (mode 0700), which the sandbox's host uid cannot read. It is
    byte-compiled here (unchecked-hash pycs: the directory is named by the sources' digest), since
    the sandbox cannot write ``__pycache__`` into its read-only bind: that saves ~17 ms of CPU per
    sandbox start when the template's Python has this one's bytecode version, and nothing else.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    target = target_root / digest.hexdigest()[:16] / "nullspace_agent"
    if not target.exists():
        staging = target.parent.with_name(target.parent.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for path in files:
            dest = staging / "nullspace_agent" / path.relative_to(package)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        compileall.compile_dir(
            staging / "nullspace_agent",
            ddir=f"{AGENT_LIB}/nullspace_agent",  # the path tracebacks show: where the sandbox sees it
            quiet=2,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        staging.rename(target.parent)
    for path in (target_root, target.parent):
        os.chmod(path, 0o755)
    return target
