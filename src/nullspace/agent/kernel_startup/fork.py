"""Fork this IPython kernel: the child keeps the user's state and serves a new connection file.

Runs inside the kernel (as ``_nullspace_kernel.fork``), called by the agent through a silent
execute's user expression: ``fork(connection_file)`` returns the new kernel's pid.

The parent returns the child's pid at once and reaps it from a daemon thread when it exits (a
double fork, to make it nobody's child, costs a second copy of the page tables: ~25 ms more for
a 100 MiB state). In the new kernel only the calling (main) thread exists: the parent's channel,
iopub, control and heartbeat threads are gone, and its zmq context is never touched again (zmq
contexts do not survive fork). It gets a process group of its own (an interrupt goes to one
kernel only), puts fds 1 and 2 back where they pointed before ipykernel captured them, freezes
the garbage collector's view of the inherited objects (a collection would otherwise write to
every page holding one and copy it), gives the shell a history of its own (in memory, no sqlite
session), and starts a fresh ``IPKernelApp`` with the parent's configuration on a fresh event
loop that reuses the same shell (user namespace, imports, display hooks). The parent's stack
below this call is never returned to.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def fork(connection_file: str) -> int:
    import threading

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a stream that cannot flush loses nothing we need
            pass
    pid = os.fork()
    if pid:
        threading.Thread(target=_reap, args=(pid,), name="nullspace-fork-reaper", daemon=True).start()
        return pid
    try:
        _serve(app, connection_file)
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's stack
        import traceback

        traceback.print_exc(file=sys.__stderr__)
    os._exit(1)


def _reap(pid: int) -> None:
    """Wait for the forked kernel to exit, so that it does not stay a zombie of this one."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # user code reaped it already (os.wait())
        pass


def _serve(app: Any, connection_file: str) -> None:
    import asyncio
    import atexit
    import copy
    import gc

    from ipykernel.kernelapp import IPKernelApp
    from IPython.core.history import HistoryManager

    os.setsid()
    gc.freeze()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        copied = getattr(stream, "_original_stdstream_copy", None)
        fd = getattr(stream, "_original_stdstream_fd", None)
        if copied is not None and fd is not None:
            os.dup2(copied, fd)  # the parent's reader thread owned the pipe fd 1/2 pointed to
        setattr(sys, name, getattr(sys, f"__{name}__"))
    atexit.unregister(app.close)  # it would stop the parent's (absent) threads

    shell = app.shell
    old = shell.history_manager  # its sqlite connection and saving thread are the parent's
    history = HistoryManager(shell=shell, parent=shell, enabled=False)  # in memory: no sqlite
    history.input_hist_parsed = old.input_hist_parsed  # In, Out and _ih keep working
    history.input_hist_raw = old.input_hist_raw
    history.output_hist = old.output_hist
    shell.configurables = [c for c in shell.configurables if c is not old] + [history]
    shell.history_manager = history

    # the parent's configuration, without re-reading argv and config files; the startup files
    # already ran in this shell
    config = copy.deepcopy(app.config)
    config.IPKernelApp.pop("exec_files", None)
    config.IPKernelApp.pop("connection_file", None)
    type(app.kernel).clear_instance()
    IPKernelApp.clear_instance()
    asyncio.events._set_running_loop(None)  # we are inside the parent's (now dead) loop
    asyncio.set_event_loop(asyncio.new_event_loop())
    new = IPKernelApp.instance(config=config, connection_file=connection_file)
    new.parse_command_line = lambda argv=None: None
    new.load_config_file = lambda *args, **kwargs: None
    new.initialize([])  # the shell singleton is reused: same user_ns
    shell.kernel = new.kernel
    new.start()
