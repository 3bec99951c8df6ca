"""Every `nullspace` command the README shows exists and parses (a new user copies them)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main

from nullspace.cli import app

README = Path(__file__).resolve().parents[3] / "README.md"
ROOT = typer.main.get_command(app)


def _code_lines() -> list[str]:
    lines, inside = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and re.match(r"^(sudo )?nullspace ", line):
            lines.append(line.split("#")[0].strip().removeprefix("sudo "))
    return lines


def _parse(args: list[str]) -> None:
    """Parse like click does before running: unknown commands, options or bad values raise."""
    command, ctx, name = ROOT, None, "nullspace"
    while True:
        ctx = command.make_context(name, list(args), parent=ctx, resilient_parsing=False)
        if not hasattr(command, "commands"):
            return
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, args = command.resolve_command(ctx, rest)
        assert command is not None, rest


def test_readme_examples_parse() -> None:
    examples = [line for line in _code_lines() if "|" not in line and "[" not in line]
    assert len(examples) >= 5
    for line in examples:
        _parse(shlex.split(line)[1:])


def test_readme_synopsis_names_real_commands() -> None:
    synopsis = [line for line in _code_lines() if "|" in line or "[" in line]
    assert synopsis
    for line in synopsis:
        words = line.split()
        group = ROOT.commands[words[1]]
        if not hasattr(group, "commands"):
            continue  # `nullspace serve [...]`: a command with options
        rest = " ".join(words[2:])
        if rest.startswith("files ID"):
            group, rest = group.commands["files"], rest.removeprefix("files ID")
        for alternative in rest.split(" | "):  # `a|b` without spaces is one argument's choices
            verb = alternative.split()[0]
            assert verb in group.commands, f"{line}: no `{verb}`"
