"""What every tenant-scoped service shares: its transaction, and emitting events in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.log import append_events, prepare_event
from cowork.kernel.core import Core
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.tenancy import TenantScope

__all__ = ["TenantService", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TenantService:
    """Base of ``rt.<service>`` (own transaction per call) and ``tx.<service>`` (bound)."""

    def __init__(self, core: Core, scope: TenantScope, *, bound: UnitOfWork | None = None):
        self._core = core
        self._scope = scope
        self._bound = bound

    @property
    def tenant_id(self) -> str:
        return self._scope.tenant_id

    @asynccontextmanager
    async def _transaction(self, *, read_only: bool = False) -> AsyncIterator[UnitOfWork]:
        if self._bound is not None:
            yield self._bound
        else:
            async with open_transaction(self._core, self._scope, read_only=read_only) as ctx:
                yield ctx

    async def _emit(self, ctx: UnitOfWork, events: Sequence[NewEvent]) -> list[EventEnvelope]:
        """Append events in the operation's own transaction (transactional outbox); a value
        over the configured limits is rejected (the operation writes nothing)."""
        policy = self._core.event_policy
        prepared = [prepare_event(event, policy=policy) for event in events]
        appended = await append_events(ctx.tx, self._scope.tenant_id, prepared)
        ctx.record_published(appended.new)
        return appended.envelopes
