"""`nullspace sandbox ...`: the public SDK from a shell (create, list, run, logs, files, shell, kill)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import APIClient, Sandbox, SandboxNotFoundError
from . import files, shell
from ._output import ago, console, errors, fail, safe, spinner

app = typer.Typer(help="Create, list, run code in, inspect and kill sandboxes.", no_args_is_help=True)
app.add_typer(files.app, name="files")
app.command("shell")(shell.shell)

FOLLOW_INTERVAL = 1.0  # seconds between two polls of `logs --follow`
SandboxId = Annotated[str, typer.Argument(metavar="ID", help="The sandbox's id (sb_...).")]


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


@app.command()
def create(
    template: Annotated[str, typer.Option(help="Template to start from.")] = "code-interpreter",
    timeout: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 300,
    metadata: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label (repeatable).")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE environment variable (repeatable).")] = None,
    allow: Annotated[list[str] | None, typer.Option(help="Network allow-list entry NAME[:PORTS] (repeatable).")] = None,
    network: Annotated[str | None, typer.Option(help="Network policy none (default) or open.")] = None,
) -> None:
    """Create a sandbox and print its id."""
    from .network import policy_of

    with errors():
        sandbox = Sandbox.create(template=template, timeout=timeout, metadata=_pairs(metadata, "--metadata") or None,
                                 envs=_pairs(env, "--env") or None, network=policy_of(allow, network))
    sandbox.close()
    print(sandbox.sandbox_id)


def list_(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Also sandboxes that ended (killed, timed out, dead).")] = False,
    metadata: Annotated[list[str] | None, typer.Option(help="Only those with this KEY=VALUE (repeatable).")] = None,
) -> None:
    """List running sandboxes (--all: every sandbox the server remembers)."""
    with errors():
        infos = Sandbox.list(metadata=_pairs(metadata, "--metadata") or None, state=None if all_ else "running")
    if not infos:
        console.print("No sandboxes." if all_ else "No running sandboxes (--all shows ended ones).")
        return
    now = datetime.now(UTC)
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)  # ids are copied from here: never cut or wrapped
    for name in ("template", "state", "created", "ends" if not all_ else "ends / ended"):
        table.add_column(name, no_wrap=True)
    table.add_column("metadata", overflow="fold")
    if all_:
        table.add_column("why it ended", overflow="fold")
    for info in sorted(infos, key=lambda i: i.created_at or now, reverse=True):
        state = {"running": "[green]running[/]"}.get(info.state, info.state)
        meta = " ".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))
        row = [info.sandbox_id, info.template, state, ago(info.created_at, now), ago(info.end_at, now), safe(meta)]
        if all_:
            row.append(safe(info.end_reason or ""))
        table.add_row(*row)
    console.print(table)


app.command("list")(list_)


@app.command()
def run(
    sandbox_id: SandboxId,
    code: Annotated[str, typer.Argument(help="Code, or - to read it from stdin.")],
    language: Annotated[str, typer.Option(help="python, r, javascript, typescript, java or bash.")] = "python",
) -> None:
    """Run code in a sandbox; its output streams as it happens. Exit code 1 on an error."""
    source = sys.stdin.read() if code == "-" else code
    with errors():
        sandbox = Sandbox.connect(sandbox_id)
        try:
            execution = sandbox.run_code(
                source, language=language,
                on_stdout=lambda m: sys.stdout.write(m.line), on_stderr=lambda m: sys.stderr.write(m.line),
            )
        finally:
            sandbox.close()
    if execution.text is not None:
        print(execution.text)
    if execution.error:
        fail(f"{execution.error.name}: {safe(execution.error.value)}")


@app.command()
def kill(sandbox_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Sandbox ids.")]) -> None:
    """Kill sandboxes now (their processes, files and mounts are gone at once)."""
    missing = []
    for sandbox_id in sandbox_ids:
        with errors():
            try:
                sandbox = Sandbox.connect(sandbox_id)
            except SandboxNotFoundError as exc:  # not running: say so, go on with the others
                missing.append(f"{sandbox_id}: {exc}")
                continue
            sandbox.kill()
            sandbox.close()
        console.print(f"killed {sandbox_id}")
    if missing:
        fail("; ".join(safe(m) for m in missing))


def _print_line(line: dict[str, Any]) -> None:
    when = datetime.fromtimestamp(line["ts"]).strftime("%H:%M:%S")
    level = str(line["level"]).upper()
    style = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}.get(level, "dim")
    # messages hold request paths a client chose: escaped for the terminal and for rich markup
    console.print(f"[dim]{when}[/] [{style}]{level:<7}[/] {safe(str(line['message']))}",
                  highlight=False, soft_wrap=True)


@app.command()
def logs(
    sandbox_id: SandboxId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the sandbox ends.")] = False,
) -> None:
    """Show what the server logged about a sandbox and the tail of its agent's output.

    Server lines (create, every request, kernel deaths and limits hit, end and why) are kept in
    memory for the last 1000 sandboxes, 200 lines each; the agent's stdout/stderr tail (what the
    sandbox itself wrote outside runs: kernel crashes, agent errors) exists only while it runs.
    """
    seen: list[tuple[Any, ...]] = []
    with errors(), APIClient.from_env() as api:
        while True:
            data: dict[str, Any] = api.request("GET", f"/v1/sandboxes/{sandbox_id}/logs")
            lines = data.get("server") or []
            keys = [(line["ts"], line["logger"], line["message"]) for line in lines]
            start = next((i + 1 for i in range(len(keys) - 1, -1, -1) if seen and keys[i] == seen[-1]), 0)
            for line in lines[start:]:
                _print_line(line)
            seen = keys or seen
            output = data.get("output")
            if not follow or output is None:
                break
            try:
                time.sleep(FOLLOW_INTERVAL)
            except KeyboardInterrupt:
                return
    if output is None:
        console.print("[dim]-- the sandbox has ended: no agent output --[/]")
    elif output:
        console.print("[dim]-- agent output (written by the sandbox) --[/]")
        console.print(safe(output), highlight=False, soft_wrap=True)
    else:
        console.print("[dim]-- the agent has written no output --[/]")


@app.command()
def install(
    sandbox_id: SandboxId,
    packages: Annotated[list[str], typer.Argument(metavar="PACKAGE...", help="e.g. humanize==4.9.0")],
    language: Annotated[str, typer.Option(help="python (pip) or javascript (npm).")] = "python",
) -> None:
    """Install packages into a running sandbox (resolved and downloaded by the server)."""
    with errors():
        sandbox = Sandbox.connect(sandbox_id)
        try:
            with spinner(f"installing {', '.join(packages)}"):
                result = sandbox.install_packages(packages, language=language)
        finally:
            sandbox.close()
    for name, version in result.installed:
        console.print(f"installed {name} {version}")


@app.command()
def pause(
    sandbox_id: SandboxId,
    timeout: Annotated[int | None, typer.Option(help="kill it if not resumed within this many seconds")] = None,
) -> None:
    """Freeze a sandbox and move its memory to swap until it is resumed (docs/pause.md)."""
    with errors():
        sandbox = Sandbox.connect(sandbox_id)
        try:
            info = sandbox.pause(timeout)
        finally:
            sandbox.close()
    mib = 1 << 20
    console.print(f"paused {sandbox_id}: {info.memory_before_bytes // mib} MiB -> "
                  f"{info.memory_after_bytes // mib} MiB in RAM; killed at {info.paused_until:%Y-%m-%d %H:%M:%S} UTC unless resumed")


@app.command()
def resume(sandbox_id: SandboxId) -> None:
    """Thaw a paused sandbox; it gets back the lifetime it had left."""
    with errors():
        Sandbox.connect(sandbox_id).close()  # connect resumes a paused sandbox
    console.print(f"resumed {sandbox_id}")


@app.command()
def pools() -> None:
    """Show the server's warm pools (target, ready, starting, claimed per template)."""
    with errors(), APIClient.from_env() as api:
        status = api.request("GET", "/v1/pools") or {}
    table = Table("template", "target", "ready", "starting", "claimed", box=None, header_style="bold")
    for name, row in status.items():
        table.add_row(name, *(str(row[k]) for k in ("target", "ready", "starting", "claimed")))
    console.print(table)
