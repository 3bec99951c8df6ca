"""state.db: created 0600, migrated from before tenants, keys resolve to principals."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from nullspace.server import store
from nullspace.server.tenants import ADMIN, Principal, Quotas

OLD_SCHEMA = """
CREATE TABLE sandboxes (id TEXT PRIMARY KEY, template TEXT NOT NULL, digest TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL, end_at REAL NOT NULL, ended_at REAL,
    end_reason TEXT, metadata TEXT NOT NULL, env_keys TEXT NOT NULL, cpu REAL NOT NULL,
    memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL, host_uid INTEGER NOT NULL);
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL);
INSERT INTO sandboxes VALUES ('sb_old', 'code-interpreter', 'd', 'running', 1, 2, NULL, NULL,
    '{"k": "v"}', '[]', 1.0, 1024, 2048, 400000);
INSERT INTO api_keys VALUES ('key_old', 'old', '%s', 1);
"""


def test_a_database_from_before_tenants_moves_to_the_default_tenant(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    with sqlite3.connect(db_path) as db:
        db.executescript(OLD_SCHEMA % store.hash_key("ns_old"))
    os.chmod(db_path, 0o644)

    async def check() -> None:
        st = await store.Store.open(db_path)
        try:
            assert await st.principal_for_key("ns_old") == Principal("default", "key_old")
            assert await st.principal_for_key("ns_nope") is None
            record = await st.get_sandbox("sb_old")
            assert record is not None and record.tenant_id == "default"
            assert [r.id for r in await st.list_sandboxes(caller=Principal("other"))] == []
            assert [r.id for r in await st.list_sandboxes(caller=Principal("default"))] == ["sb_old"]
            assert [r.id for r in await st.list_sandboxes(caller=ADMIN)] == ["sb_old"]
        finally:
            await st.close()

    asyncio.run(check())
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert [t.id for t in store.list_tenants(db_path)] == ["default"]
    store.prepare(db_path)  # idempotent
    assert [k["tenant"] for k in store.list_api_keys(db_path)] == ["default"]


def test_keys_tenants_and_quotas(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    with pytest.raises(store.StoreError, match="no tenant 'acme'"):
        store.create_api_key(db_path, "k", "acme")
    store.create_tenant(db_path, "acme", Quotas(max_sandboxes=2))
    with pytest.raises(store.StoreError, match="exists"):
        store.create_tenant(db_path, "acme")
    key_id, key = store.create_api_key(db_path, "k", "acme")
    admin_id, admin_key = store.create_api_key(db_path, "ops", None)
    tenant = store.set_quotas(db_path, "acme", {"max_cpu": 1.5, "max_sandboxes": None})
    assert tenant.quotas == Quotas(max_cpu=1.5)

    async def check() -> None:
        st = await store.Store.open(db_path)
        try:
            assert await st.principal_for_key(key) == Principal("acme", key_id)
            assert (await st.principal_for_key(admin_key)).is_admin  # type: ignore[union-attr]
            assert await st.tenant_quotas("acme") == Quotas(max_cpu=1.5)
            assert await st.tenant_quotas("nobody") == Quotas()
        finally:
            await st.close()

    asyncio.run(check())
    assert store.delete_tenant(db_path, "acme") == 1
    assert [k["id"] for k in store.list_api_keys(db_path)] == [admin_id]


def test_a_bad_record_does_not_take_the_list_down(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    store.prepare(db_path)
    with sqlite3.connect(db_path) as db:
        for sid, meta in (("sb_good", '{"a": "b"}'), ("sb_bad", "{not json")):
            db.execute("INSERT INTO sandboxes (id, template, digest, state, created_at, end_at, metadata,"
                       " env_keys, cpu, memory_mb, disk_mb, host_uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (sid, "t", "d", "dead", 1, 2, meta, "[]", 1.0, 64, 16, 1))

    async def check() -> list[str]:
        st = await store.Store.open(db_path)
        try:
            return [r.id for r in await st.list_sandboxes()]
        finally:
            await st.close()

    assert asyncio.run(check()) == ["sb_good"]
