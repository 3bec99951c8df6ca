"""Running build steps: line-by-line output capture, progress events, step-named errors."""

from __future__ import annotations

import collections
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from nullspace._exceptions import TemplateBuildError
from nullspace.templates._models import BuildProgress, ProgressCallback

TAIL_LINES = 200
CHROOT_PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildLog:
    """Forwards step starts and output lines to `on_progress` and keeps the failing step's tail.

    Args:
        steps: `(name, description)` of every step, in order.
        on_progress: Called synchronously with each event; may be None.
        file: Where the full log is also written (kept next to the built rootfs).
    """

    def __init__(
        self,
        steps: Sequence[tuple[str, str]],
        on_progress: ProgressCallback | None,
        file: IO[str] | None = None,
    ):
        self.steps = list(steps)
        self.on_progress = on_progress
        self.file = file
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.step = ""
        self.index = 0
        self.was_cached = False

    def _emit(self, message: str, kind: str, cached: bool = False) -> None:
        if self.file is not None:
            prefix = {"start": "==> ", "done": "<== "}.get(kind, "")
            self.file.write(f"{prefix}{message}{' (cached)' if cached else ''}\n")
        if self.on_progress is not None:
            event = BuildProgress(self.step, self.index, len(self.steps), message, kind, cached)  # type: ignore[arg-type]
            self.on_progress(event)

    def cached(self) -> None:
        """Mark the current step as reused from the layer cache (reported on its `done`)."""
        self.was_cached = True

    def line(self, text: str) -> None:
        """Record one output line of the current step."""
        text = text.rstrip("\r\n")
        self.tail.append(text)
        self._emit(text, "log")

    @contextmanager
    def step_scope(self, name: str) -> Iterator[None]:
        """Run one step: emit start/done, turn unexpected errors into a step-named failure."""
        names = [n for n, _ in self.steps]
        self.index = names.index(name) + 1
        self.step = name
        self.was_cached = False
        description = self.steps[self.index - 1][1]
        self.tail.clear()
        self._emit(description, "start")
        try:
            yield
        except TemplateBuildError as exc:
            if not exc.log:
                exc.log = self.tail_text()
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise TemplateBuildError(
                f"template build failed at step '{name}': {exc}", log=self.tail_text()
            ) from exc
        self._emit(description, "done", self.was_cached)

    def tail_text(self) -> str:
        """The last `TAIL_LINES` lines of the current step."""
        return "\n".join(self.tail)


def run(
    argv: Sequence[str],
    log: BuildLog,
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    label: str | None = None,
) -> None:
    """Run a command, forwarding stdout+stderr line by line to `log` (and `on_line`).

    Raises:
        TemplateBuildError: The command is missing or exited non-zero; names the step.
    """
    label = label or Path(argv[0]).name
    shown = shlex.join(argv if len(argv) < 12 else [*argv[:11], "..."])
    log.line(f"$ {shown}")
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env if env is not None else _host_env(),
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # so that a cancelled build can kill the whole group
        )
    except OSError as exc:
        raise TemplateBuildError(
            f"template build failed at step '{log.step}': cannot run {label}: {exc}",
            log=log.tail_text(),
        ) from exc
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.line(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    if code != 0:
        raise TemplateBuildError(
            f"template build failed at step '{log.step}': {label} exited with status {code}",
            log=log.tail_text(),
        )


FILE_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID")
"""What template `run` commands and file copies keep: enough to chown into the user's home."""


def bwrap_argv(
    rootfs: Path,
    argv: Sequence[str],
    *,
    ro_binds: Sequence[tuple[Path, str]] = (),
    caps: Sequence[str] = (),
    network: bool = False,
    env: Mapping[str, str] | None = None,
    chdir: str = "/",
) -> list[str]:
    """A `chroot`-like command: run `argv` inside `rootfs` with bubblewrap.

    As root, without capabilities (but `caps`) and without network (unless `network`, which
    also binds the host's resolv.conf). `/proc/sys` is read-only: root without capabilities
    could otherwise still write host-wide sysctls such as `kernel.core_pattern`. bwrap's
    mounts live in its own mount namespace, so nothing is ever left mounted inside the build
    directory.
    """
    cmd = [
        "bwrap",
        "--bind", str(rootfs), "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--ro-bind", "/proc/sys", "/proc/sys",
        "--perms", "1777", "--tmpfs", "/tmp",  # apt's _apt user writes there too
    ]  # fmt: skip
    for source, dest in ro_binds:
        cmd += ["--ro-bind", str(source), dest]
    if network:
        cmd += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    cmd += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        cmd.append("--unshare-net")
    cmd += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for cap in caps:
        cmd += ["--cap-add", cap]
    variables = {
        "PATH": CHROOT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **(env or {}),
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CONFIG_FILE": "/dev/null",  # the template's own pip.conf is for sandboxes
    }
    cmd.append("--clearenv")
    for key, value in variables.items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", chdir, "--", *argv]
    return cmd


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _host_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")
    env["PYTHONUNBUFFERED"] = "1"
    return env
