"""RecentErrors: the server's last warnings and errors, kept in memory for the console."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

KEEP = 100
MESSAGE_CHARS = 2000


class RecentErrors(logging.Handler):
    """A logging handler that keeps the last `KEEP` records at WARNING and above."""

    def __init__(self, keep: int = KEEP) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[dict[str, Any]] = deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {exc})"
        self.records.append({
            "at": record.created, "level": record.levelname, "logger": record.name,
            "message": message[:MESSAGE_CHARS],
        })  # fmt: skip

    def recent(self) -> list[dict[str, Any]]:
        """Newest first."""
        return list(reversed(self.records))


LOGGERS = ("nullspace", "uvicorn.error")
"""Ours, and the server's (an exception that escaped a request is logged there)."""


def install() -> RecentErrors:
    handler = RecentErrors()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


def uninstall(handler: RecentErrors) -> None:
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
