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
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import psycopg
from psycopg.abc import Query
from psycopg.adapt import Dumper, Transformer
from psycopg.pq import Format
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from cowork.errors import CoworkError, PersistenceUnavailable
from cowork.jsontext import dumps
from cowork.redaction import redact_url, scrub, url_secrets
from cowork.storage.port import Backend, Health, Json, JsonText, Params, Pending, Row
from cowork.storage.postgres.errors import translate
from cowork.storage.postgres.migrations_session import PostgresMigrationSession
from cowork.storage.postgres.notify import PostgresWakeups
from cowork.storage.postgres.rows import names_row, returns_rows
from cowork.storage.postgres.script import ScriptCompiler
from cowork.storage.postgres.tls import secure_url
from cowork.storage.queries import QuerySet, load_queries
from cowork.storage.transaction import AfterCommitHooks, savepoint_scope

__all__ = ["PostgresDatabase"]

PgConnection = psycopg.AsyncConnection[DictRow]
_log = logging.getLogger("cowork.storage")
# Enters a tenant's scope; the flag says whether the transaction may append events (readers'
# commit horizons wait only for transactions that may; see 0002_tenant_horizon.sql).
_ENTER_TENANT = b"SELECT cowork_enter_tenant(%s, %s)"
# The '*' scope as cowork_enter_tenant('*', true) enters it (see 0002_tenant_horizon.sql), spelled
# out so that it also works before the migrations have run.
_ENTER_ANY_TENANT = (
    b"SELECT set_config('cowork.tenant_id', '*', true), set_config('cowork.appends', 'on', true), "
    b"pg_advisory_xact_lock_shared(1668249451, hashtext('*'))"
)


class _JsonDumper(Dumper):
    """Dumps :class:`Json` as ``jsonb`` text: lists stay JSON arrays, never PG arrays."""

    format = Format.TEXT

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = self._get_jsonb_oid()

    @staticmethod
    def _get_jsonb_oid() -> int:
        info = psycopg.adapters.types.get("jsonb")
        assert info is not None
        return info.oid

    def dump(self, obj: Any) -> bytes:
        try:
            return dumps(obj.value).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise psycopg.DataError(f"value is not JSON-serialisable: {exc}") from None


class _JsonTextDumper(_JsonDumper):
    """Dumps :class:`JsonText` (encoded already) as ``jsonb``."""

    def dump(self, obj: Any) -> bytes:
        text: str = obj.text
        return text.encode("utf-8")


async def _configure(conn: PgConnection) -> None:
    conn.adapters.register_dumper(Json, _JsonDumper)
    conn.adapters.register_dumper(JsonText, _JsonTextDumper)


class _PgTransaction(AfterCommitHooks):
    """A transaction on a connection in pipeline mode: statements whose results nobody waits
    for (its BEGIN, planner settings, savepoints, :meth:`send`) travel with the next one
    that returns rows or a row count, so they cost no round trip of their own."""

    __slots__ = ("_applied", "_conn", "_pipeline", "_queries", "_secrets", "_tenant_id")

    def __init__(
        self, conn: PgConnection, queries: QuerySet, tenant_id: str | None, secrets: tuple[str, ...]
    ) -> None:
        super().__init__()
        self._conn = conn
        self._queries = queries
        self._tenant_id = tenant_id
        self._secrets = secrets
        self._applied: set[str] | None = None
        self._pipeline: psycopg.AsyncPipeline | None = None

    @property
    def tenant_id(self) -> str | None:
        return self._tenant_id

    async def execute(self, query: str, params: Params | None = None) -> int:
        try:
            cur = await self._conn.execute(self._queries[query], params)
            if self._pipeline is not None:
                await self._pipeline.sync()  # the row count arrives with the results
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
        return _PgPending(cursor, self._secrets)

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

    def has_query(self, query: str) -> bool:
        return query in self._queries

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        return savepoint_scope(self._command)

    async def _command(self, command: str) -> None:
        try:
            await self._conn.execute(command.encode("ascii"))
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None


class _PgPending:
    __slots__ = ("_cursor", "_secrets")

    def __init__(self, cursor: psycopg.AsyncCursor[DictRow], secrets: tuple[str, ...]) -> None:
        self._cursor = cursor
        self._secrets = secrets

    async def rows(self) -> list[Row]:
        try:
            return await self._cursor.fetchall()
        except (psycopg.Error, UnicodeError) as exc:
            raise translate(exc, secrets=self._secrets) from None


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
        await _configure(conn)
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
            configure=_configure,
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
    ) -> AsyncIterator[_PgTransaction]:
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                tx = _PgTransaction(conn, self._queries, tenant_id, self._secrets)
                try:
                    async with conn.pipeline() as pipeline:
                        tx._pipeline = pipeline
                        for statement, params in self._begin_statements(
                            tenant_id, read_only, appends
                        ):
                            await conn.execute(statement, params)
                        yield tx
                        await conn.execute(b"COMMIT")
                except BaseException:
                    tx._pipeline = None
                    await _rollback_quietly(conn)
                    raise
                tx._pipeline = None
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
