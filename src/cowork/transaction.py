"""``async with rt.transaction() as tx``: one commit for many operations.

``tx`` offers the same services as the runtime (``tx.events``, ``tx.workspaces``,
``tx.blackboard``, ``tx.snapshots``), all writing through one database transaction. Events
appended in it reach in-process subscribers and wake consumers only after the commit; on
rollback nothing is published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cowork.core import Core
from cowork.events.envelope import EventEnvelope
from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.blackboard.service import BlackboardService
    from cowork.events.service import EventsService
    from cowork.snapshots.service import SnapshotsService
    from cowork.workspaces.service import WorkspacesService

__all__ = ["TransactionContext", "open_transaction"]


class TransactionContext:
    """A tenant-scoped transaction with the runtime's services bound to it."""

    def __init__(self, core: Core, scope: TenantScope, tx: Transaction) -> None:
        self.core = core
        self.scope = scope
        self.tx = tx
        self._published: list[EventEnvelope] = []
        tx.after_commit(self._after_commit)

    @property
    def tenant_id(self) -> str:
        return self.scope.tenant_id

    def record_published(self, envelopes: list[EventEnvelope]) -> None:
        self._published.extend(envelopes)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo only this scope's writes (and forget its published events) on an exception."""
        published = len(self._published)
        try:
            async with self.tx.savepoint():
                yield
        except BaseException:
            del self._published[published:]
            raise

    def _after_commit(self) -> None:
        published, self._published = self._published, []
        self.core.committed(self.scope.tenant_id, published)

    @property
    def events(self) -> EventsService:
        from cowork.events.service import EventsService

        return EventsService(self.core, self.scope, bound=self)

    @property
    def workspaces(self) -> WorkspacesService:
        from cowork.workspaces.service import WorkspacesService

        return WorkspacesService(self.core, self.scope, bound=self)

    @property
    def blackboard(self) -> BlackboardService:
        from cowork.blackboard.service import BlackboardService

        return BlackboardService(self.core, self.scope, bound=self)

    @property
    def snapshots(self) -> SnapshotsService:
        from cowork.snapshots.service import SnapshotsService

        return SnapshotsService(self.core, self.scope, bound=self)


@asynccontextmanager
async def open_transaction(
    core: Core, scope: TenantScope, *, read_only: bool = False
) -> AsyncIterator[TransactionContext]:
    async with core.database.transaction(tenant_id=scope.tenant_id, read_only=read_only) as tx:
        yield TransactionContext(core, scope, tx)
