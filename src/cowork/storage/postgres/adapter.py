"""PostgreSQL implementation of the storage port.

Connections come from a psycopg_pool pool in autocommit mode; a transaction is opened with one
round trip that both begins it and sets the tenant scope (``cowork.tenant_id``) on which the
row-level security policies are keyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.abc import Query
from psycopg.adapt import Transformer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from cowork.errors import CoworkError, PersistenceUnavailable
from cowork.redaction import redact_url, scrub, url_secrets
from cowork.storage.port import Backend, Capabilities, Health, Params, Row
from cowork.storage.postgres.errors import translate
from cowork.storage.postgres.jsonb import configure_json
from cowork.storage.postgres.migrations_session import PostgresMigrationSession
from cowork.storage.postgres.notify import PostgresWakeups
from cowork.storage.postgres.rows import names_row, returns_rows
from cowork.storage.postgres.script import ScriptCompiler
from cowork.storage.postgres.tls import secure_url
from cowork.storage.postgres.transaction import PgConnection, PgTransaction
from cowork.storage.queries import QuerySet, load_queries

__all__ = ["PostgresDatabase"]

_log = logging.getLogger("cowork.storage")
# NOTIFY wakes other processes' consumers, so polling is only a fallback; data-modifying CTEs
# make a workflow start or checkpoint one statement.
_CAPABILITIES = Capabilities(
    cross_process_wakeups=True, poll_interval=1.0, one_statement_saves=True
)
# Enters a tenant's scope; the flag says whether the transaction may append events (readers'
# commit horizons wait only for transactions that may; see 0002_tenant_horizon.sql).
_ENTER_TENANT = b"SELECT cowork_enter_tenant(%s, %s)"
# The '*' scope as cowork_enter_tenant('*', true) enters it (see 0002_tenant_horizon.sql), spelled
# out so that it also works before the migrations have run.
_ENTER_ANY_TENANT = (
    b"SELECT set_config('cowork.tenant_id', '*', true), set_config('cowork.appends', 'on', true), "
    b"pg_advisory_xact_lock_shared(1668249451, hashtext('*'))"
)


class PostgresDatabase:
    """A pool of PostgreSQL connections behind the storage port."""

    def __init__(
        self,
        url: str,
        *,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        idle_timeout_seconds: float = 300.0,
        connect_timeout_seconds: float = 5.0,
        statement_timeout_seconds: float = 30.0,
        extra_secrets: Sequence[str] = (),
        application_name: str = "cowork",
    ) -> None:
        self._url = secure_url(url)
        self._display_url = redact_url(self._url)
        self._secrets = tuple(dict.fromkeys((*url_secrets(url), *extra_secrets)))
        self._min = pool_min_size
        self._max = max(pool_max_size, pool_min_size, 1)
        self._idle = idle_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._statement_timeout_ms = int(statement_timeout_seconds * 1000)
        self._application_name = application_name
        self._queries = load_queries("cowork.storage.postgres")
        self._scripts = ScriptCompiler(self._queries)
        self._prepared_on: weakref.WeakKeyDictionary[PgConnection, set[str]] = (
            weakref.WeakKeyDictionary()
        )
        self._pool: AsyncConnectionPool[PgConnection] | None = None
        self._wakeups = PostgresWakeups(self.connect)
        self._pool_check: asyncio.Task[None] | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        return "postgresql"

    @property
    def durable(self) -> bool:
        return True

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    @property
    def display_url(self) -> str:
        return self._display_url

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    @property
    def queries(self) -> QuerySet:
        return self._queries

    def has_query(self, query: str) -> bool:
        return query in self._queries

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._display_url!r})"

    # -- connections ------------------------------------------------------------------------
    def connect_kwargs(self, *, autocommit: bool = True) -> dict[str, Any]:
        options = f"-c statement_timeout={self._statement_timeout_ms}"
        return {
            "autocommit": autocommit,
            "connect_timeout": max(1, round(self._connect_timeout)),
            "application_name": self._application_name,
            "options": options,
        }

    async def connect(self) -> PgConnection:
        """A dedicated connection outside the pool (migrations, LISTEN); caller closes it."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, row_factory=dict_row, **self.connect_kwargs()
            )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        await configure_json(conn)
        return conn

    def _unavailable(self, exc: BaseException) -> CoworkError:
        reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "", self._secrets)
        return PersistenceUnavailable(
            f"cannot connect to PostgreSQL at {self._display_url}: {reason or type(exc).__name__}"
        )

    async def open(self) -> None:
        if self._pool is not None:
            return
        probe = await self.connect()  # fails fast with the server's own reason
        await probe.close()
        pool: AsyncConnectionPool[PgConnection] = AsyncConnectionPool(
            self._url,
            open=False,
            min_size=self._min,
            max_size=self._max,
            max_idle=self._idle,
            timeout=self._connect_timeout,
            kwargs={**self.connect_kwargs(), "row_factory": dict_row},
            configure=configure_json,
            name="cowork",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise self._unavailable(exc) from None
        self._pool = pool

    @property
    def wakeups(self) -> PostgresWakeups:
        return self._wakeups

    async def close(self) -> None:
        await self._wakeups.close()
        self._wakeups = PostgresWakeups(self.connect)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> AsyncConnectionPool[PgConnection]:
        if self._pool is None:
            raise PersistenceUnavailable("the PostgreSQL pool is not open (runtime closed?)")
        return self._pool

    @property
    def pool_stats(self) -> dict[str, int]:
        return dict(self._pool.get_stats()) if self._pool is not None else {}

    # -- transactions -----------------------------------------------------------------------
    @staticmethod
    def _begin_statements(
        tenant_id: str | None, read_only: bool, appends: bool
    ) -> tuple[tuple[bytes, tuple[Any, ...] | None], ...]:
        """BEGIN and the tenant scope, as separate statements (a pipeline sends one per
        message); sent without waiting, with the transaction's first real statement."""
        begin = b"BEGIN READ ONLY" if read_only else b"BEGIN"
        if tenant_id is None:  # operator/worker scope: no role switch, works pre-migration;
            # the scope lock tells every tenant's readers it may append their events.
            return ((begin, None), (_ENTER_ANY_TENANT, None))
        return ((begin, None), (_ENTER_TENANT, (tenant_id, appends and not read_only)))

    @asynccontextmanager
    async def transaction(
        self, *, tenant_id: str | None, read_only: bool = False, appends: bool = True
    ) -> AsyncIterator[PgTransaction]:
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                tx = PgTransaction(conn, self._queries, tenant_id, self._secrets)
                try:
                    async with conn.pipeline() as pipeline:
                        tx.pipeline = pipeline
                        for statement, params in self._begin_statements(
                            tenant_id, read_only, appends
                        ):
                            await conn.execute(statement, params)
                        yield tx
                        await conn.execute(b"COMMIT")
                except BaseException:
                    tx.pipeline = None
                    await _rollback_quietly(conn)
                    raise
                tx.pipeline = None
        except psycopg.Error as exc:
            raise self._failed(exc) from None
        except PersistenceUnavailable:
            self._schedule_pool_check()
            raise
        await tx.run_after_commit()

    async def run_alone(self, query: str, params: Params, *, tenant_id: str) -> list[Row]:
        # The *_alone queries set their own tenant scope, so an autocommit connection runs
        # them as one implicit transaction in a single round trip.
        pool = self._require_pool()
        text = self._queries[query]
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(text, {**params, "tenant_id": tenant_id})
                return await cursor.fetchall()
        except (psycopg.Error, UnicodeError) as exc:
            raise self._failed(exc) from None

    async def run_in_one_trip(
        self, statements: Sequence[tuple[str, Params]], *, tenant_id: str
    ) -> list[list[Row]]:
        # One simple-query message: BEGIN, the tenant scope, the statements, COMMIT, with the
        # parameters bound on the client (quoted by each type's dumper; see script.py) and
        # the named statements EXECUTEd from a per-connection PREPARE (planned once). It
        # costs a third of a pipelined transaction's client CPU and one round trip. An error
        # aborts the rest of the message; the transaction is then rolled back here.
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                try:
                    return await self._run_script(conn, statements, tenant_id)
                except psycopg.errors.InvalidSqlStatementName:
                    # The session lost its prepared statements (DISCARD ALL, a pooler
                    # between us and the server): prepare again, once.
                    self._prepared_on.pop(conn, None)
                    return await self._run_script(conn, statements, tenant_id)
        except (psycopg.Error, UnicodeError) as exc:
            raise self._failed(exc) from None

    async def _run_script(
        self, conn: PgConnection, statements: Sequence[tuple[str, Params]], tenant_id: str
    ) -> list[list[Row]]:
        script = self._scripts.script(
            (("BEGIN", {}), ("SELECT cowork_enter_tenant(%(scope)s, true)", {"scope": tenant_id})),
            statements,
            (("COMMIT", {}),),
        )
        if script.prepared:
            await self._prepare(conn, script.prepared)
            if any(name in self._scripts.unpreparable for name in script.prepared):
                return await self._run_script(conn, statements, tenant_id)
        text = script.bind(Transformer.from_context(conn))
        cursor = conn.cursor(row_factory=names_row)
        try:
            await cursor.execute(text, prepare=False)
            results: list[list[Row]] = []
            index = 0
            while True:
                if 2 <= index < 2 + len(statements):
                    results.append(await cursor.fetchall() if returns_rows(cursor) else [])
                index += 1
                if not cursor.nextset():
                    break
        except BaseException:
            await _rollback_quietly(conn)
            raise
        return results

    async def _prepare(self, conn: PgConnection, names: Sequence[str]) -> None:
        """PREPARE on this connection the named queries it has not prepared yet; a query the
        server will not prepare (it cannot infer a parameter's type) is sent inline from
        then on."""
        done = self._prepared_on.setdefault(conn, set())
        for name in names:
            if name in done:
                continue
            try:
                await conn.execute(self._scripts.prepare(name), prepare=False)
            except psycopg.errors.DuplicatePreparedStatement:
                pass
            except (psycopg.errors.IndeterminateDatatype, psycopg.errors.AmbiguousParameter):
                _log.warning("query %s cannot be prepared; it is sent inline", name)
                self._scripts.unpreparable.add(name)
                continue
            done.add(name)

    def _failed(self, exc: psycopg.Error | UnicodeError) -> CoworkError:
        error = translate(exc, secrets=self._secrets)
        if isinstance(error, PersistenceUnavailable):
            self._schedule_pool_check()
        return error

    def _schedule_pool_check(self) -> None:
        """After a lost connection, test the idle ones now (a restarted server leaves them all
        dead) instead of failing one caller per dead connection."""
        pool = self._pool
        if pool is None or (self._pool_check is not None and not self._pool_check.done()):
            return
        self._pool_check = asyncio.get_running_loop().create_task(self._check_pool(pool))

    @staticmethod
    async def _check_pool(pool: AsyncConnectionPool[PgConnection]) -> None:
        with contextlib.suppress(Exception):
            await pool.check()

    async def health(self) -> Health:
        started = time.perf_counter()
        try:
            if self._pool is None:
                conn = await self.connect()
                try:
                    await conn.execute(self._queries["health_check"])
                finally:
                    await conn.close()
            else:
                async with self._pool.connection(timeout=self._connect_timeout) as pooled:
                    await pooled.execute(self._queries["health_check"])
        except (psycopg.Error, CoworkError, OSError) as exc:
            message = exc if isinstance(exc, CoworkError) else translate(exc, secrets=self._secrets)
            return Health(healthy=False, backend="postgresql", latency_ms=None, error=str(message))
        latency = (time.perf_counter() - started) * 1000
        return Health(healthy=True, backend="postgresql", latency_ms=latency)

    @asynccontextmanager
    async def migration_session(self) -> AsyncIterator[PostgresMigrationSession]:
        conn = await self.connect()
        try:
            yield PostgresMigrationSession(conn, self._queries, self._secrets)
        finally:
            await conn.close()


async def _rollback_quietly(conn: PgConnection) -> None:
    rollback: Query = b"ROLLBACK"
    with contextlib.suppress(psycopg.Error):  # a broken connection is discarded by the pool
        await conn.execute(rollback)
