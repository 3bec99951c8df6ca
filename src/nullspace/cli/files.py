"""`nullspace sandbox files ID list|get|put`: move files in and out of a sandbox, with progress.

The sandbox id comes before the verb (`files sb_... get out.csv`), as in the group's callback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer
from rich.table import Table

from .. import Sandbox
from ._output import ago, console, errors, fail, safe, size, transfer_progress

app = typer.Typer(help="List, download and upload files in a sandbox: files ID list|get|put ...",
                  no_args_is_help=True)
CHUNK = 1 << 20


@app.callback()
def _sandbox(
    ctx: typer.Context,
    sandbox_id: Annotated[str, typer.Argument(metavar="ID", help="The sandbox's id (sb_...).")],
) -> None:
    ctx.obj = sandbox_id


def list_(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Directory in the sandbox (relative: from /home/user).")] = ".",
    depth: Annotated[int, typer.Option(min=1, max=10, help="Levels to descend.")] = 1,
) -> None:
    """List a directory in the sandbox."""
    with errors():
        sandbox = Sandbox.connect(ctx.obj)
        try:
            entries = sandbox.files.list(path, depth=depth)
        finally:
            sandbox.close()
    table = Table("permissions", "owner", "size", "modified", "path", box=None, header_style="bold")
    for entry in entries:
        name = safe(entry.path) + ("/" if entry.type == "dir" else "")
        if entry.symlink_target:
            name += f" -> {safe(entry.symlink_target)}"
        table.add_row(entry.permissions, safe(entry.owner), size(entry.size) if entry.type == "file" else "",
                      ago(entry.modified_time), name)
    console.print(table)


app.command("list")(list_)


@app.command()
def get(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="File in the sandbox.")],
    dest: Annotated[Path | None, typer.Argument(help="Local file or directory [default: its name, here].")] = None,
) -> None:
    """Download a file from the sandbox (streamed, with a progress bar)."""
    name = PurePosixPath(path).name
    if not name or name in (".", ".."):
        fail(f"{safe(repr(path))} names no file")
    target = (dest / name) if dest is not None and dest.is_dir() else (dest or Path(name))
    partial = target.with_name(target.name + ".part")
    with errors():
        sandbox = Sandbox.connect(ctx.obj)
        try:
            total = sandbox.files.get_info(path).size
            with transfer_progress() as progress, open(partial, "wb") as out:
                task = progress.add_task(safe(name), total=total)
                for chunk in sandbox.files.read(path, format="stream"):
                    out.write(chunk)
                    progress.advance(task, len(chunk))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            sandbox.close()
    console.print(f"{safe(path)} -> {target}")


@app.command()
def put(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Local file.")],
    path: Annotated[str | None, typer.Argument(help="Where in the sandbox [default: its name, in /home/user].")] = None,
) -> None:
    """Upload a file into the sandbox (streamed, checked by SHA-256, with a progress bar)."""
    dest = path or source.name
    total = source.stat().st_size
    with errors():
        sandbox = Sandbox.connect(ctx.obj)
        try:
            with transfer_progress() as progress, open(source, "rb") as data:
                task = progress.add_task(source.name, total=total)

                def chunks() -> Iterator[bytes]:
                    while chunk := data.read(CHUNK):
                        progress.advance(task, len(chunk))
                        yield chunk

                info = sandbox.files.write(dest, chunks())
        finally:
            sandbox.close()
    console.print(f"{source} -> {safe(info.path)} ({size(info.size)}, sha256 {info.sha256[:16]}…)")
