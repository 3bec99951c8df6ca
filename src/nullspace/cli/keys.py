"""`nullspace keys create|list|delete`: API keys for the TCP listener."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..server.settings import default_data_dir
from ..server.store import create_api_key, delete_api_key, list_api_keys

app = typer.Typer(help="Manage API keys (needed when the server listens on TCP).", no_args_is_help=True)
console = Console()
DataDir = Annotated[Path | None, typer.Option(help="Server data directory [env NULLSPACE_HOME]")]


def _db(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()) / "state.db"


@app.command()
def create(name: str, data_dir: DataDir = None) -> None:
    """Create a key; it is printed once, only its hash is stored."""
    key_id, key = create_api_key(_db(data_dir), name)
    console.print(f"[green]created[/] {key_id} ({name})")
    print(key)


@app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """List API keys (ids and names; keys themselves are never stored)."""
    table = Table("id", "name", "created")
    import datetime as dt

    for row in list_api_keys(_db(data_dir)):
        table.add_row(row["id"], row["name"], dt.datetime.fromtimestamp(row["created_at"]).isoformat(" ", "seconds"))
    console.print(table)


@app.command()
def delete(key_id: str, data_dir: DataDir = None) -> None:
    """Delete a key: requests with it are refused at once."""
    if not delete_api_key(_db(data_dir), key_id):
        console.print(f"[red]no key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"deleted {key_id}")
