"""What every command prints with: one rich console, errors as a message and exit code 1,
human times and sizes, and text from a sandbox made safe for a terminal."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from .. import NullspaceError

console = Console()
err_console = Console(stderr=True)
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 200  # piped or captured: whole rows (ids, reasons), as `ps` does

# C0 controls but \t and \n, DEL and C1 controls (ESC [ ... would drive the terminal)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def fail(message: str) -> NoReturn:
    err_console.print(f"[red bold]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(1)


@contextmanager
def errors() -> Iterator[None]:
    """Turn a NullspaceError into `error: <Class>: <message>` and exit code 1."""
    try:
        yield
    except NullspaceError as exc:
        fail(f"{type(exc).__name__}: {safe(str(exc))}")


def printable(text: str) -> str:
    """Text from a sandbox or a client with terminal control characters made visible."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe(text: str) -> str:
    """`printable` text for a rich console: its markup (`[red]`, `[/x]`) escaped too."""
    return escape(printable(text))


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`3m ago`, `in 4m`, `2h5m ago`, `3d1h ago`; "–" when unknown."""
    if when is None:
        return "–"
    now = now or datetime.now(UTC)
    seconds = int((when - now).total_seconds())
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds}s"
    elif seconds < 3600:
        text = f"{seconds // 60}m"
    elif seconds < 86400:
        text = f"{seconds // 3600}h{seconds % 3600 // 60}m"
    else:
        text = f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    return f"in {text}" if future else f"{text} ago"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def transfer_progress() -> Progress:
    """A bar with bytes, speed and elapsed time (stderr, so stdout stays the data)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), console=err_console, transient=False,
    )


@contextmanager
def spinner(description: str) -> Iterator[Callable[[str], None]]:
    """An indeterminate progress line for an operation that reports no progress of its own."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda text: progress.update(task, description=text)
