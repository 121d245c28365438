"""Raw baselines: what the drivers do without Cowork, on the same database and the same rows.

PostgreSQL baselines write into ``raw_event_log``, created as
``CREATE TABLE raw_event_log (LIKE cowork_event_log INCLUDING ALL)``: the same columns, the same
identity, defaults and indexes (row-level security policies are not copied: the raw side pays
no tenant isolation). SQLite baselines write into a copy of our SQLite table, in its own file,
with the same pragmas as the adapter (WAL, ``synchronous = FULL``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cowork.ids import new_id

from .common import AGGREGATE_TYPE, EVENT_TYPE, METADATA, Op, Rate, payload

RAW_TABLE = "raw_event_log"
COLUMNS = (
    "tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, metadata, "
    "correlation_id, causation_id, occurred_at"
)
INSERT = f"INSERT INTO {RAW_TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
SELECT_PAGE = (
    "SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, "
    "payload, metadata, correlation_id, causation_id, occurred_at, recorded_at "
    f"FROM {RAW_TABLE} WHERE tenant_id = %s AND position > %s "
    "ORDER BY position LIMIT %s"
)
UPDATE_COUNTER = "UPDATE raw_counter SET n = n + 1 WHERE id = 1"


def raw_row(tenant_id: str, n: int, writer: int) -> tuple[Any, ...]:
    """The same event row Cowork writes for ``publish(EVENT_TYPE, payload(n, writer), ...)``."""
    return (
        tenant_id,
        new_id(),
        EVENT_TYPE,
        AGGREGATE_TYPE,
        f"agg-{writer}",
        Jsonb(payload(n, writer)),
        Jsonb(METADATA),
        None,
        None,
        datetime.now(UTC),
    )


def create_raw_tables(url: str) -> dict[str, Any]:
    """Create the raw tables (after Cowork's migrations) and describe what the copy carries."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {RAW_TABLE} (LIKE cowork_event_log INCLUDING ALL)")
        conn.execute("CREATE TABLE raw_counter (id integer PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO raw_counter VALUES (1, 0)")

        def columns(table: str) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT column_name, data_type, is_nullable, column_default, is_identity, "
                "identity_generation FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()

        def indexes(table: str) -> list[str]:
            rows = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                (table,),
            ).fetchall()
            return sorted(str(r[0]).split(" USING ", 1)[1] for r in rows)

        ours_cols, raw_cols = columns("cowork_event_log"), columns(RAW_TABLE)
        ours_idx, raw_idx = indexes("cowork_event_log"), indexes(RAW_TABLE)
    return {
        "statement": f"CREATE TABLE {RAW_TABLE} (LIKE cowork_event_log INCLUDING ALL)",
        "same_columns_identity_defaults": ours_cols == raw_cols,
        "same_indexes": ours_idx == raw_idx,
        "indexes": raw_idx,
        "identity": [c[0] for c in raw_cols if c[4] == "YES"],
        "defaults": {c[0]: c[3] for c in raw_cols if c[3] is not None},
        "row_level_security": "not copied (raw side pays no tenant isolation)",
    }


async def connect(url: str, *, autocommit: bool = False) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)


def publish_ops(
    conns: Sequence[psycopg.AsyncConnection[Any]], tenant_id: str, *, autocommit: bool = False
) -> list[Op]:
    """``INSERT …; COMMIT`` of one event row per transaction, one op per connection.

    psycopg's default (``autocommit=False``) sends ``BEGIN``, the ``INSERT`` and ``COMMIT``:
    three round trips. On ``autocommit=True`` connections the ``INSERT`` is its own implicit
    transaction: one round trip, the floor for a single-row write."""

    def make(i: int) -> Op:
        conn = conns[i]
        counter = itertools.count()

        async def op() -> None:
            await conn.execute(INSERT, raw_row(tenant_id, next(counter), i))
            if not autocommit:
                await conn.commit()

        return op

    return [make(i) for i in range(len(conns))]


def single_row_ops(conn: psycopg.AsyncConnection[Any]) -> list[Op]:
    """``UPDATE`` of one row ``; COMMIT``: the raw transaction rate."""

    async def op() -> None:
        await conn.execute(UPDATE_COUNTER)
        await conn.commit()

    return [op]


async def batch(url: str, tenant_id: str, total: int, size: int = 500) -> Rate:
    """``executemany`` of ``size`` rows per transaction until ``total`` rows are written."""
    conn = await connect(url)
    try:
        ops = 0
        counter = itertools.count()
        start = time.perf_counter()
        for _ in range(total // size):
            rows = [raw_row(tenant_id, next(counter), 0) for _ in range(size)]
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(INSERT, rows)
            ops += 1
        return Rate(ops, time.perf_counter() - start, 1, size)
    finally:
        await conn.close()


async def read(url: str, tenant_id: str, page: int = 500) -> Rate:
    """Paged ``SELECT`` (keyset on position) of every row of ``tenant_id``; rows/s."""
    conn = await connect(url, autocommit=True)
    try:
        rows_read = 0
        last = 0
        start = time.perf_counter()
        while True:
            cur = await conn.execute(SELECT_PAGE, (tenant_id, last, page))
            rows = await cur.fetchall()
            rows_read += len(rows)
            if len(rows) < page:
                break
            last = rows[-1][1]
        return Rate(rows_read, time.perf_counter() - start, 1)
    finally:
        await conn.close()


def analyze(url: str) -> None:
    """Fresh planner statistics for both event tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE cowork_event_log")
        conn.execute(f"ANALYZE {RAW_TABLE}")


# -- SQLite -----------------------------------------------------------------------------------
def sqlite_schema(ours_path: str) -> list[str]:
    """Our SQLite event table and its indexes, renamed to ``raw_event_log``."""
    conn = sqlite3.connect(ours_path)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'cowork_event_log' "
            "AND sql IS NOT NULL ORDER BY type DESC, name"
        ).fetchall()
    finally:
        conn.close()
    return [str(r[0]).replace("cowork_event_log", RAW_TABLE) for r in rows]


class RawSqlite:
    """``sqlite3`` insert + commit of the same row into a copy of our table, in its own file,
    with the adapter's pragmas (WAL, ``synchronous = FULL``, busy timeout, foreign keys)."""

    def __init__(self, path: str, ddl: Sequence[str], tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout = 5000")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise RuntimeError(f"could not enable WAL mode (got {mode})")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        for statement in ddl:
            self.conn.execute(statement)
        self.conn.commit()
        self.position = itertools.count(1)
        self.insert = (
            f"INSERT INTO {RAW_TABLE} (tenant_id, position, tx_id, event_id, event_type, "
            "aggregate_type, aggregate_id, payload, metadata, correlation_id, causation_id, "
            "occurred_at, recorded_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def op(self) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        n = next(self.position)
        self.conn.execute(
            self.insert,
            (
                self.tenant_id,
                n,
                new_id(),
                EVENT_TYPE,
                AGGREGATE_TYPE,
                "agg-0",
                json.dumps(payload(n), separators=(",", ":")),
                json.dumps(METADATA, separators=(",", ":")),
                None,
                None,
                now,
                now,
            ),
        )
        self.conn.commit()

    def slice(self, seconds: float) -> tuple[int, float]:
        ops = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            self.op()
            ops += 1
        return ops, time.perf_counter() - start

    async def run_slice(self, seconds: float) -> tuple[int, float]:
        return await asyncio.to_thread(self.slice, seconds)

    def close(self) -> None:
        self.conn.close()
