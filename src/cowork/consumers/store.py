"""Durable consumer persistence inside a transaction: checkpoint rows, leases, parked events.

The one place that names the consumer queries (``cowork_event_consumer_checkpoint`` and
``cowork_event_parked``). Lease expiry is the database's clock on PostgreSQL; SQLite's
queries read ``now`` and ``expires`` from the parameters, which every call here passes.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cowork.consumers.records import ConsumerCheckpoint, ConsumerInfo, ParkedEvent
from cowork.events.log import Cursor
from cowork.storage.port import Transaction

__all__ = ["ConsumerStore", "Holder"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Holder:
    """Who holds (or asks for) a consumer's lease, and for how long each renewal lasts."""

    owner: str
    ttl: float


class ConsumerStore:
    def __init__(self, tx: Transaction, tenant_id: str) -> None:
        self.tx = tx
        self.tenant_id = tenant_id

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "now": datetime.now(UTC), **values}

    def _held(self, consumer_id: str, holder: Holder, **values: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "tenant_id": self.tenant_id,
            "consumer_id": consumer_id,
            "owner": holder.owner,
            "ttl": holder.ttl,
            "now": now,
            "expires": now + timedelta(seconds=holder.ttl),
            **values,
        }

    # -- checkpoint rows ----------------------------------------------------------------------
    async def register(self, consumer_id: str, *, pattern: str, start: Cursor) -> None:
        """Create the consumer's row with its checkpoint at ``start`` unless it exists."""
        await self.tx.execute(
            "consumer_register",
            self._params(
                consumer_id=consumer_id, pattern=pattern, after_tx=start[0], after_position=start[1]
            ),
        )

    async def get(self, consumer_id: str) -> ConsumerCheckpoint | None:
        row = await self.tx.fetch_one("consumer_get", self._params(consumer_id=consumer_id))
        return None if row is None else ConsumerCheckpoint.from_row(row)

    async def list(self) -> builtins.list[ConsumerInfo]:
        """Every consumer of the tenant with its lag and parked count, by id."""
        rows = await self.tx.fetch_all("consumer_list", self._params())
        return [ConsumerInfo.from_row(r) for r in rows]

    async def reset(self, consumer_id: str, *, to: Cursor, pattern: str | None) -> None:
        """Move the checkpoint (backwards too) and/or change the pattern; bumps the
        generation, so that the holder's fenced writes fail and it reloads."""
        await self.tx.execute(
            "consumer_reset",
            self._params(
                consumer_id=consumer_id, after_tx=to[0], after_position=to[1], pattern=pattern
            ),
        )

    # -- leases -------------------------------------------------------------------------------
    async def acquire(self, consumer_id: str, holder: Holder) -> ConsumerCheckpoint | None:
        """Take (or keep) the lease if it is free, the holder's or expired: the checkpoint,
        or None when another holder has it."""
        row = await self.tx.fetch_one("consumer_acquire", self._held(consumer_id, holder))
        return None if row is None else ConsumerCheckpoint.from_row(row)

    async def heartbeat(self, consumer_id: str, holder: Holder) -> bool:
        """Extend the holder's lease; False when it no longer holds it."""
        return await self.tx.execute("consumer_heartbeat", self._held(consumer_id, holder)) > 0

    async def release(self, consumer_id: str, holder: Holder) -> None:
        await self.tx.execute("consumer_release", self._held(consumer_id, holder))

    async def checkpoint(
        self, consumer_id: str, holder: Holder, *, cursor: Cursor, generation: int
    ) -> bool:
        """Move the checkpoint forward to ``cursor``, fenced by the holder and ``generation``;
        False when the fence refused it."""
        moved = await self.tx.execute(
            "consumer_checkpoint",
            self._held(
                consumer_id,
                holder,
                after_tx=cursor[0],
                after_position=cursor[1],
                generation=generation,
            ),
        )
        return moved != 0

    # -- parked events ------------------------------------------------------------------------
    async def park(
        self, consumer_id: str, *, position: int, event_id: str, attempts: int, last_error: str
    ) -> None:
        """Park an event with its error (again: the attempts add up)."""
        await self.tx.execute(
            "parked_upsert",
            self._params(
                consumer_id=consumer_id,
                position=position,
                event_id=event_id,
                attempts=attempts,
                last_error=last_error,
            ),
        )

    async def parked(self, consumer_id: str | None) -> builtins.list[ParkedEvent]:
        """Parked and re-drive pending events (of one consumer, or all of the tenant's)."""
        rows = await self.tx.fetch_all("parked_list", self._params(consumer_id=consumer_id))
        return [ParkedEvent.from_row(r) for r in rows]

    async def mark_redrive(self, consumer_id: str, position: int | None) -> int:
        """Ask for parked events to be delivered again (one position, or all when None);
        how many were marked."""
        return await self.tx.execute(
            "parked_mark_redrive", self._params(consumer_id=consumer_id, position=position)
        )

    async def due_redrive(self, consumer_id: str, *, limit: int) -> builtins.list[int]:
        """Positions the consumer was asked to re-drive, in order."""
        rows = await self.tx.fetch_all(
            "parked_due_redrive", self._params(consumer_id=consumer_id, limit=limit)
        )
        return [r["position"] for r in rows]

    async def resolve(self, consumer_id: str, position: int) -> None:
        """A re-driven event was handled."""
        await self.tx.execute(
            "parked_resolve", self._params(consumer_id=consumer_id, position=position)
        )
