"""The one exception tree of nullspace.

Every error the SDK raises derives from `NullspaceError`::

    NullspaceError
    ├── APIError                      the server answered with a JSON error body
    │   ├── AuthenticationError       401      code "unauthorized"
    │   ├── PermissionDeniedError     403      code "forbidden" (needs an admin key)
    │   ├── InvalidArgumentError      400/422  code "invalid_argument"
    │   ├── NotFoundError             404      code "not_found"
    │   │   ├── SandboxNotFoundError           code "sandbox_not_found" (never existed, killed or timed out)
    │   │   ├── ContextNotFoundError           code "context_not_found"
    │   │   └── TemplateNotFoundError          code "template_not_found"
    │   ├── ConflictError             409      code "conflict"
    │   │   └── SandboxPausedError             code "sandbox_paused" (resume it, or create with auto_resume)
    │   ├── MethodNotAllowedError     405      code "method_not_allowed"
    │   ├── PayloadTooLargeError      413      code "payload_too_large"
    │   ├── DiskFullError             507      code "disk_full" (the sandbox's disk limit; nothing was written)
    │   ├── IntegrityError            422      code "integrity_error" (what landed differs from what was sent)
    │   ├── PackageInstallError       422      code "package_install_failed" (the installer's message; nothing changed)
    │   ├── QuotaExceededError        429      code "quota_exceeded" (a tenant quota; the message names it)
    │   ├── CapacityError             503      code "capacity"
    │   ├── ServerError               5xx      code "internal"
    │   │   └── SandboxUnresponsiveError 504   code "sandbox_unresponsive" (its agent is stopped, gone or silent)
    │   └── TemplateBuildError        500      code "template_build_failed" (`log`: the failing step's output)
    ├── TransportError                the server could not be reached
    ├── ExecutionTimeoutError         a run exceeded its timeout (the kernel was interrupted)
    ├── CommandExitError              a command exited non-zero (carries stdout, stderr, exit_code)
    │   └── CommandTimeoutError       a command hit its timeout (its process tree was killed)

The server picks the `code`; the client picks the class from it (`error_for`). Only a body
without a known code (a proxy's error page, an older server) falls back to the HTTP status.
Every code the server or the agent sends is a `default_code` below: tests/unit/test_error_codes.py
walks the sources and checks it.
"""

from __future__ import annotations

from typing import Any


class NullspaceError(Exception):
    """Root of every error nullspace raises."""


class APIError(NullspaceError):
    """The server refused a request; `code` is stable, `message` is for people."""

    status_code: int = 500
    default_code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code


class AuthenticationError(APIError):
    status_code = 401
    default_code = "unauthorized"


class PermissionDeniedError(APIError):
    """The key is valid but may not do this (an operation for admin keys only)."""

    status_code = 403
    default_code = "forbidden"


class InvalidArgumentError(APIError):
    status_code = 400
    default_code = "invalid_argument"


class NotFoundError(APIError):
    status_code = 404
    default_code = "not_found"


class SandboxNotFoundError(NotFoundError):
    default_code = "sandbox_not_found"


class ContextNotFoundError(NotFoundError):
    default_code = "context_not_found"


class TemplateNotFoundError(NotFoundError):
    default_code = "template_not_found"


class ConflictError(APIError):
    status_code = 409
    default_code = "conflict"


class SandboxPausedError(ConflictError):
    """The sandbox is paused: `resume()` it (or `Sandbox.connect`), or create it with
    `auto_resume=True` so that any call resumes it."""

    default_code = "sandbox_paused"


class MethodNotAllowedError(APIError):
    status_code = 405
    default_code = "method_not_allowed"


class PayloadTooLargeError(APIError):
    status_code = 413
    default_code = "payload_too_large"


class DiskFullError(APIError):
    """A write did not fit in the sandbox's disk (`disk_mb`); the target file was left as it was."""

    status_code = 507
    default_code = "disk_full"


class IntegrityError(APIError):
    """What a file write put in the sandbox differs (size or SHA-256) from what was sent."""

    status_code = 422
    default_code = "integrity_error"


class PackageInstallError(APIError):
    """`install_packages` failed: a package does not exist or does not resolve, or its install
    failed. The message carries the installer's (pip's, npm's) own; the sandbox is unchanged."""

    status_code = 422
    default_code = "package_install_failed"


class QuotaExceededError(APIError):
    """The request would take the tenant over a quota its operator set; the message names it."""

    status_code = 429
    default_code = "quota_exceeded"


class CapacityError(APIError):
    status_code = 503
    default_code = "capacity"


class ServerError(APIError):
    status_code = 500
    default_code = "internal"


class SandboxUnresponsiveError(ServerError):
    """The sandbox's agent did not answer in time, or its process was stopped or is gone (code in
    the sandbox can signal it). The message says which; a stopped agent is resumed by the server."""

    status_code = 504
    default_code = "sandbox_unresponsive"


class TransportError(NullspaceError):
    """The server could not be reached, or the connection broke mid-request."""


class ExecutionTimeoutError(NullspaceError):
    """A run exceeded its timeout. The kernel was interrupted; the context is still usable.

    `execution` holds what the run produced before the deadline.
    """

    def __init__(self, message: str, execution: Any = None):
        super().__init__(message)
        self.execution = execution


class CommandExitError(NullspaceError):
    """A command exited with a non-zero code (or was killed).

    Attributes:
        stdout: Everything it printed on stdout.
        stderr: Everything it printed on stderr.
        exit_code: Its exit code (128 + N when killed by signal N).
        error: What ended it, when it did not simply exit (timeout, kill, signal), else None.
        result: The whole `CommandResult`.
    """

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result
        self.stdout: str = getattr(result, "stdout", "")
        self.stderr: str = getattr(result, "stderr", "")
        self.exit_code: int | None = getattr(result, "exit_code", None)
        self.error: str | None = getattr(result, "error", None)


class CommandTimeoutError(CommandExitError):
    """A command ran past its `timeout`; its whole process tree was killed."""


class TemplateBuildError(APIError):
    """A template build failed; `log` holds the failing step's output.

    Raised by the builder on the server and, through the API, by the SDK (the server sends the
    log's tail inside the message).
    """

    status_code = 500
    default_code = "template_build_failed"

    def __init__(self, message: str, log: str = "", *, code: str | None = None, status_code: int | None = None):
        super().__init__(message, code=code, status_code=status_code)
        self.log = log


_BY_CODE: dict[str, type[APIError]] = {
    cls.default_code: cls
    for cls in (
        AuthenticationError,
        PermissionDeniedError,
        InvalidArgumentError,
        NotFoundError,
        SandboxNotFoundError,
        ContextNotFoundError,
        TemplateNotFoundError,
        ConflictError,
        SandboxPausedError,
        MethodNotAllowedError,
        PayloadTooLargeError,
        DiskFullError,
        IntegrityError,
        PackageInstallError,
        QuotaExceededError,
        CapacityError,
        ServerError,
        TemplateBuildError,
        SandboxUnresponsiveError,
    )
}

_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidArgumentError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidArgumentError,
    429: QuotaExceededError,
    503: CapacityError,
    504: SandboxUnresponsiveError,
    507: DiskFullError,
}


def error_for(status_code: int, body: Any) -> APIError:
    """Build the most specific `APIError` for an error response."""
    code = message = None
    if isinstance(body, dict):
        code, message = body.get("code"), body.get("message")
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status_code) or ServerError
    if not isinstance(message, str):
        message = f"HTTP {status_code}: {body!r}"[:2000]
    return cls(message, code=code if isinstance(code, str) else None, status_code=status_code)
