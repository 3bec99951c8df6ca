"""`nullspace sandbox network ID`: show or change a running sandbox's network policy (docs/egress.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .. import Sandbox
from ..client import NetworkInfo
from ._output import console, errors, safe


def policy_of(allow: list[str] | None, mode: str | None) -> str | list[str] | None:
    """--allow NAME (repeatable) and --network none|open → the SDK's `network` argument."""
    if allow and mode not in (None, "allow"):
        raise typer.BadParameter("--allow goes with --network allow (or no --network)")
    if allow:
        return list(allow)
    if mode not in (None, "none", "open"):
        raise typer.BadParameter("--network takes none or open (or give --allow NAME)")
    return mode


def network(
    sandbox_id: Annotated[str, typer.Argument(metavar="ID", help="The sandbox's id (sb_...).")],
    allow: Annotated[list[str] | None, typer.Option(help="Set an allow-list: NAME[:PORTS] (repeatable).")] = None,
    mode: Annotated[str | None, typer.Option("--network", help="Set the policy to none or open.")] = None,
) -> None:
    """Show the sandbox's network policy, traffic and refused destinations; --allow/--network change it."""
    with errors():
        sandbox = Sandbox.connect(sandbox_id)
        policy = policy_of(allow, mode)
        info = sandbox.get_network() if allow is None and mode is None else sandbox.set_network(policy)
        sandbox.close()
    show(info)


def show(info: NetworkInfo) -> None:
    console.print(f"policy: [bold]{info.mode}[/] {safe(', '.join(info.allow))}")
    for name, spec in info.secrets.items():
        console.print(f"secret {safe(name)} → {safe(', '.join(spec.get('hosts', [])))}")
    stats = info.stats
    console.print(f"traffic: {stats.get('bytes_out', 0)} B out, {stats.get('bytes_in', 0)} B in, "
                  f"{stats.get('connections', 0)} connections, {stats.get('refusals', 0)} refused")
    if info.refusals:
        table = Table("refused", "port", "why", box=None, header_style="bold")
        for refusal in info.refusals:
            table.add_row(safe(str(refusal.get("host"))), str(refusal.get("port")), safe(str(refusal.get("reason"))))
        console.print(table)
