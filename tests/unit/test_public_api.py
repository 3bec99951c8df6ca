"""Pin the public surface of `nullspace` (like httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import nullspace
from nullspace import _exceptions

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert nullspace.__all__ == EXPECTED
    assert nullspace.__all__ == sorted(nullspace.__all__)


def test_dir_lists_exactly_the_public_names() -> None:
    public = [name for name in dir(nullspace) if not name.startswith("_")]
    assert public == nullspace.__all__


def test_every_name_resolves_and_claims_the_top_level_module() -> None:
    for name in nullspace.__all__:
        obj = getattr(nullspace, name)
        assert obj.__module__ == "nullspace", name
        assert obj.__name__ == name


def test_every_exception_class_is_exported() -> None:
    classes = {
        name
        for name, obj in vars(_exceptions).items()
        if inspect.isclass(obj) and issubclass(obj, Exception)
    }
    assert classes <= set(nullspace.__all__)
    for name in classes:
        assert issubclass(getattr(nullspace, name), nullspace.NullspaceError)


def test_from_import_and_version() -> None:
    from nullspace import AsyncSandbox, Sandbox

    assert Sandbox.__name__ == "Sandbox" and AsyncSandbox.__name__ == "AsyncSandbox"
    assert isinstance(nullspace.__version__, str)


def test_import_is_lazy_and_sdk_needs_only_httpx_and_stdlib() -> None:
    code = (
        "import sys, nullspace\n"
        "assert 'httpx' not in sys.modules, 'import nullspace pulled in httpx'\n"
        "nullspace.Sandbox\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'pydantic', 'uvicorn', 'typer', 'jupyter_client'})\n"
        "assert not bad, bad\n"
        "other = {'server', 'agent', 'runtime', 'cli', 'templates'}\n"
        "assert not [m for m in sys.modules if m.split('.')[:2][-1] in other], 'non-SDK import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
