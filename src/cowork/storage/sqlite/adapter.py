"""SQLite implementation of the storage port: the embedded default and ``memory://``.

One connection, driven by one dedicated thread, so the event loop never blocks on disk I/O.
SQLite allows one writer at a time; transactions queue on an asyncio lock inside the process
and on SQLite's own lock (``BEGIN IMMEDIATE`` with a busy timeout) across processes. Because of
that single writer, position order in the event log is commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from cowork.errors import (
    ConfigError,
    CoworkError,
    PersistenceError,
    PersistenceUnavailable,
    TenantViolation,
)
from cowork.storage.port import Backend, Capabilities, Health, Params, Pending, Ready, Row
from cowork.storage.queries import QuerySet, load_queries
from cowork.storage.sqlite.convert import encode_params, register_converters
from cowork.storage.sqlite.errors import translate
from cowork.storage.sqlite.migrations_session import SqliteMigrationSession
from cowork.storage.sqlite.url import MEMORY, sqlite_path_from_url
from cowork.storage.transaction import AfterCommitHooks, savepoint_scope
from cowork.storage.wakeup import LocalWakeups

__all__ = ["SqliteDatabase", "sqlite_path_from_url"]

# Wake-ups are in-process only: another process's events arrive by polling, so poll often.
# A workflow save takes several statements.
_CAPABILITIES = Capabilities(
    cross_process_wakeups=False, poll_interval=0.25, one_statement_saves=False
)

T = TypeVar("T")


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    description = cursor.description
    if description is None:
        return []
    columns = [column[0] for column in description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class _SqliteTransaction(AfterCommitHooks):
    __slots__ = ("_begin", "_begun", "_db", "_tenant_id")

    def __init__(self, db: SqliteDatabase, tenant_id: str | None, read_only: bool) -> None:
        super().__init__()
        self._db = db
        self._tenant_id = tenant_id
        self._begun = False
        # Writers take the write lock up front (no upgrade deadlocks between processes);
        # readers take none (WAL lets them read while another process writes).
        self._begin = "BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE"

    @property
    def tenant_id(self) -> str | None:
        return self._tenant_id

    def _begin_if_needed(self, conn: sqlite3.Connection) -> None:
        # Runs on the database thread, in the same hop as the first statement.
        if not self._begun:
            conn.execute(self._begin)
            self._begun = True

    def _check_tenant(self, params: Params | None) -> None:
        """SQLite has no row-level security: a tenant's transaction refuses a statement whose
        ``tenant_id`` names another tenant (on PostgreSQL the policies refuse it in the
        server), so nothing handed to a tenant's code can read or write another's rows."""
        if self._tenant_id is not None and params is not None:
            named = params.get("tenant_id", self._tenant_id)
            if named != self._tenant_id:
                raise TenantViolation(
                    f"a transaction of tenant {self._tenant_id!r} cannot run a statement for "
                    f"tenant {named!r}"
                )

    async def _call(self, query: str, params: Params | None, fetch: bool) -> tuple[int, list[Row]]:
        text = self._db.queries[query]
        self._check_tenant(params)

        def work(conn: sqlite3.Connection) -> tuple[int, list[Row]]:
            encoded = encode_params(params)  # here, so that a bad value is translated
            self._begin_if_needed(conn)
            cursor = conn.execute(text, encoded)
            rows = _rows(cursor) if fetch else []
            return cursor.rowcount, rows

        return await self._db.run(work)

    async def execute(self, query: str, params: Params | None = None) -> int:
        count, _ = await self._call(query, params, fetch=False)
        return count

    async def execute_many(self, query: str, params: Sequence[Params]) -> None:
        if not params:
            return
        text = self._db.queries[query]
        for one in params:
            self._check_tenant(one)

        def work(conn: sqlite3.Connection) -> None:
            encoded = [encode_params(p) for p in params]
            self._begin_if_needed(conn)
            conn.executemany(text, encoded)

        await self._db.run(work)

    async def fetch_one(self, query: str, params: Params | None = None) -> Row | None:
        _, rows = await self._call(query, params, fetch=True)
        return rows[0] if rows else None

    async def fetch_all(self, query: str, params: Params | None = None) -> list[Row]:
        _, rows = await self._call(query, params, fetch=True)
        return rows

    async def send(self, query: str, params: Params | None = None) -> None:
        await self._call(query, params, fetch=False)

    async def submit(self, query: str, params: Params | None = None) -> Pending:
        _, rows = await self._call(query, params, fetch=True)
        return Ready(rows)

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        return savepoint_scope(self._command)

    async def _command(self, command: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            self._begin_if_needed(conn)
            conn.execute(command)

        await self._db.run(work)

    async def finish(self, commit: bool) -> None:
        if not self._begun:
            return
        statement = "COMMIT" if commit else "ROLLBACK"

        def work(conn: sqlite3.Connection) -> None:
            if conn.in_transaction:
                conn.execute(statement)

        await self._db.run(work)


class _Busy(Exception):
    """The write lock is held by another connection (try on the database thread instead)."""


def _finish_alone(conn: sqlite3.Connection, text: str, encoded: dict[str, Any]) -> list[Row]:
    """Run ``text`` in the transaction just begun and commit (roll back on any error)."""
    try:
        rows = _rows(conn.execute(text, encoded))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return rows


class SqliteDatabase:
    """A SQLite file (WAL) or an in-memory database behind the storage port."""

    def __init__(
        self, url: str, *, busy_timeout_seconds: float = 5.0, create_directory: bool = False
    ) -> None:
        """``url`` as :mod:`cowork.storage.sqlite.url` reads it (a relative path is resolved
        against the current directory now). The file's directory must exist when the database
        opens, else :class:`~cowork.errors.ConfigError`; with ``create_directory`` (the default
        data directory) it is created instead."""
        self._url = url
        self._path = sqlite_path_from_url(url)
        self._file = self._path if self._path == MEMORY else os.path.abspath(self._path)
        self._create_directory = create_directory
        self._busy_ms = max(1, int(busy_timeout_seconds * 1000))
        self._queries = load_queries("cowork.storage.sqlite")
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None
        self._wakeups = LocalWakeups()

    @property
    def wakeups(self) -> LocalWakeups:
        return self._wakeups

    @property
    def backend(self) -> Backend:
        return "sqlite"

    @property
    def durable(self) -> bool:
        return self._path != MEMORY

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    @property
    def display_url(self) -> str:
        return "memory://" if self._path == MEMORY else f"sqlite:///{self._path}"

    @property
    def path(self) -> str:
        return self._path

    @property
    def queries(self) -> QuerySet:
        return self._queries

    def has_query(self, query: str) -> bool:
        return query in self._queries

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.display_url!r})"

    def _check_directory(self) -> None:
        """Fail before anything is created when the file's directory is missing: a mistyped
        path must not silently start a new, empty database somewhere else."""
        if self._file == MEMORY:
            return
        directory = Path(self._file).parent
        if self._create_directory:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PersistenceUnavailable(
                    f"cannot create the data directory {directory} for {self.display_url}: "
                    f"{exc.strerror}"
                ) from None
            return
        if directory.is_dir():
            return
        what = "is not a directory" if directory.exists() else "does not exist"
        problem = f"the directory {directory} of the SQLite database {self.display_url} {what}"
        if self._path.startswith("~"):
            raise ConfigError(
                f"{problem}: '~' is not expanded in a SQLite URL; write the absolute path "
                f"(sqlite:///{os.path.expanduser(self._path)})"
            )
        raise ConfigError(
            f"{problem}; create it first (mkdir -p {directory}) or use a path in an existing "
            "directory: sqlite:///relative/to/cwd.db or sqlite:////absolute/path.db"
        )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._file,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # used only from the one database thread
            detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
            timeout=self._busy_ms / 1000,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if self._path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise sqlite3.OperationalError(f"could not enable WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        if self._conn is not None:
            return
        self._check_directory()
        register_converters()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cowork-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(self._executor, self._connect)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise PersistenceUnavailable(
                f"cannot open SQLite database {self.display_url}: {exc}"
            ) from None

    async def close(self) -> None:
        await self._wakeups.close()
        conn, self._conn = self._conn, None
        executor, self._executor = self._executor, None
        if conn is not None and executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(executor, conn.close)
        if executor is not None:
            executor.shutdown(wait=True)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the database thread, translating sqlite3 errors."""
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise PersistenceUnavailable("the SQLite database is not open (runtime closed?)")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, work, conn)
        except CoworkError:
            raise
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
            raise translate(exc) from None

    @asynccontextmanager
    async def transaction(
        self, *, tenant_id: str | None, read_only: bool = False, appends: bool = True
    ) -> AsyncIterator[_SqliteTransaction]:
        # ``appends`` matters only where readers have a commit horizon (PostgreSQL).
        self._refuse_nested()
        async with self._lock:
            self._holder = asyncio.current_task()
            tx = _SqliteTransaction(self, tenant_id, read_only)
            try:
                try:
                    yield tx
                except BaseException:
                    with contextlib.suppress(CoworkError):  # connection gone: nothing committed
                        await tx.finish(commit=False)
                    raise
                await tx.finish(commit=True)
            finally:
                self._holder = None
        await tx.run_after_commit()

    async def run_alone(self, query: str, params: Params, *, tenant_id: str) -> list[Row]:
        """One statement in its own transaction. When the write lock is free it runs right
        here, on the event loop's thread: a hop to the database thread costs more than the
        statement (the commit's fsync then blocks the loop for its duration). When another
        process holds the lock it goes to the database thread, which waits for it."""
        text = self._queries[query]

        def work(conn: sqlite3.Connection) -> list[Row]:
            encoded = encode_params(params)
            conn.execute("BEGIN IMMEDIATE")
            return _finish_alone(conn, text, encoded)

        self._refuse_nested()
        async with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    return self._run_alone_inline(conn, text, params)
                except _Busy:
                    pass
                except CoworkError:
                    raise
                except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
                    raise translate(exc) from None
            return await self.run(work)

    async def run_in_one_trip(
        self, statements: Sequence[tuple[str, Params]], *, tenant_id: str
    ) -> list[list[Row]]:
        """The statements in one transaction (SQLite has no round trips to save)."""
        async with self.transaction(tenant_id=tenant_id) as tx:
            return [await tx.fetch_all(query, params) for query, params in statements]

    def _run_alone_inline(self, conn: sqlite3.Connection, text: str, params: Params) -> list[Row]:
        encoded = encode_params(params)
        conn.execute("PRAGMA busy_timeout = 0")  # never wait for the lock on the loop thread
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy from None
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return _finish_alone(conn, text, encoded)

    def _refuse_nested(self) -> None:
        if self._holder is not None and self._holder is asyncio.current_task():
            # Waiting for our own lock would hang forever: say what to do instead.
            raise PersistenceError(
                "a second transaction was opened on this SQLite database while the current "
                "task already holds one; use the transaction (tx) you were given"
            )

    async def health(self) -> Health:
        started = time.perf_counter()
        query = self._queries["health_check"]
        try:
            await self.run(lambda conn: conn.execute(query).fetchone())
        except CoworkError as exc:
            return Health(healthy=False, backend="sqlite", latency_ms=None, error=str(exc))
        latency = (time.perf_counter() - started) * 1000
        return Health(healthy=True, backend="sqlite", latency_ms=latency)

    @asynccontextmanager
    async def migration_session(self) -> AsyncIterator[SqliteMigrationSession]:
        async with self._lock:
            yield SqliteMigrationSession(self, self._queries)
