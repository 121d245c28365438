"""A unit of work: one tenant-scoped database transaction and the events appended in it.

Events appended in it reach in-process subscribers and wake consumers only after the commit;
on rollback nothing is published. Savepoints and nested scopes undo their own writes and
forget their own events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Self

from cowork.events.envelope import EventEnvelope
from cowork.storage.port import AfterCommit, Capabilities, Params, Pending, Row, Transaction
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.events.sanitize import SanitizePolicy
    from cowork.kernel.clock import DatabaseClock
    from cowork.kernel.core import Core

__all__ = ["CoreBound", "UnitOfWork", "open_transaction"]


class CoreBound:
    """What a transition needs of the process around it, in a transaction or not: the
    database's capabilities and clock, and the event limits its own events use."""

    _core: Core

    @property
    def capabilities(self) -> Capabilities:
        """What the database can do (see :class:`~cowork.storage.port.Capabilities`)."""
        return self._core.database.capabilities

    @property
    def clock(self) -> DatabaseClock:
        """The database's clock as this process sees it (leases, timers)."""
        return self._core.clock

    @property
    def truncating_event_policy(self) -> SanitizePolicy:
        """The configured event limits with truncation on (the workflow engine's own events)."""
        return self._core.truncating_event_policy


class UnitOfWork(CoreBound):
    """A tenant-scoped transaction as the services see it: the database transaction, the
    tenant, and the events it has appended (published to in-process subscribers and
    consumers only after the commit). The runtime's ``TransactionContext`` adds the services
    bound to it; the core says which class :func:`open_transaction` makes."""

    def __init__(
        self,
        core: Core,
        scope: TenantScope,
        tx: Transaction,
        *,
        parent: UnitOfWork | None = None,
    ) -> None:
        self._core = core  # not public: it reaches the cross-tenant scope
        self.scope = scope
        self.tx = tx
        self._parent = parent
        self._published: list[EventEnvelope] = []
        if parent is None:
            tx.after_commit(self._after_commit)

    @property
    def tenant_id(self) -> str:
        return self.scope.tenant_id

    def record_published(self, envelopes: list[EventEnvelope]) -> None:
        if self._parent is not None:  # a nested context publishes with its parent, in order
            self._parent.record_published(envelopes)
        else:
            self._published.extend(envelopes)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo only this scope's writes (and forget its published events) on an exception."""
        root = self._root()
        published = len(root._published)
        try:
            async with self.tx.savepoint():
                yield
        except BaseException:
            del root._published[published:]
            raise

    @asynccontextmanager
    async def nested(self) -> AsyncIterator[Self]:
        """A child context whose writes are undone on an exception, like :meth:`savepoint`,
        but whose SAVEPOINT is only taken when it first touches the database (a step that
        writes nothing costs no round trip)."""
        lazy = _LazySavepoint(self.tx)
        child = type(self)(self._core, self.scope, lazy, parent=self)
        root = self._root()
        published = len(root._published)
        try:
            yield child
        except BaseException as exc:
            del root._published[published:]
            await lazy.close(exc)
            raise
        await lazy.close(None)

    def _root(self) -> UnitOfWork:
        root = self
        while root._parent is not None:
            root = root._parent
        return root

    def _after_commit(self) -> None:
        published, self._published = self._published, []
        self._core.committed(self.scope.tenant_id, published)


@asynccontextmanager
async def open_transaction(
    core: Core, scope: TenantScope, *, read_only: bool = False, appends: bool = True
) -> AsyncIterator[UnitOfWork]:
    """A tenant transaction (of the class the core was given: the runtime's has the services
    bound to it); ``appends=False`` for one that writes no events (see
    :meth:`Database.transaction`)."""
    async with core.database.transaction(
        tenant_id=scope.tenant_id, read_only=read_only, appends=appends
    ) as tx:
        yield core.context_class(core, scope, tx)


class _LazySavepoint:
    """A transaction seen through a savepoint taken on first use (see ``nested``)."""

    __slots__ = ("_scope", "_tx")

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._scope: AbstractAsyncContextManager[None] | None = None

    @property
    def tenant_id(self) -> str | None:
        return self._tx.tenant_id

    async def _enter(self) -> Transaction:
        if self._scope is None:
            scope = self._tx.savepoint()
            await scope.__aenter__()
            self._scope = scope
        return self._tx

    async def close(self, exc: BaseException | None) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            if exc is None:
                await scope.__aexit__(None, None, None)
            else:
                await scope.__aexit__(type(exc), exc, exc.__traceback__)

    async def execute(self, query: str, params: Params | None = None) -> int:
        return await (await self._enter()).execute(query, params)

    async def execute_many(self, query: str, params: Sequence[Params]) -> None:
        await (await self._enter()).execute_many(query, params)

    async def fetch_one(self, query: str, params: Params | None = None) -> Row | None:
        return await (await self._enter()).fetch_one(query, params)

    async def send(self, query: str, params: Params | None = None) -> None:
        await (await self._enter()).send(query, params)

    async def submit(self, query: str, params: Params | None = None) -> Pending:
        return await (await self._enter()).submit(query, params)

    async def fetch_all(self, query: str, params: Params | None = None) -> list[Row]:
        return await (await self._enter()).fetch_all(query, params)

    def after_commit(self, callback: AfterCommit) -> None:
        self._tx.after_commit(callback)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        tx = await self._enter()
        async with tx.savepoint():
            yield
