"""The storage port: what services may ask of a database, and nothing more.

Services speak to a :class:`Database` through named queries. Each adapter ships its own
``queries.sql`` (PostgreSQL and SQLite dialects) with the same names, so a service never sees
SQL text, a driver or a driver error. Adapters translate every driver exception into the
:mod:`cowork.errors` hierarchy at their edge.

Parameters are plain Python values, except JSON documents, which are wrapped in :class:`Json`
so that a list is stored as a JSON array (never as a PostgreSQL array literal) and an empty list
stays an empty list. Timestamps are timezone-aware UTC ``datetime`` values both ways.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from cowork.storage.wakeup import LocalWakeups

__all__ = [
    "AppliedMigration",
    "Backend",
    "Capabilities",
    "Database",
    "Health",
    "HorizonHolder",
    "Json",
    "JsonText",
    "MigrationSession",
    "Params",
    "Pending",
    "Ready",
    "Row",
    "Transaction",
]

Backend = Literal["postgresql", "sqlite"]
Row = dict[str, Any]
Params = Mapping[str, Any]
AfterCommit = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Json:
    """A parameter to be stored as a JSON document (``jsonb`` on PostgreSQL)."""

    value: Any


@dataclass(frozen=True, slots=True)
class JsonText:
    """A JSON document parameter encoded already (by :func:`cowork.jsontext.dumps`), so that
    text computed once (e.g. to check a payload's size) is not encoded again."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HorizonHolder:
    """An open database transaction that holds a tenant's commit-order read horizon back: it
    is in the tenant's scope (or the cross-tenant one) and has written, so it may still append
    events that readers must see first. Until it ends, that tenant's readers and durable
    consumers wait for it (other tenants' do not)."""

    pid: int
    xid: int
    scope: str  # the tenant, or "*" for a cross-tenant transaction
    started_at: datetime | None
    age_seconds: float | None
    application_name: str | None
    state: str | None

    def describe(self) -> str:
        age = "?" if self.age_seconds is None else f"{self.age_seconds:.1f} s"
        parts = [f"pid {self.pid}", f"xid {self.xid}", f"open {age}"]
        if self.scope == "*":
            parts.append("cross-tenant scope")
        if self.application_name:
            parts.append(f"application {self.application_name!r}")
        if self.state:
            parts.append(self.state)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """Result of :meth:`Database.health`; never raised, always returned.

    ``horizon_held_by`` (from ``rt.health()``) lists the transactions that have held the
    tenant's read horizon back for longer than a few seconds, oldest first."""

    healthy: bool
    backend: Backend
    latency_ms: float | None
    error: str | None = None
    horizon_held_by: tuple[HorizonHolder, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What an adapter can do, for the services that adapt to it: they ask for a capability,
    never for a backend by name."""

    cross_process_wakeups: bool
    """Another process's commits wake this process's consumers (PostgreSQL: ``NOTIFY``);
    without it, events published elsewhere arrive by polling."""

    poll_interval: float
    """Seconds between a durable consumer's looks for events no wake-up announced."""

    one_statement_saves: bool
    """A workflow start or step checkpoint is one statement (the ``wf_start`` and ``wf_save``
    queries), so it can travel in one trip and share a commit with others (group commit)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedMigration:
    """One row of the migration ledger."""

    name: str
    checksum: str
    applied_at: datetime


class Pending(Protocol):
    """The rows of a submitted query (see :meth:`Transaction.submit`)."""

    async def rows(self) -> list[Row]: ...


class Ready:
    """A :class:`Pending` whose rows are already known (adapters that run queries at once)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    async def rows(self) -> list[Row]:
        return self._rows


class Transaction(Protocol):
    """One database transaction. Every method takes the *name* of a query of the adapter."""

    @property
    def tenant_id(self) -> str | None:
        """The tenant this transaction is scoped to (None for operator/worker scans)."""
        ...

    async def execute(self, query: str, params: Params | None = None) -> int:
        """Run a statement; return the number of rows it affected."""
        ...

    async def execute_many(self, query: str, params: Sequence[Params]) -> None:
        """Run one statement once per parameter set."""
        ...

    async def fetch_one(self, query: str, params: Params | None = None) -> Row | None:
        """Run a query; return its first row or None."""
        ...

    async def fetch_all(self, query: str, params: Params | None = None) -> list[Row]:
        """Run a query; return every row."""
        ...

    async def send(self, query: str, params: Params | None = None) -> None:
        """Run a statement whose result is not needed. An adapter may send it with the next
        statement (one round trip for both); its error then surfaces there, or at commit."""
        ...

    async def submit(self, query: str, params: Params | None = None) -> Pending:
        """Start a query whose rows are read later with ``await pending.rows()``; statements
        submitted in between travel with it (one round trip for all)."""
        ...

    def after_commit(self, callback: AfterCommit) -> None:
        """Call ``callback`` once the transaction has committed (never on rollback)."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested scope: an exception inside undoes only its writes, then propagates."""
        ...


class MigrationSession(Protocol):
    """A dedicated connection for the migration runner."""

    async def lock(self, timeout_seconds: float) -> None:
        """Take the cross-process migration lock or raise MigrationLockTimeout (fail closed)."""
        ...

    async def ensure_ledger(self) -> None:
        """Create the ledger table if it does not exist."""
        ...

    async def applied(self) -> list[AppliedMigration]:
        """The ledger, in name order."""
        ...

    async def apply(self, name: str, sql: str, checksum: str, *, transactional: bool) -> bool:
        """Apply one file and record it. Return False if the ledger already held it."""
        ...


class Database(Protocol):
    """A connected backend (PostgreSQL pool, SQLite file or memory)."""

    @property
    def backend(self) -> Backend: ...

    @property
    def durable(self) -> bool:
        """False for ``memory://``: nothing survives the process."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this adapter can do (services adapt to it, not to a backend name)."""
        ...

    @property
    def display_url(self) -> str:
        """The connection URL with credentials redacted."""
        ...

    def has_query(self, query: str) -> bool:
        """Whether this adapter defines the named query (for tests and tools; services ask
        :attr:`capabilities`)."""
        ...

    async def open(self) -> None:
        """Connect (fail with PersistenceUnavailable, saying why)."""
        ...

    async def close(self) -> None: ...

    def transaction(
        self, *, tenant_id: str | None, read_only: bool = False, appends: bool = True
    ) -> AbstractAsyncContextManager[Transaction]:
        """Open a transaction scoped to ``tenant_id`` (None: explicit cross-tenant access).

        ``read_only`` transactions may not write; on SQLite they do not take the write lock,
        so readers never wait for a writer. ``appends=False`` says the transaction writes no
        events (checkpoints, leases): on PostgreSQL it then holds no reader's commit horizon
        back, and an event append in it is refused."""
        ...

    async def run_alone(self, query: str, params: Params, *, tenant_id: str) -> list[Row]:
        """Run one statement in a transaction of its own and return its rows.

        The same as ``transaction()`` + ``fetch_all`` + commit, in one round trip: adapters
        write the queries used this way (``*_alone``) to set their own tenant scope, so
        PostgreSQL runs them as a single autocommit statement. After-commit work is the
        caller's."""
        ...

    async def run_in_one_trip(
        self, statements: Sequence[tuple[str, Params]], *, tenant_id: str
    ) -> list[list[Row]]:
        """Run named statements, in order, in one write transaction of ``tenant_id`` (a scope
        that may append events) and commit; returns each statement's rows. For writes whose
        statements need no result of an earlier one: PostgreSQL sends the whole transaction as
        one message (one round trip, parameters bound on the client). A failing statement
        rolls everything back. After-commit work is the caller's."""
        ...

    async def health(self) -> Health:
        """Round-trip check; reports failure in the result instead of raising."""
        ...

    def migration_session(self) -> AbstractAsyncContextManager[MigrationSession]: ...

    @property
    def wakeups(self) -> LocalWakeups:
        """Wake-up hints for consumers (in-process; across processes on PostgreSQL)."""
        ...
