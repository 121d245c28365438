"""One process's hold on a durable consumer's row (``cowork_event_consumer_checkpoint``).

The row holds the consumer's pattern, its checkpoint, a ``generation`` (bumped by an explicit
reset) and a lease. This process registers the row, acquires the lease, keeps it with a
heartbeat (:func:`~cowork.kernel.lease.keep_lease`, every third of ``lease_ttl``) and
releases it when it stops, so that another process takes over at once. Every checkpoint write
is fenced by the lease owner and the generation: a process that lost its lease (or a consumer
reset meanwhile) can never move the checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Literal

from cowork.consumers.options import ConsumerOptions
from cowork.consumers.records import ConsumerCheckpoint
from cowork.consumers.store import ConsumerStore, Holder
from cowork.errors import CoworkError, ValidationError
from cowork.events.log import START, Cursor, head_cursor
from cowork.events.patterns import EventPattern
from cowork.kernel.core import Core
from cowork.kernel.lease import keep_lease
from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope

__all__ = ["ConsumerLease", "LeaseLost"]

_log = logging.getLogger("cowork.consumers")


class LeaseLost(Exception):
    """This process no longer holds the consumer's lease (or the consumer was reset)."""


class ConsumerLease:
    def __init__(
        self, core: Core, scope: TenantScope, consumer_id: str, options: ConsumerOptions
    ) -> None:
        self.core = core
        self.scope = scope
        self.consumer_id = consumer_id
        self.options = options
        self.generation = 0
        self.lost = False  # a renewal or a fenced write found the lease gone
        self.unsaved = False  # the cursor moved past skipped events; checkpoint not yet saved
        self.saved_at = 0.0  # monotonic time of the last checkpoint write

    @property
    def holder(self) -> Holder:
        """This process as the lease's holder."""
        return Holder(owner=self.core.worker_id, ttl=self.options.lease_ttl)

    def store(self, tx: Transaction) -> ConsumerStore:
        """The tenant's consumer rows, in ``tx``."""
        return ConsumerStore(tx, self.scope.tenant_id)

    def check(self) -> None:
        if self.lost:
            raise LeaseLost

    async def register(self, pattern: EventPattern, start_at: Literal["beginning", "now"]) -> None:
        """Create the row if new (its checkpoint at the start, or at the log's head for
        ``"now"``); a row that exists with another pattern is refused."""
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            start = START
            if start_at == "now":
                start = await head_cursor(tx, self.scope.tenant_id)
            store = self.store(tx)
            await store.register(self.consumer_id, pattern=pattern.text, start=start)
            row = await store.get(self.consumer_id)
        assert row is not None
        if row.pattern != pattern.text:
            raise ValidationError(
                f"consumer {self.consumer_id!r} exists with pattern {row.pattern!r}, not "
                f"{pattern.text!r}; a consumer's pattern is part of its identity: call "
                f"rt.consumers.reset({self.consumer_id!r}, pattern=...) to change it"
            )

    async def acquire(self) -> ConsumerCheckpoint | None:
        """Take the lease if it is free or expired: the row (its pattern, checkpoint and
        generation), or None when another process holds it. The holder then calls
        :meth:`held` once it has checked the row."""
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            return await self.store(tx).acquire(self.consumer_id, self.holder)

    def held(self, generation: int) -> None:
        """The lease acquired: checkpoint writes are fenced by ``generation`` from now on."""
        self.unsaved = False
        self.generation = generation
        self.lost = False

    async def release(self) -> None:
        with contextlib.suppress(CoworkError):
            async with self.core.database.transaction(
                tenant_id=self.scope.tenant_id, appends=False
            ) as tx:
                await self.store(tx).release(self.consumer_id, self.holder)

    async def heartbeat(self) -> None:
        """Renew the lease until cancelled; when it is lost, mark it (the holder stops at its
        next check) and return."""
        await keep_lease(self._renew, ttl=self.options.lease_ttl, on_error=self._renew_failed)
        self.lost = True

    async def _renew(self) -> bool:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            return await self.store(tx).heartbeat(self.consumer_id, self.holder)

    def _renew_failed(self, exc: CoworkError) -> None:
        _log.warning("consumer %r heartbeat failed: %s", self.consumer_id, exc)

    async def save_checkpoint(self, cursor: Cursor) -> None:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            await self.save_checkpoint_in(tx, cursor)

    async def save_checkpoint_in(self, tx: Transaction, cursor: Cursor) -> None:
        """Move the checkpoint to ``cursor`` in ``tx``, fenced by our lease and generation;
        LeaseLost when the fence refuses it."""
        self.unsaved = False
        self.saved_at = time.monotonic()
        moved = await self.store(tx).checkpoint(
            self.consumer_id, self.holder, cursor=cursor, generation=self.generation
        )
        if not moved:
            self.lost = True
            raise LeaseLost
