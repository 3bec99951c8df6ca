"""Server logs: readable text or one JSON object per line, with the sandbox id on every line
that concerns a sandbox.

The id travels in a context variable (`bind_sandbox`), so every log call made while serving a
sandbox's request, starting or ending it carries it without naming it: `SandboxRequests` binds
it from the request path (or E2B's sandbox header) before the app runs, the manager binds it
when it starts or claims a sandbox, and tasks and timers started from there inherit it.
uvicorn's access lines are written in the request's context, so they carry it too.

`SandboxLogs` keeps the last lines of each sandbox in memory for `GET /v1/sandboxes/{id}/logs`
(`nullspace sandbox logs ID`). Only the entry point (`configure`) touches the root logger's
handlers; `create_app` only adds and removes its `SandboxLogs`.
"""

from __future__ import annotations

import collections
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(sandbox)s: %(message)s"

_sandbox: contextvars.ContextVar[str | None] = contextvars.ContextVar("ns_sandbox", default=None)
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PATH_ID = re.compile(r"/sandboxes/([A-Za-z0-9_-]{1,64})(?:/|$)")
_E2B_HEADER = b"e2b-sandbox-id"
# uvicorn.access records: args = (client, method, path, http version, status)
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def bind_sandbox(sandbox_id: str | None) -> None:
    """Mark what runs from here on in this context (task, request) as concerning a sandbox."""
    _sandbox.set(sandbox_id if sandbox_id is None or _ID.fullmatch(sandbox_id) else None)


class SandboxField(logging.Filter):
    """Give each record `sandbox_id` (None when the line concerns no sandbox)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "sandbox_id", None) is None:
            record.sandbox_id = _sandbox.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        sid = getattr(record, "sandbox_id", None)
        record.sandbox = f" [{sid}]" if sid else ""
        return super().format(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601 UTC), level, logger, message, sandbox_id, and for
    access lines client, method, path, status; exc for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        sid = getattr(record, "sandbox_id", None)
        if sid:
            line["sandbox_id"] = sid
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            line.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(format: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every log line (ours, uvicorn's and its access lines) to `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(SandboxField())
    handler.setFormatter(JSONFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per agent call is noise
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True


class SandboxLogs(logging.Handler):
    """The last `per_sandbox` lines of the last `sandboxes` sandboxes, in memory.

    A sandbox's buffer opens with the manager's "sandbox created" line (logger `OPENER`):
    requests naming ids that never existed (anyone can send them) add nothing and cannot push
    real sandboxes' lines out.
    """

    OPENER = "nullspace.sandbox"

    def __init__(self, per_sandbox: int = 200, sandboxes: int = 1000) -> None:
        super().__init__(logging.INFO)
        self.addFilter(SandboxField())
        self.per_sandbox, self.max_sandboxes = per_sandbox, sandboxes
        self._lines: collections.OrderedDict[str, collections.deque[dict[str, Any]]] = collections.OrderedDict()

    def emit(self, record: logging.LogRecord) -> None:
        sid = getattr(record, "sandbox_id", None)
        if not sid:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller
            return
        lines = self._lines.get(sid)
        if lines is None:
            if record.name != self.OPENER:
                return
            lines = self._lines[sid] = collections.deque(maxlen=self.per_sandbox)
            while len(self._lines) > self.max_sandboxes:
                self._lines.popitem(last=False)
        else:
            self._lines.move_to_end(sid)
        lines.append({"ts": record.created, "level": record.levelname.lower(), "logger": record.name,
                      "message": message})

    def lines(self, sandbox_id: str) -> list[dict[str, Any]]:
        return list(self._lines.get(sandbox_id, ()))

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)


class SandboxRequests:
    """ASGI middleware: bind the sandbox a request is about (path or E2B header) to its context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            sid = None
            if match := _PATH_ID.search(scope["path"]):
                sid = match.group(1)
            else:
                for name, value in scope.get("headers", ()):
                    if name == _E2B_HEADER:
                        sid = value.decode("latin-1")
                        break
            bind_sandbox(sid)
        await self.app(scope, receive, send)
