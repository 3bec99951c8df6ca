"""E2B's API on the nullspace server: the official E2B SDKs work unchanged against it.

`E2BDoor` (door.py) sits in front of the nullspace app on each listener and takes E2B's traffic:
the control plane (control.py), and sandbox traffic routed by the ``E2b-Sandbox-Id`` and
``E2b-Sandbox-Port`` headers to the code interpreter (interpreter.py, port 49999) or envd
(envd/, port 49983). Both are translations over the same SandboxManager as ``/v1``: a sandbox
made through one door is used through the other. User docs: docs/e2b.md.
"""

from .door import E2BDoor

__all__ = ["E2BDoor"]
