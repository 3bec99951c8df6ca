"""nullspace: self-hosted sandboxes that run untrusted, AI-generated code.

    from nullspace import Sandbox

    with Sandbox.create() as sbx:
        print(sbx.run_code("1 + 1").text)

The SDK classes (which need httpx) are imported lazily on first use, so `import nullspace` stays
stdlib-only for the in-sandbox agent, which shares `_protocol` and `_exceptions` with the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import (
    APIError,
    AuthenticationError,
    CapacityError,
    CommandExitError,
    CommandTimeoutError,
    ConflictError,
    ContextNotFoundError,
    DiskFullError,
    ExecutionTimeoutError,
    IntegrityError,
    InvalidArgumentError,
    MethodNotAllowedError,
    NotFoundError,
    NullspaceError,
    PackageInstallError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    SandboxNotFoundError,
    SandboxPausedError,
    SandboxUnresponsiveError,
    ServerError,
    TemplateBuildError,
    TemplateNotFoundError,
    TransportError,
)
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from .client import (
        APIClient,
        Artifact,
        ArtifactInfo,
        AsyncAPIClient,
        AsyncArtifact,
        AsyncCommandHandle,
        AsyncPtyHandle,
        AsyncSandbox,
        CommandHandle,
        CommandInfo,
        CommandResult,
        Context,
        EndOfExecution,
        EntryInfo,
        Execution,
        ExecutionError,
        InstalledPackage,
        InstallResult,
        Logs,
        NetworkInfo,
        OutputMessage,
        PauseInfo,
        PtyHandle,
        Result,
        Sandbox,
        SandboxInfo,
        Secret,
        WriteEntry,
        WriteInfo,
    )

__all__ = [
    "APIClient",
    "APIError",
    "Artifact",
    "ArtifactInfo",
    "AsyncAPIClient",
    "AsyncArtifact",
    "AsyncCommandHandle",
    "AsyncPtyHandle",
    "AsyncSandbox",
    "AuthenticationError",
    "CapacityError",
    "CommandExitError",
    "CommandHandle",
    "CommandInfo",
    "CommandResult",
    "CommandTimeoutError",
    "ConflictError",
    "Context",
    "ContextNotFoundError",
    "DiskFullError",
    "EndOfExecution",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "ExecutionTimeoutError",
    "InstallResult",
    "InstalledPackage",
    "IntegrityError",
    "InvalidArgumentError",
    "Logs",
    "MethodNotAllowedError",
    "NetworkInfo",
    "NotFoundError",
    "NullspaceError",
    "OutputMessage",
    "PackageInstallError",
    "PauseInfo",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PtyHandle",
    "QuotaExceededError",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "SandboxNotFoundError",
    "SandboxPausedError",
    "SandboxUnresponsiveError",
    "Secret",
    "ServerError",
    "TemplateBuildError",
    "TemplateNotFoundError",
    "TransportError",
    "WriteEntry",
    "WriteInfo",
]

_CLIENT_NAMES = frozenset(
    {
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
        "WriteEntry",
        "WriteInfo",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client

        namespace = globals()  # cache: __getattr__ runs once per name at most
        namespace.update({n: getattr(client, n) for n in _CLIENT_NAMES})
        return namespace[name]
    raise AttributeError(f"module 'nullspace' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])


# Make reprs and tracebacks say `nullspace.SandboxNotFoundError`, as httpx does for its public
# names (`nullspace.client` does the same for the SDK classes when it is imported).
for _name in __all__:
    if _name not in _CLIENT_NAMES:
        globals()[_name].__module__ = "nullspace"
del _name
