"""`nullspace doctor`: check every host prerequisite; for each, ok / what is wrong / the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .. import APIClient
from ._checks import FAIL, OK, WARN, Host, run_all
from ._output import console

MARKS = {OK: "[green]✓ ok[/]", WARN: "[yellow]! warn[/]", FAIL: "[red]✗ fail[/]"}


def _server_health(api_url: str | None) -> str | None:
    try:
        with APIClient.from_env(api_url=api_url) as api:
            if api.healthy():
                return None
            where = api.config.socket_path or api.config.base_url
    except Exception as exc:  # a malformed URL, say
        return str(exc)
    return f"nothing answers on {where}"


def doctor(
    data_dir: Annotated[Path | None, typer.Option(help="Server data directory [env NULLSPACE_HOME].")] = None,
    cgroup_fs: Annotated[Path, typer.Option(help="Where the cgroup filesystem is mounted.")] = Path("/sys/fs/cgroup"),
    proc: Annotated[Path, typer.Option(help="Where procfs is mounted.", hidden=True)] = Path("/proc"),
    server: Annotated[bool, typer.Option(help="Also check that the server answers.")] = True,
    api_url: Annotated[str | None, typer.Option(help="Server to check [env NULLSPACE_API_URL; default: the "
                                                "local unix socket].")] = None,
) -> None:
    """Check this host can run sandboxes: root, cgroups, user namespaces, bubblewrap, seccomp,
    overlayfs, disk, memory, templates, server. Exit code 1 when something blocks sandboxes."""
    from ..server.settings import default_data_dir

    host = Host(
        data_dir=data_dir or default_data_dir(), cgroup_fs=cgroup_fs, proc=proc,
        api_health=(lambda: _server_health(api_url)) if server else None,
    )
    with console.status("checking the host…"):
        results = run_all(host)
    table = Table("", "check", "details", box=None, header_style="bold", show_header=False, padding=(0, 1))
    for check in results:
        table.add_row(MARKS[check.status], f"[bold]{check.name}[/]", escape(check.detail))
        if check.fix and check.status != OK:
            table.add_row("", "", f"[cyan]fix:[/] {escape(check.fix)}")
    console.print(table, soft_wrap=True)
    failed = [c.name for c in results if c.status == FAIL]
    warned = [c.name for c in results if c.status == WARN]
    if failed:
        console.print(f"[red bold]{len(failed)} problem(s) block sandboxes:[/] {', '.join(failed)}")
        raise typer.Exit(1)
    note = f" ({len(warned)} warning(s): {', '.join(warned)})" if warned else ""
    console.print(f"[green bold]this host can run sandboxes[/]{note}")
