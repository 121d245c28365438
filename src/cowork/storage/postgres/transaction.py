"""The PostgreSQL adapter's transaction: named queries on one pooled connection, pipelined."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import psycopg
from psycopg.rows import DictRow

from cowork.storage.port import Params, Pending, Row
from cowork.storage.postgres.errors import translate
from cowork.storage.queries import QuerySet
from cowork.storage.transaction import AfterCommitHooks, savepoint_scope

__all__ = ["PgConnection", "PgPending", "PgTransaction"]

PgConnection = psycopg.AsyncConnection[DictRow]


class PgTransaction(AfterCommitHooks):
    """A transaction on a connection in pipeline mode: statements whose results nobody waits
    for (its BEGIN, planner settings, savepoints, :meth:`send`) travel with the next one
    that returns rows or a row count, so they cost no round trip of their own."""

    __slots__ = ("_applied", "_conn", "_queries", "_secrets", "_tenant_id", "pipeline")

    def __init__(
        self, conn: PgConnection, queries: QuerySet, tenant_id: str | None, secrets: tuple[str, ...]
    ) -> None:
        super().__init__()
        self._conn = conn
        self._queries = queries
        self._tenant_id = tenant_id
        self._secrets = secrets
        self._applied: set[str] | None = None
        # The connection's pipeline while the adapter has one open (it sets and clears this).
        self.pipeline: psycopg.AsyncPipeline | None = None

    @property
    def tenant_id(self) -> str | None:
        return self._tenant_id

    async def execute(self, query: str, params: Params | None = None) -> int:
        try:
            cur = await self._conn.execute(self._queries[query], params)
            if self.pipeline is not None:
                await self.pipeline.sync()  # the row count arrives with the results
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None
        return cur.rowcount

    async def send(self, query: str, params: Params | None = None) -> None:
        try:
            await self._conn.execute(self._queries[query], params)
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None

    async def execute_many(self, query: str, params: Sequence[Params]) -> None:
        if not params:
            return
        try:
            async with self._conn.cursor() as cur:
                await cur.executemany(self._queries[query], params)
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None

    async def submit(self, query: str, params: Params | None = None) -> Pending:
        try:
            if query in self._queries.settings:
                await self._apply_settings(query)
            cursor = await self._conn.execute(self._queries[query], params)
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None
        return PgPending(cursor, self._secrets)

    async def fetch_one(self, query: str, params: Params | None = None) -> Row | None:
        try:
            cur = await self._conn.execute(self._queries[query], params)
            return await cur.fetchone()
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None

    async def fetch_all(self, query: str, params: Params | None = None) -> list[Row]:
        try:
            if query in self._queries.settings:
                await self._apply_settings(query)
            cur = await self._conn.execute(self._queries[query], params)
            return await cur.fetchall()
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None

    async def _apply_settings(self, query: str) -> None:
        # Planner settings a query asks for (e.g. the ordered index scan of a log page, which
        # stale statistics right after a burst of writes would turn into a bitmap scan and a
        # sort of every remaining row), once per transaction.
        if self._applied is None:
            self._applied = set()
        if query not in self._applied:
            for setting in self._queries.settings[query].split(";"):
                await self._conn.execute(setting.strip().encode("ascii"))
            self._applied.add(query)

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        return savepoint_scope(self._command)

    async def _command(self, command: str) -> None:
        try:
            await self._conn.execute(command.encode("ascii"))
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None


class PgPending:
    __slots__ = ("_cursor", "_secrets")

    def __init__(self, cursor: psycopg.AsyncCursor[DictRow], secrets: tuple[str, ...]) -> None:
        self._cursor = cursor
        self._secrets = secrets

    async def rows(self) -> list[Row]:
        try:
            return await self._cursor.fetchall()
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None
