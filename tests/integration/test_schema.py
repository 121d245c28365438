"""Schema invariants: tenant-leading keys, backend parity."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from cowork.migrations import migrate
from cowork.storage.sqlite import SqliteDatabase

CATALOG_KEYS = """
SELECT c.relname AS table_name, i.relname AS index_name, ix.indisprimary AS is_primary,
       (SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum = ix.indkey[0]) AS first_column
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
  AND c.relname LIKE 'cowork%%'
  AND c.relname <> 'cowork_migrations'
  AND (ix.indisprimary OR ix.indisunique)
"""


def test_every_postgres_primary_key_and_unique_index_leads_with_tenant_id(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(CATALOG_KEYS).fetchall()
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'cowork%%' "
                "AND tablename <> 'cowork_migrations'"
            )
        }
    assert len(tables) >= 11
    assert {r[0] for r in rows if r[2]} == tables, "every table has a primary key"
    offenders = [(t, i) for t, i, _, first in rows if first != "tenant_id"]
    assert offenders == []


async def test_every_sqlite_primary_key_and_unique_index_leads_with_tenant_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schema.db"
    db = SqliteDatabase(f"sqlite:///{path}")
    await db.open()
    await migrate(db)
    await db.close()
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'cowork%' "
                "AND name <> 'cowork_migrations'"
            )
        ]
        assert len(tables) >= 11
        for table in tables:
            pk = sorted(
                (r[5], r[1]) for r in conn.execute(f"PRAGMA table_info({table})") if r[5] > 0
            )
            assert pk and pk[0][1] == "tenant_id", table
            for _, index, unique, _origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
                if unique:
                    first = conn.execute(f"PRAGMA index_info({index})").fetchone()
                    assert first[2] == "tenant_id", (table, index)
    finally:
        conn.close()


async def test_both_backends_have_the_same_tables_and_columns(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url) as conn:
        pg = {
            (t, c)
            for t, c in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name LIKE 'cowork%%'"
            )
        }
    path = tmp_path / "parity.db"
    db = SqliteDatabase(f"sqlite:///{path}")
    await db.open()
    await migrate(db)
    await db.close()
    conn2 = sqlite3.connect(path)
    try:
        lite = set()
        for (table,) in conn2.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'cowork%'"
        ):
            lite |= {(table, r[1]) for r in conn2.execute(f"PRAGMA table_info({table})")}
    finally:
        conn2.close()
    assert pg == lite
