"""``rt.consumers``: inspect and operate durable consumers (list, parked, redrive, reset)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cowork.arguments import number_arg
from cowork.consumers.manager import ConsumerManager
from cowork.errors import NotFound, ValidationError
from cowork.events.log import START, cursor_of_position, head_cursor
from cowork.events.patterns import EventPattern
from cowork.kernel.core import Core
from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope, validate_id

__all__ = ["ConsumerInfo", "ConsumersService", "ParkedEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerInfo:
    consumer_id: str
    pattern: str
    last_position: int
    lag: int
    parked: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkedEvent:
    consumer_id: str
    position: int
    event_id: str
    event_type: str | None
    attempts: int
    last_error: str
    status: str
    parked_at: datetime


class ConsumersService:
    def __init__(self, core: Core, scope: TenantScope) -> None:
        self._core = core
        self._scope = scope

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"tenant_id": self._scope.tenant_id, "now": datetime.now(UTC), **extra}

    async def list(self) -> list[ConsumerInfo]:
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, read_only=True
        ) as tx:
            rows = await tx.fetch_all("consumer_list", self._params())
        return [
            ConsumerInfo(
                consumer_id=r["consumer_id"],
                pattern=r["pattern"],
                last_position=r["last_position"],
                lag=r["lag"],
                parked=r["parked"],
                lease_owner=r["lease_owner"],
                lease_expires_at=r["lease_expires_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    async def parked(self, consumer_id: str | None = None) -> builtins.list[ParkedEvent]:
        if consumer_id is not None:
            validate_id(consumer_id, "consumer_id")
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, read_only=True
        ) as tx:
            rows = await tx.fetch_all("parked_list", self._params(consumer_id=consumer_id))
        return [
            ParkedEvent(
                consumer_id=r["consumer_id"],
                position=r["position"],
                event_id=r["event_id"],
                event_type=r["event_type"],
                attempts=r["attempts"],
                last_error=r["last_error"],
                status=r["status"],
                parked_at=r["parked_at"],
            )
            for r in rows
        ]

    async def redrive(self, consumer_id: str, *, position: int | None = None) -> int:
        """Deliver parked events again (all of the consumer's, or one position); returns how
        many were queued. The running consumer picks them up within its redrive interval."""
        validate_id(consumer_id, "consumer_id")
        if position is not None:
            number_arg(position, "position", minimum=0, maximum=2**63 - 1, integer=True)
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, appends=False
        ) as tx:
            await self._require(tx, consumer_id)
            count = await tx.execute(
                "parked_mark_redrive", self._params(consumer_id=consumer_id, position=position)
            )
        runner = ConsumerManager.of(self._core).runner(self._scope.tenant_id, consumer_id)
        if runner is not None:
            runner.request_redrive_check()
        self._core.database.wakeups.signal(self._scope.tenant_id)
        return count

    async def reset(
        self,
        consumer_id: str,
        *,
        to: Literal["beginning", "now"] | int = "beginning",
        pattern: str | None = None,
    ) -> None:
        """Move a consumer's checkpoint explicitly (backwards too) and/or change its pattern.

        ``to``: ``"beginning"``, ``"now"`` (skip everything so far) or a position (resume after
        that event). A running holder notices the new generation and continues from there.
        """
        validate_id(consumer_id, "consumer_id")
        new_pattern = EventPattern.parse(pattern).text if pattern is not None else None
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, appends=False
        ) as tx:
            await self._require(tx, consumer_id)
            if to == "beginning":
                cursor = START
            elif to == "now":
                cursor = await head_cursor(tx, self._scope.tenant_id)
            elif isinstance(to, int) and not isinstance(to, bool):
                cursor = await cursor_of_position(tx, self._scope.tenant_id, to)
            else:
                raise ValidationError("to must be 'beginning', 'now' or a position")
            await tx.execute(
                "consumer_reset",
                self._params(
                    consumer_id=consumer_id,
                    after_tx=cursor[0],
                    after_position=cursor[1],
                    pattern=new_pattern,
                ),
            )
        self._core.database.wakeups.signal(self._scope.tenant_id)

    async def _require(self, tx: Transaction, consumer_id: str) -> None:
        row = await tx.fetch_one("consumer_get", self._params(consumer_id=consumer_id))
        if row is None:
            raise NotFound(f"no consumer {consumer_id!r} in tenant {self._scope.tenant_id!r}")
