"""SQLite persistence: sandboxes and API keys (aiosqlite, WAL)."""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

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
    host_uid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sandboxes_state ON sandboxes(state);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
"""

RUNNING = "running"
PAUSED = "paused"
ALIVE = (RUNNING, PAUSED)  # states whose sandbox still exists on this server


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
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SandboxRecord:
        data = dict(row)
        data["metadata"] = json.loads(data["metadata"])
        data["env_keys"] = json.loads(data["env_keys"])
        return cls(**data)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes of us, fsync only at checkpoints
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def insert_sandbox(self, rec: SandboxRecord) -> None:
        await self._db.execute(
            "INSERT INTO sandboxes (id, template, digest, state, created_at, end_at, metadata,"
            " env_keys, cpu, memory_mb, disk_mb, host_uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.id, rec.template, rec.digest, rec.state, rec.created_at, rec.end_at,
             json.dumps(rec.metadata), json.dumps(rec.env_keys), rec.cpu, rec.memory_mb,
             rec.disk_mb, rec.host_uid),
        )
        await self._db.commit()

    async def get_sandbox(self, sandbox_id: str) -> SandboxRecord | None:
        async with self._db.execute("SELECT * FROM sandboxes WHERE id = ?", (sandbox_id,)) as cur:
            row = await cur.fetchone()
        return SandboxRecord.from_row(row) if row else None

    async def list_sandboxes(self, state: str | None = None) -> list[SandboxRecord]:
        query, args = "SELECT * FROM sandboxes", ()
        if state:
            query, args = query + " WHERE state = ?", (state,)
        async with self._db.execute(query + " ORDER BY created_at", args) as cur:
            return [SandboxRecord.from_row(r) for r in await cur.fetchall()]

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
        ids = [r.id for state in ALIVE for r in await self.list_sandboxes(state)]
        for sandbox_id in ids:
            await self.mark_ended(sandbox_id, "dead", reason)
        return ids

    async def key_exists(self, key: str) -> bool:
        sql = "SELECT 1 FROM api_keys WHERE key_hash = ?"
        async with self._db.execute(sql, (hash_key(key),)) as cur:
            return await cur.fetchone() is not None


def create_api_key(db_path: Path, name: str) -> tuple[str, str]:
    """Create a key (used by the CLI, synchronously); only its hash is stored."""
    key = "ns_" + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(6)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as db:
        db.executescript(SCHEMA)
        db.execute(
            "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?,?,?,?)",
            (key_id, name, hash_key(key), time.time()),
        )
    return key_id, key


def list_api_keys(db_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db_path) as db:
        db.executescript(SCHEMA)
        rows = db.execute("SELECT id, name, created_at FROM api_keys ORDER BY created_at")
        return [{"id": r[0], "name": r[1], "created_at": r[2]} for r in rows]


def delete_api_key(db_path: Path, key_id: str) -> bool:
    with sqlite3.connect(db_path) as db:
        return db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0
