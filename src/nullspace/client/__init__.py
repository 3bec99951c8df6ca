"""The nullspace SDK: `Sandbox` (sync, generated) and `AsyncSandbox` (asyncio) over httpx.

Import from the top-level package (`from nullspace import Sandbox`); the modules here are private.
"""

from ._async import AsyncSandbox
from ._execution import StreamEvent
from ._models import (
    Context,
    EndOfExecution,
    Execution,
    ExecutionError,
    Logs,
    OutputMessage,
    Result,
    SandboxInfo,
)
from ._sync import Sandbox

__all__ = [
    "AsyncSandbox",
    "Context",
    "EndOfExecution",
    "Execution",
    "ExecutionError",
    "Logs",
    "OutputMessage",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "StreamEvent",
]

for _name in __all__:
    if _name != "StreamEvent":  # a Union, not a class
        globals()[_name].__module__ = "nullspace"  # reprs and tracebacks say nullspace.Sandbox
del _name
