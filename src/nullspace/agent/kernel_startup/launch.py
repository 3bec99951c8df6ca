"""The Python kernel's entry point in a sandbox: ``python launch.py -f {connection_file} ...``.

What ``python -m ipykernel_launcher`` does, without ipykernel's debugger: importing debugpy is a
quarter of a kernel's start-up CPU (~50 of ~210 ms, measured in a sandbox) and nullspace does not
offer the Jupyter debug protocol. User code can still ``import debugpy``, and ``sys.argv[0]`` is
ipykernel_launcher's, as libraries that detect notebooks expect.
"""

import os
import sys

if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # this directory belongs to the agent, not to the user's imports


def main() -> None:
    import importlib.util

    launcher = importlib.util.find_spec("ipykernel_launcher")
    if launcher is not None and launcher.origin:
        sys.argv[0] = launcher.origin
    sys.modules["debugpy"] = None  # type: ignore[assignment]  # ipykernel.debugger: unavailable
    try:
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize()
    finally:
        if "debugpy" in sys.modules and sys.modules["debugpy"] is None:
            del sys.modules["debugpy"]
    app.start()


if __name__ == "__main__":
    main()
