"""The nullspace SDK: `Sandbox` (sync, generated) and `AsyncSandbox` (asyncio) over httpx.

Import from the top-level package (`from nullspace import Sandbox`); the modules here are private.
"""

from ._artifacts import ArtifactInfo
from ._async import AsyncSandbox
from ._async._http import AsyncAPIClient
from ._async.artifacts import AsyncArtifact
from ._async.commands import AsyncCommandHandle
from ._async.pty import AsyncPtyHandle
from ._commands import CommandInfo, CommandResult
from ._execution import StreamEvent
from ._files import EntryInfo, WriteEntry, WriteInfo
from ._models import (
    Context,
    EndOfExecution,
    Execution,
    ExecutionError,
    Logs,
    OutputMessage,
    PauseInfo,
    Result,
    SandboxInfo,
)
from ._network import NetworkInfo, Secret
from ._packages import InstalledPackage, InstallResult
from ._sync import Sandbox
from ._sync._http import APIClient
from ._sync.artifacts import Artifact
from ._sync.commands import CommandHandle
from ._sync.pty import PtyHandle

__all__ = [
    "APIClient",
    "Artifact",
    "ArtifactInfo",
    "AsyncAPIClient",
    "AsyncArtifact",
    "AsyncCommandHandle",
    "AsyncPtyHandle",
    "AsyncSandbox",
    "CommandHandle",
    "CommandInfo",
    "CommandResult",
    "Context",
    "EndOfExecution",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "InstallResult",
    "InstalledPackage",
    "Logs",
    "NetworkInfo",
    "OutputMessage",
    "PauseInfo",
    "PtyHandle",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "Secret",
    "StreamEvent",
    "WriteEntry",
    "WriteInfo",
]

for _name in __all__:
    if _name != "StreamEvent":  # a Union, not a class
        globals()[_name].__module__ = "nullspace"  # reprs and tracebacks say nullspace.Sandbox
del _name
