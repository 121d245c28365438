"""The migration session of the SQLite adapter.

SQLite has no advisory locks; each file is applied inside ``BEGIN IMMEDIATE`` (the database
write lock, waited for up to the busy timeout) after re-checking the ledger, so concurrent
processes still apply each file exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from cowork.errors import MigrationError, PersistenceError
from cowork.storage.port import AppliedMigration
from cowork.storage.queries import QuerySet
from cowork.storage.sqlite.convert import encode_params

if TYPE_CHECKING:
    from cowork.storage.sqlite.adapter import SqliteDatabase

__all__ = ["SqliteMigrationSession", "split_sqlite_statements"]


def split_sqlite_statements(script: str) -> list[str]:
    """Statements of a script, using SQLite's own notion of a complete statement."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines(keepends=True):
        buffer.append(line)
        candidate = "".join(buffer)
        if sqlite3.complete_statement(candidate):
            if any(
                part.strip() and not part.strip().startswith("--")
                for part in candidate.splitlines()
            ):
                statements.append(candidate.strip())
            buffer = []
    rest = "".join(buffer).strip()
    if any(part.strip() and not part.strip().startswith("--") for part in rest.splitlines()):
        statements.append(rest)
    return statements


class SqliteMigrationSession:
    def __init__(self, db: SqliteDatabase, queries: QuerySet) -> None:
        self._db = db
        self._queries = queries

    async def lock(self, timeout_seconds: float) -> None:
        """Nothing to take: each file takes SQLite's write lock (see module docstring)."""

    async def ensure_ledger(self) -> None:
        query = self._queries["ledger_create"]
        await self._db.run(lambda conn: conn.execute(query))

    async def applied(self) -> list[AppliedMigration]:
        query, exists = self._queries["ledger_select"], self._queries["ledger_exists"]

        def work(conn: sqlite3.Connection) -> list[AppliedMigration]:
            present = conn.execute(exists).fetchone()
            if present is None or not present[0]:
                return []
            return [
                AppliedMigration(name=name, checksum=checksum, applied_at=applied_at)
                for name, checksum, applied_at in conn.execute(query).fetchall()
            ]

        return await self._db.run(work)

    async def apply(self, name: str, sql: str, checksum: str, *, transactional: bool) -> bool:
        statements = split_sqlite_statements(sql)
        has_query, insert_query = self._queries["ledger_has"], self._queries["ledger_insert"]
        started = time.perf_counter()

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                insert_query,
                encode_params(
                    {
                        "name": name,
                        "checksum": checksum,
                        "execution_ms": (time.perf_counter() - started) * 1000,
                    }
                ),
            )

        def work(conn: sqlite3.Connection) -> bool:
            if not transactional:
                for statement in statements:
                    conn.execute(statement)
                record(conn)
                return True
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(has_query, {"name": name}).fetchone() is not None:
                    conn.execute("ROLLBACK")
                    return False
                for statement in statements:
                    conn.execute(statement)
                record(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return True

        try:
            return await self._db.run(work)
        except PersistenceError as exc:
            raise MigrationError(
                f"migration {name} failed and was rolled back: {exc}"
                if transactional
                else f"migration {name} (non-transactional) failed part-way: {exc}"
            ) from None
