"""One-trip transactions on PostgreSQL EXECUTE statements prepared once per connection: they
survive a session that lost its prepared statements, and a query the server cannot prepare is
sent inline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.adapt import Transformer

from cowork.migrations import migrate
from cowork.storage.port import Json
from cowork.storage.postgres import PostgresDatabase
from cowork.storage.postgres.script import ScriptCompiler


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresDatabase]:
    db = PostgresDatabase(pg_url, pool_min_size=1, pool_max_size=1)
    await db.open()
    await migrate(db)
    try:
        yield db
    finally:
        await db.close()


def _snapshot(snapshot_id: str) -> dict[str, object]:
    return {
        "tenant_id": "t1",
        "snapshot_id": snapshot_id,
        "workspace_id": "ws",
        "owner_id": "owner",
        "label": "50% off, %(x)s is text",  # in a value: data, not a placeholder
        "created_by": "tester",
        "now": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "content": Json({"it's": [1, None, "x"]}),
    }


async def _prepared_statements(db: PostgresDatabase) -> list[str]:
    async with db._require_pool().connection() as conn:  # the pool's one session
        cursor = await conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [row["name"] for row in await cursor.fetchall()]


async def test_statements_are_prepared_once_and_executed(pg: PostgresDatabase) -> None:
    for n in range(3):
        await pg.run_in_one_trip([("snapshot_insert", _snapshot(f"s{n}"))], tenant_id="t1")
    assert "cowork_q_snapshot_insert" in await _prepared_statements(pg)
    [rows] = await pg.run_in_one_trip(
        [("snapshot_get", {"tenant_id": "t1", "snapshot_id": "s2"})], tenant_id="t1"
    )
    assert rows[0]["label"] == "50% off, %(x)s is text"
    assert rows[0]["content"] == {"it's": [1, None, "x"]}


async def test_a_session_that_lost_its_prepared_statements_prepares_them_again(
    pg: PostgresDatabase,
) -> None:
    await pg.run_in_one_trip([("snapshot_insert", _snapshot("a"))], tenant_id="t1")
    async with pg._require_pool().connection() as conn:  # a pooler or DISCARD ALL did this
        await conn.execute("DEALLOCATE ALL")
    [_, rows] = await pg.run_in_one_trip(
        [
            ("snapshot_insert", _snapshot("b")),
            ("snapshot_get", {"tenant_id": "t1", "snapshot_id": "b"}),
        ],
        tenant_id="t1",
    )
    assert [r["snapshot_id"] for r in rows] == ["b"]  # written once: no duplicate-key error
    assert "cowork_q_snapshot_insert" in await _prepared_statements(pg)


async def test_a_query_the_server_cannot_prepare_is_sent_inline(pg: PostgresDatabase) -> None:
    pg._queries["untyped"] = "SELECT %(value)s IS NULL AS missing"  # $1 has no inferable type
    [rows] = await pg.run_in_one_trip([("untyped", {"value": "hello"})], tenant_id="t1")
    assert rows == [{"missing": False}]
    assert "untyped" in pg._scripts.unpreparable
    [rows] = await pg.run_in_one_trip([("untyped", {"value": None})], tenant_id="t1")
    assert rows == [{"missing": True}]


async def test_inline_binding_sends_what_psycopgs_client_cursor_would(
    pg: PostgresDatabase,
) -> None:
    query = "SELECT %(a)s::int, %(b)s::text, %(c)s::timestamptz, %(d)s::jsonb, %(a)s, '%%' AS pct"
    params = {
        "a": 7,
        "b": "it's %(b)s; -- not SQL",
        "c": datetime(2026, 1, 2, tzinfo=UTC),
        "d": Json({"k": ["v", None]}),
    }
    compiler = ScriptCompiler({"q": query})
    script = compiler.script((), [("q", params)], (), prepare=False)
    async with pg._require_pool().connection() as conn:
        ours = script.bind(Transformer.from_context(conn))
        theirs = psycopg.AsyncClientCursor(conn).mogrify(query, params)
        assert ours == theirs.encode() + b";\n"
        cursor = await conn.execute(ours, prepare=False)
        assert await cursor.fetchone() == {
            "int4": 7,
            "text": "it's %(b)s; -- not SQL",
            "timestamptz": datetime(2026, 1, 2, tzinfo=UTC),
            "jsonb": {"k": ["v", None]},
            "?column?": 7,
            "pct": "%",
        }
