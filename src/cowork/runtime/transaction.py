"""``async with rt.transaction() as tx``: one commit for many operations.

``tx`` offers the same services as the runtime (``tx.events``, ``tx.workspaces``,
``tx.blackboard``, ``tx.snapshots``, ``tx.workflows``), all writing through one database
transaction. Events appended in it reach in-process subscribers and wake consumers only after
the commit; on rollback nothing is published. It is the transaction a transactional consumer
handler and a workflow step's ``ctx.tx`` receive too (the runtime makes it the core's
``context_class``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cowork.kernel.core import Core
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.tenancy import TenantScope

if TYPE_CHECKING:  # imported on first use, like the runtime's services
    from cowork.blackboard.service import BlackboardService
    from cowork.runtime.events import EventsService
    from cowork.snapshots.service import SnapshotsService
    from cowork.workflows.service import WorkflowsService
    from cowork.workspaces.service import WorkspacesService

__all__ = ["TransactionContext", "install", "open_context"]


class TransactionContext(UnitOfWork):
    """A tenant-scoped transaction with the runtime's services bound to it."""

    @property
    def events(self) -> EventsService:
        from cowork.runtime.events import EventsService

        return EventsService(self._core, self.scope, bound=self)

    @property
    def workspaces(self) -> WorkspacesService:
        from cowork.workspaces.service import WorkspacesService

        return WorkspacesService(self._core, self.scope, bound=self)

    @property
    def blackboard(self) -> BlackboardService:
        from cowork.blackboard.service import BlackboardService

        return BlackboardService(self._core, self.scope, bound=self)

    @property
    def snapshots(self) -> SnapshotsService:
        from cowork.snapshots.service import SnapshotsService

        return SnapshotsService(self._core, self.scope, bound=self)

    @property
    def workflows(self) -> WorkflowsService:
        """``tx.workflows.start(...)``: a start that commits or rolls back with the rest."""
        from cowork.workflows.service import WorkflowsService

        return WorkflowsService(self._core, self.scope, bound=self)


def install(core: Core) -> None:
    """Make :class:`TransactionContext` the transaction every part of ``core`` opens
    (consumer handlers, workflow steps, ``rt.transaction()``)."""
    core.context_class = TransactionContext


@asynccontextmanager
async def open_context(
    core: Core, scope: TenantScope, *, read_only: bool = False
) -> AsyncIterator[TransactionContext]:
    """A tenant transaction with the services bound to it."""
    async with open_transaction(core, scope, read_only=read_only) as ctx:
        if not isinstance(ctx, TransactionContext):  # pragma: no cover - install() was skipped
            raise TypeError("the core was not given the runtime's TransactionContext")
        yield ctx
