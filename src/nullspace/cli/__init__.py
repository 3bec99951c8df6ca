"""The `nullspace` command: one typer app, one module per command group."""

from __future__ import annotations

try:
    import typer
except ImportError as exc:  # pragma: no cover - the SDK alone does not need the CLI
    raise SystemExit("the nullspace CLI needs its extras: pip install 'nullspace[cli,server]'") from exc

from ..mcp.cli import mcp
from . import keys, sandbox, serve, template

app = typer.Typer(help="nullspace: self-hosted sandboxes for untrusted code.", no_args_is_help=True)
app.command("serve")(serve.serve)
app.add_typer(template.app, name="template")
app.add_typer(keys.app, name="keys")
app.add_typer(sandbox.app, name="sandbox")
app.command("mcp")(mcp)


def main() -> None:
    app()
