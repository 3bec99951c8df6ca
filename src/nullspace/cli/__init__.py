"""The `nullspace` command: one typer app, one module per command group."""

from __future__ import annotations

try:
    import typer
except ImportError as exc:  # pragma: no cover - the SDK alone does not need the CLI
    raise SystemExit("the nullspace CLI needs its extras: pip install 'nullspace[cli,server]'") from exc

from ..mcp.cli import mcp
from . import doctor, keys, network, sandbox, serve, template

app = typer.Typer(
    help="nullspace: self-hosted sandboxes for untrusted code. Start with `nullspace doctor`.",
    no_args_is_help=True,
)
app.command("serve")(serve.serve)
app.command("doctor")(doctor.doctor)
sandbox.app.command("network")(network.network)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(template.app, name="template")
app.add_typer(keys.app, name="keys")
app.command("mcp")(mcp)



def _alias_ls(group: typer.Typer) -> None:
    """One verb across groups: every `list` also answers to `ls` (hidden), at every depth."""
    names = {info.name for info in group.registered_commands}
    for info in list(group.registered_commands):
        if info.name == "list" and "ls" not in names and info.callback is not None:
            group.command("ls", help="Alias of list.", hidden=True)(info.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _alias_ls(sub.typer_instance)


_alias_ls(app)


def main() -> None:
    app()
