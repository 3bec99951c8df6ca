"""`nullspace keys`: API keys (for the TCP listener), tenants and their quotas.

Every key belongs to a tenant (or, with `--admin`, to none: an admin key sees everything, as
the unix socket does). A tenant sees only its own sandboxes; its quotas bound what it runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._paths import default_data_dir, state_db
from ..server.store import (
    StoreError,
    create_api_key,
    create_tenant,
    delete_api_key,
    delete_tenant,
    list_api_keys,
    list_tenants,
    set_quotas,
)
from ..server.tenants import DEFAULT_TENANT, TENANT_NAME, Quotas, Tenant

app = typer.Typer(help="Manage API keys, tenants and quotas (keys are needed on TCP).", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants and their quotas.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
console = Console()
DataDir = Annotated[Path | None, typer.Option(help="Server data directory [env NULLSPACE_HOME]")]
Limit = Annotated[str | None, typer.Option(help="a number, or 'none' for no limit")]


def _db(data_dir: Path | None) -> Path:
    return state_db(data_dir or default_data_dir())


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/]")
    raise typer.Exit(1)


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(" ", "seconds")


@app.command()
def create(
    name: str,
    tenant: Annotated[str | None, typer.Option(help=f"The key's tenant [default: {DEFAULT_TENANT}]")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin key: sees and manages every sandbox")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a key; it is printed once, only its hash is stored."""
    if admin and tenant:
        _fail("give --tenant or --admin, not both")
    owner = None if admin else tenant or DEFAULT_TENANT
    try:
        key_id, key = create_api_key(_db(data_dir), name, owner)
    except StoreError as exc:
        _fail(str(exc))
    console.print(f"[green]created[/] {key_id} ({name}, {'admin' if owner is None else f'tenant {owner}'})")
    print(key)


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys")] = None,
    data_dir: DataDir = None,
) -> None:
    """List API keys (ids, names, tenants; keys themselves are never stored)."""
    table = Table("id", "name", "tenant", "created")
    for row in list_api_keys(_db(data_dir), tenant):
        table.add_row(row["id"], row["name"], row["tenant"] or "[bold]admin[/]", _when(row["created_at"]))
    console.print(table)


@app.command()
def delete(key_id: str, data_dir: DataDir = None) -> None:
    """Delete a key: requests with it are refused at once."""
    if not delete_api_key(_db(data_dir), key_id):
        _fail(f"no key {key_id}")
    console.print(f"deleted {key_id}")


def _limits(**given: str | None) -> dict[str, Any]:
    """`--max-cpu 2` → {"max_cpu": 2.0}; "none" lifts a limit; options not given are left out."""
    out: dict[str, Any] = {}
    for name, text in given.items():
        if text is None:
            continue
        if text.strip().lower() == "none":
            out[name] = None
            continue
        try:
            value = float(text) if name == "max_cpu" else int(text)
        except ValueError:
            raise typer.BadParameter(f"--{name.replace('_', '-')} takes a number or 'none', got {text!r}") from None
        if not 0 < value < 1 << 53:
            raise typer.BadParameter(f"--{name.replace('_', '-')} must be positive, got {text!r}")
        out[name] = value
    return out


def _show(tenants: list[Tenant]) -> None:
    table = Table("tenant", "sandboxes", "cpu", "memory MiB", "lifetime s", "created")
    for t in tenants:
        q = t.quotas
        cells = [q.max_sandboxes, q.max_cpu, q.max_memory_mb, q.max_lifetime]
        table.add_row(t.id, *("-" if c is None else f"{c:g}" for c in cells), _when(t.created_at))
    console.print(table)


@tenant_app.command("create")
def tenant_create(
    name: str,
    max_sandboxes: Annotated[str | None, typer.Option(help="Sandboxes running at once")] = None,
    max_cpu: Annotated[str | None, typer.Option(help="CPU cores, summed over its sandboxes")] = None,
    max_memory_mb: Annotated[str | None, typer.Option(help="Memory (MiB), summed over its sandboxes")] = None,
    max_lifetime: Annotated[str | None, typer.Option(help="Seconds from a sandbox's creation to its end")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a tenant (quotas: omitted or 'none' means no limit beyond the server's)."""
    if not TENANT_NAME.match(name):
        _fail(f"invalid tenant name {name!r}: 1-63 of a-z, 0-9, '-', '_', starting with a letter or digit")
    limits = _limits(max_sandboxes=max_sandboxes, max_cpu=max_cpu, max_memory_mb=max_memory_mb, max_lifetime=max_lifetime)
    try:
        tenant = create_tenant(_db(data_dir), name, Quotas(**limits))
    except StoreError as exc:
        _fail(str(exc))
    _show([tenant])


@tenant_app.command("set")
def tenant_set(
    name: str,
    max_sandboxes: Annotated[str | None, typer.Option(help="Sandboxes running at once")] = None,
    max_cpu: Annotated[str | None, typer.Option(help="CPU cores, summed over its sandboxes")] = None,
    max_memory_mb: Annotated[str | None, typer.Option(help="Memory (MiB), summed over its sandboxes")] = None,
    max_lifetime: Annotated[str | None, typer.Option(help="Seconds from a sandbox's creation to its end")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change a tenant's quotas ('none' lifts one); they apply to the next request."""
    limits = _limits(max_sandboxes=max_sandboxes, max_cpu=max_cpu, max_memory_mb=max_memory_mb, max_lifetime=max_lifetime)
    try:
        _show([set_quotas(_db(data_dir), name, limits)])
    except StoreError as exc:
        _fail(str(exc))


@tenant_app.command("list")
def tenant_list(data_dir: DataDir = None) -> None:
    """List tenants and their quotas (- : no limit)."""
    _show(list_tenants(_db(data_dir)))


@tenant_app.command("delete")
def tenant_delete(name: str, data_dir: DataDir = None) -> None:
    """Delete a tenant and its keys; its running sandboxes run on until they end."""
    try:
        keys = delete_tenant(_db(data_dir), name)
    except StoreError as exc:
        _fail(str(exc))
    console.print(f"deleted tenant {name} and {keys} key(s)")
