"""The CLI's surface: help on every command, one verb (`list`, alias `ls`) in every group, safe output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer.main

from nullspace.cli import app
from nullspace.cli._output import ago, safe, size


def _commands(group, prefix: str = "") -> dict:  # noqa: ANN001 - typer's own click types
    found = {}
    for name, command in group.commands.items():
        found[prefix + name] = command
        if hasattr(command, "commands"):
            found.update(_commands(command, prefix + name + " "))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_has_help() -> None:
    missing = [name for name, command in COMMANDS.items() if not (command.help or command.short_help)]
    assert not missing, f"commands without help: {missing}"


def test_every_group_lists_with_list_and_ls() -> None:
    for group in ("sandbox", "template", "keys", "keys tenant", "sandbox files"):
        assert f"{group} list" in COMMANDS, group
    for name in COMMANDS:
        if name == "list" or name.endswith(" list"):
            alias = name[: -len("list")] + "ls"
            assert alias in COMMANDS and COMMANDS[alias].hidden, alias
    assert "doctor" in COMMANDS and "serve" in COMMANDS


def test_human_times() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=5), now) == "5s ago"
    assert ago(now + timedelta(minutes=4, seconds=10), now) == "in 4m"
    assert ago(now - timedelta(hours=2, minutes=5), now) == "2h5m ago"
    assert ago(now - timedelta(days=3, hours=1), now) == "3d1h ago"
    assert ago(None, now) == "–"


def test_sizes() -> None:
    assert size(12) == "12 B"
    assert size(3 << 20) == "3.0 MiB"


def test_text_from_a_sandbox_cannot_drive_the_terminal() -> None:
    hostile = "ok\x1b]0;pwned\x07\x1b[2J\r\x9b31m\tend\n"
    shown = safe(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\x9b" not in shown
    assert shown.startswith("ok\\x1b]0;pwned\\x07") and shown.endswith("\tend\n")
    assert safe("[/x] [bold]b") == "\\[/x] \\[bold]b"  # rich markup escaped too


def test_log_lines_cannot_inject_markup_or_escapes(monkeypatch) -> None:  # noqa: ANN001
    from rich.console import Console

    from nullspace.cli import sandbox

    recorder = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(sandbox, "console", recorder)
    sandbox._print_line({"ts": 0, "level": "info", "logger": "uvicorn.access",
                         "message": 'GET /v1/sandboxes/sb_x/[/x][bold]y "\x1b[31mred'})
    text = recorder.export_text()
    assert "[/x][bold]y" in text and "\x1b" not in text and "\\x1b[31mred" in text
