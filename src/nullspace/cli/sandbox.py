"""`nullspace sandbox create|ls|run|kill`: the public SDK from a shell."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .. import NullspaceError, Sandbox

app = typer.Typer(help="Create, list, run code in and kill sandboxes.", no_args_is_help=True)
console = Console()


def _fail(exc: NullspaceError) -> None:
    console.print(f"[red]{type(exc).__name__}:[/] {exc}")
    raise typer.Exit(1)


@app.command()
def create(
    template: str = "code-interpreter",
    timeout: Annotated[int, typer.Option(help="Lifetime in seconds")] = 300,
) -> None:
    """Create a sandbox and print its id."""
    try:
        sandbox = Sandbox.create(template=template, timeout=timeout)
    except NullspaceError as exc:
        _fail(exc)
    print(sandbox.sandbox_id)


@app.command("ls")
def list_() -> None:
    table = Table("id", "template", "state", "ends", "metadata")
    try:
        for info in Sandbox.list():
            table.add_row(info.sandbox_id, info.template, info.state, str(info.end_at), str(info.metadata))
    except NullspaceError as exc:
        _fail(exc)
    console.print(table)


@app.command()
def run(sandbox_id: str, code: Annotated[str, typer.Argument(help="Code, or - for stdin")], language: str = "python") -> None:
    """Run code in a sandbox; stream its output."""
    source = sys.stdin.read() if code == "-" else code
    try:
        sandbox = Sandbox.connect(sandbox_id)
        execution = sandbox.run_code(
            source, language=language,
            on_stdout=lambda m: sys.stdout.write(m.line), on_stderr=lambda m: sys.stderr.write(m.line),
        )
    except NullspaceError as exc:
        _fail(exc)
    if execution.text is not None:
        print(execution.text)
    if execution.error:
        console.print(f"[red]{execution.error.name}:[/] {execution.error.value}")
        raise typer.Exit(1)


@app.command()
def kill(sandbox_id: str) -> None:
    try:
        Sandbox.connect(sandbox_id).kill()
    except NullspaceError as exc:
        _fail(exc)
    console.print(f"killed {sandbox_id}")


@app.command()
def pause(
    sandbox_id: str,
    timeout: Annotated[int | None, typer.Option(help="kill it if not resumed within this many seconds")] = None,
) -> None:
    """Freeze a sandbox and move its memory to swap until it is resumed (docs/pause.md)."""
    try:
        info = Sandbox.connect(sandbox_id).pause(timeout)
    except NullspaceError as exc:
        _fail(exc)
    mib = 1 << 20
    console.print(f"paused {sandbox_id}: {info.memory_before_bytes // mib} MiB -> "
                  f"{info.memory_after_bytes // mib} MiB in RAM; killed at {info.paused_until:%Y-%m-%d %H:%M:%S} UTC unless resumed")


@app.command()
def resume(sandbox_id: str) -> None:
    """Thaw a paused sandbox; it gets back the lifetime it had left."""
    try:
        Sandbox.connect(sandbox_id)  # connect resumes a paused sandbox
    except NullspaceError as exc:
        _fail(exc)
    console.print(f"resumed {sandbox_id}")


@app.command()
def pools() -> None:
    """Show the server's warm pools (target, ready, starting, claimed per template)."""
    from ..client._config import ConnectionConfig
    from ..client._sync._http import APIClient

    api = APIClient(ConnectionConfig.resolve())
    try:
        status = api.request("GET", "/v1/pools")
    except NullspaceError as exc:
        _fail(exc)
    finally:
        api.close()
    table = Table("template", "target", "ready", "starting", "claimed")
    for name, row in (status or {}).items():
        table.add_row(name, *(str(row[k]) for k in ("target", "ready", "starting", "claimed")))
    console.print(table)
