"""Fork this IPython kernel: the child keeps the user's state and serves a new connection file.

Runs inside the kernel (as ``_nullspace_kernel.fork``), called by the agent through a silent
execute's user expression: ``fork(connection_file)`` returns the new kernel's pid.

The kernel forks twice: the intermediate child forks the new kernel, reports its pid through a
pipe and exits at once (the parent reaps it), so the new kernel is nobody's child to reap; the
sandbox's init adopts it. In the new kernel only the calling (main) thread exists: the parent's
channel, iopub, control and heartbeat threads are gone, and its zmq context is never touched
again (zmq contexts do not survive fork). It gets a process group of its own (an interrupt goes
to one kernel only), puts fds 1 and 2 back where they pointed before ipykernel captured them,
freezes the garbage collector's view of the inherited objects (a collection would otherwise
write to every page holding one and copy it), gives the shell a history session of its own, and
starts a fresh ``IPKernelApp`` on a fresh event loop that reuses the same shell (user namespace,
imports, display hooks). The parent's stack below this call is never returned to.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def fork(connection_file: str) -> int:
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a stream that cannot flush loses nothing we need
            pass
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as fh:
            data = fh.read()
        if not data:
            raise OSError("the forked kernel did not start")
        return int(data)
    try:
        os.close(read_end)
        child = os.fork()
        if child:
            os.write(write_end, str(child).encode("ascii"))
            os._exit(0)
        os.close(write_end)
        _serve(app, connection_file)
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's stack
        import traceback

        traceback.print_exc(file=sys.__stderr__)
    os._exit(1)


def _serve(app: Any, connection_file: str) -> None:
    import asyncio
    import atexit
    import gc

    from ipykernel.kernelapp import IPKernelApp
    from IPython.core.history import HistoryManager

    os.setsid()
    gc.freeze()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        copy = getattr(stream, "_original_stdstream_copy", None)
        fd = getattr(stream, "_original_stdstream_fd", None)
        if copy is not None and fd is not None:
            os.dup2(copy, fd)  # the parent's reader thread owned the pipe fd 1/2 pointed to
        setattr(sys, name, getattr(sys, f"__{name}__"))
    atexit.unregister(app.close)  # it would stop the parent's (absent) threads

    shell = app.shell
    old = shell.history_manager  # its sqlite connection and saving thread are the parent's
    history = HistoryManager(shell=shell, parent=shell)
    history.input_hist_parsed = old.input_hist_parsed  # In, Out and _ih keep working
    history.input_hist_raw = old.input_hist_raw
    history.output_hist = old.output_hist
    shell.configurables = [c for c in shell.configurables if c is not old] + [history]
    shell.history_manager = history

    type(app.kernel).clear_instance()
    IPKernelApp.clear_instance()
    asyncio.events._set_running_loop(None)  # we are inside the parent's (now dead) loop
    asyncio.set_event_loop(asyncio.new_event_loop())
    new = IPKernelApp.instance()
    new.initialize(["-f", connection_file])  # the shell singleton is reused: same user_ns
    shell.kernel = new.kernel
    new.start()
