"""SQLite persistence: tenants, API keys and sandboxes (aiosqlite, WAL).

The server uses `Store` (async); the CLI (`nullspace keys`) uses the plain functions below,
synchronously, on the same file. Both open it through `prepare`, which creates the file 0600
(SQLite gives its -wal and -shm files the database's mode) and migrates a database from before
tenants: its keys and sandboxes move to the tenant "default" (docs/tenants.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from .tenants import DEFAULT_TENANT, Principal, Quotas, Tenant

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    end_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    metadata TEXT NOT NULL,
    env_keys TEXT NOT NULL,
    cpu REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_mb INTEGER NOT NULL,
    host_uid INTEGER NOT NULL,
    tenant_id TEXT
);
CREATE INDEX IF NOT EXISTS sandboxes_state ON sandboxes(state);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    tenant_id TEXT
);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    max_sandboxes INTEGER,
    max_cpu REAL,
    max_memory_mb INTEGER,
    max_lifetime INTEGER
);
"""
DB_MODE = 0o600
RUNNING = "running"
PAUSED = "paused"
ALIVE = (RUNNING, PAUSED)  # states whose sandbox still exists on this server
QUOTA_COLUMNS = ("max_sandboxes", "max_cpu", "max_memory_mb", "max_lifetime")


@dataclass
class SandboxRecord:
    id: str
    template: str
    digest: str
    state: str
    created_at: float
    end_at: float
    metadata: dict[str, str]
    env_keys: list[str]
    cpu: float
    memory_mb: int
    disk_mb: int
    host_uid: int
    ended_at: float | None = None
    end_reason: str | None = None
    tenant_id: str | None = None  # the owner; None: created by an admin
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SandboxRecord:
        data = dict(row)
        data["metadata"] = {_text(k): _text(v) for k, v in json.loads(data["metadata"]).items()}
        data["env_keys"] = [_text(k) for k in json.loads(data["env_keys"])]
        return cls(**data)


def _text(value: str) -> str:
    """Stored text as valid Unicode: a lone surrogate stored before the API refused them would
    make every answer that lists the record unencodable."""
    return value.encode("utf-8", "backslashreplace").decode() if isinstance(value, str) else str(value)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prepare(path: Path) -> None:
    """Create the database (mode 0600) or bring an older one up to date; idempotent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DB_MODE))
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(f"{path}{suffix}", DB_MODE)
        except FileNotFoundError:
            pass
    db = sqlite3.connect(path)
    try:
        with db:
            _migrate(db)
            db.executescript(SCHEMA)
    finally:
        db.close()


def _migrate(db: sqlite3.Connection) -> None:
    """Databases from before tenants: their keys and sandboxes belong to the tenant "default"."""
    for table in ("api_keys", "sandboxes"):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        if columns and "tenant_id" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN tenant_id TEXT")
            db.execute(f"UPDATE {table} SET tenant_id = ?", (DEFAULT_TENANT,))
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?, ?)", (DEFAULT_TENANT, time.time()))
            log.info("state.db: %s from before tenants now belong to tenant %r", table, DEFAULT_TENANT)


def _tenant(row: sqlite3.Row | tuple[Any, ...]) -> Tenant:
    return Tenant(id=row[0], created_at=row[1], quotas=Quotas(*row[2:6]))


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        prepare(path)
        db = await aiosqlite.connect(path)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes of us, fsync only at checkpoints
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def insert_sandbox(self, rec: SandboxRecord) -> None:
        await self._db.execute(
            "INSERT INTO sandboxes (id, template, digest, state, created_at, end_at, metadata,"
            " env_keys, cpu, memory_mb, disk_mb, host_uid, tenant_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.id, rec.template, rec.digest, rec.state, rec.created_at, rec.end_at,
             json.dumps(rec.metadata), json.dumps(rec.env_keys), rec.cpu, rec.memory_mb,
             rec.disk_mb, rec.host_uid, rec.tenant_id),
        )
        await self._db.commit()

    async def get_sandbox(self, sandbox_id: str) -> SandboxRecord | None:
        async with self._db.execute("SELECT * FROM sandboxes WHERE id = ?", (sandbox_id,)) as cur:
            row = await cur.fetchone()
        return SandboxRecord.from_row(row) if row else None

    async def list_sandboxes(self, state: str | None = None, caller: Principal | None = None) -> list[SandboxRecord]:
        """Records in creation order; only `caller`'s own unless it is an admin (or None)."""
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if caller is not None and not caller.is_admin:
            where.append("tenant_id = ?")
            args.append(caller.tenant_id)
        query = "SELECT * FROM sandboxes" + (" WHERE " + " AND ".join(where) if where else "")
        records = []
        async with self._db.execute(query + " ORDER BY created_at", args) as cur:
            for row in await cur.fetchall():
                try:
                    records.append(SandboxRecord.from_row(row))
                except (ValueError, TypeError):  # one bad record never takes the list down
                    log.warning("skipping unreadable sandbox record %r", row["id"])
        return records

    async def set_end_at(self, sandbox_id: str, end_at: float) -> None:
        await self._db.execute("UPDATE sandboxes SET end_at = ? WHERE id = ?", (end_at, sandbox_id))
        await self._db.commit()

    async def set_state(self, sandbox_id: str, state: str, end_at: float) -> None:
        """Move a sandbox between the alive states (running, paused) with its new end time."""
        await self._db.execute(
            "UPDATE sandboxes SET state = ?, end_at = ? WHERE id = ? AND state IN (?, ?)",
            (state, end_at, sandbox_id, *ALIVE),
        )
        await self._db.commit()

    async def mark_ended(self, sandbox_id: str, state: str, reason: str) -> None:
        await self._db.execute(
            "UPDATE sandboxes SET state = ?, end_reason = ?, ended_at = ? WHERE id = ? AND state IN (?, ?)",
            (state, reason, time.time(), sandbox_id, *ALIVE),
        )
        await self._db.commit()

    async def mark_all_running_dead(self, reason: str) -> list[str]:
        async with self._db.execute(f"SELECT id FROM sandboxes WHERE state IN ({','.join('?' * len(ALIVE))})", ALIVE) as cur:
            ids = [row[0] for row in await cur.fetchall()]
        for sandbox_id in ids:
            await self.mark_ended(sandbox_id, "dead", reason)
        return ids

    async def principal_for_key(self, key: str) -> Principal | None:
        """The caller an API key stands for, or None for an unknown key."""
        sql = "SELECT id, tenant_id FROM api_keys WHERE key_hash = ?"
        async with self._db.execute(sql, (hash_key(key),)) as cur:
            row = await cur.fetchone()
        return Principal(tenant_id=row[1], key_id=row[0]) if row else None

    async def tenant_quotas(self, tenant_id: str) -> Quotas:
        sql = f"SELECT {', '.join(QUOTA_COLUMNS)} FROM tenants WHERE id = ?"
        async with self._db.execute(sql, (tenant_id,)) as cur:
            row = await cur.fetchone()
        return Quotas(*row) if row else Quotas()


# -- the CLI's side (synchronous) -----------------------------------------------------------
class StoreError(Exception):
    """What the operator asked for cannot be done (unknown tenant, a name taken, ...)."""


@contextmanager
def _connect(db_path: Path) -> Iterator[sqlite3.Connection]:
    """One transaction: committed when the block ends without an error, then closed."""
    prepare(db_path)
    db = sqlite3.connect(db_path)
    try:
        with db:
            yield db
    finally:
        db.close()


def create_tenant(db_path: Path, tenant_id: str, quotas: Quotas | None = None) -> Tenant:
    quotas = quotas or Quotas()
    now = time.time()
    with _connect(db_path) as db:
        try:
            db.execute("INSERT INTO tenants (id, created_at, max_sandboxes, max_cpu, max_memory_mb, max_lifetime)"
                       " VALUES (?,?,?,?,?,?)", (tenant_id, now, *_quota_values(quotas)))
        except sqlite3.IntegrityError:
            raise StoreError(f"tenant {tenant_id!r} exists") from None
    return Tenant(tenant_id, now, quotas)


def _quota_values(quotas: Quotas) -> tuple[Any, ...]:
    return (quotas.max_sandboxes, quotas.max_cpu, quotas.max_memory_mb, quotas.max_lifetime)


def set_quotas(db_path: Path, tenant_id: str, changes: dict[str, Any]) -> Tenant:
    """Change some quotas (`changes`: column → value; None lifts that limit)."""
    if unknown := set(changes) - set(QUOTA_COLUMNS):
        raise StoreError(f"unknown quota {sorted(unknown)}")
    with _connect(db_path) as db:
        for column, value in changes.items():
            db.execute(f"UPDATE tenants SET {column} = ? WHERE id = ?", (value, tenant_id))
    tenant = get_tenant(db_path, tenant_id)
    if tenant is None:
        raise StoreError(f"no tenant {tenant_id!r}")
    return tenant


def get_tenant(db_path: Path, tenant_id: str) -> Tenant | None:
    with _connect(db_path) as db:
        row = db.execute(f"SELECT id, created_at, {', '.join(QUOTA_COLUMNS)} FROM tenants WHERE id = ?",
                         (tenant_id,)).fetchone()
    return _tenant(row) if row else None


def list_tenants(db_path: Path) -> list[Tenant]:
    with _connect(db_path) as db:
        rows = db.execute(f"SELECT id, created_at, {', '.join(QUOTA_COLUMNS)} FROM tenants ORDER BY created_at")
        return [_tenant(r) for r in rows]


def delete_tenant(db_path: Path, tenant_id: str) -> int:
    """Delete a tenant and its keys (its sandboxes keep running until they end); keys deleted."""
    with _connect(db_path) as db:
        if db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,)).rowcount == 0:
            raise StoreError(f"no tenant {tenant_id!r}")
        return db.execute("DELETE FROM api_keys WHERE tenant_id = ?", (tenant_id,)).rowcount


def create_api_key(db_path: Path, name: str, tenant_id: str | None = DEFAULT_TENANT) -> tuple[str, str]:
    """Create a key for `tenant_id` (None: an admin key); only its hash is stored.

    The tenant must exist, except "default", which is created on first use.
    """
    key = "ns_" + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(6)
    with _connect(db_path) as db:
        if tenant_id == DEFAULT_TENANT:
            db.execute("INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?, ?)", (tenant_id, time.time()))
        elif tenant_id is not None and db.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
            raise StoreError(f"no tenant {tenant_id!r}: create it with `nullspace keys tenant create {tenant_id}`")
        db.execute(
            "INSERT INTO api_keys (id, name, key_hash, created_at, tenant_id) VALUES (?,?,?,?,?)",
            (key_id, name, hash_key(key), time.time(), tenant_id),
        )
    return key_id, key


def list_api_keys(db_path: Path, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Every key (or one tenant's): id, name, created_at, tenant (None: admin)."""
    query, args = "SELECT id, name, created_at, tenant_id FROM api_keys", ()
    if tenant_id is not None:
        query, args = query + " WHERE tenant_id = ?", (tenant_id,)
    with _connect(db_path) as db:
        rows = db.execute(query + " ORDER BY created_at", args)
        return [{"id": r[0], "name": r[1], "created_at": r[2], "tenant": r[3]} for r in rows]


def delete_api_key(db_path: Path, key_id: str) -> bool:
    with _connect(db_path) as db:
        return db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0
