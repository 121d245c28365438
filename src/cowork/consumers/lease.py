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
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cowork.consumers.options import ConsumerOptions
from cowork.errors import CoworkError, ValidationError
from cowork.events.log import START, Cursor, head_cursor
from cowork.events.patterns import EventPattern
from cowork.kernel.core import Core
from cowork.kernel.lease import keep_lease
from cowork.storage.port import Row, Transaction
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

    def params(self, **extra: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "tenant_id": self.scope.tenant_id,
            "consumer_id": self.consumer_id,
            "owner": self.core.worker_id,
            "ttl": self.options.lease_ttl,
            "now": now,
            "expires": now + timedelta(seconds=self.options.lease_ttl),
            **extra,
        }

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
            await tx.execute(
                "consumer_register",
                self.params(pattern=pattern.text, after_tx=start[0], after_position=start[1]),
            )
            row = await tx.fetch_one("consumer_get", self.params())
        assert row is not None
        if row["pattern"] != pattern.text:
            raise ValidationError(
                f"consumer {self.consumer_id!r} exists with pattern {row['pattern']!r}, not "
                f"{pattern.text!r}; a consumer's pattern is part of its identity: call "
                f"rt.consumers.reset({self.consumer_id!r}, pattern=...) to change it"
            )

    async def acquire(self) -> Row | None:
        """Take the lease if it is free or expired: the row (its pattern, checkpoint and
        generation), or None when another process holds it. The holder then calls
        :meth:`held` once it has checked the row."""
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            return await tx.fetch_one("consumer_acquire", self.params())

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
                await tx.execute("consumer_release", self.params())

    async def heartbeat(self) -> None:
        """Renew the lease until cancelled; when it is lost, mark it (the holder stops at its
        next check) and return."""
        await keep_lease(self._renew, ttl=self.options.lease_ttl, on_error=self._renew_failed)
        self.lost = True

    async def _renew(self) -> bool:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            return await tx.execute("consumer_heartbeat", self.params()) > 0

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
        moved = await tx.execute(
            "consumer_checkpoint",
            self.params(after_tx=cursor[0], after_position=cursor[1], generation=self.generation),
        )
        if moved == 0:
            self.lost = True
            raise LeaseLost
