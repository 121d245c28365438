"""``rt.consumers``: inspect and operate durable consumers (list, parked, redrive, reset)."""

from __future__ import annotations

import builtins
from typing import Literal

from cowork.arguments import number_arg
from cowork.consumers.manager import ConsumerManager
from cowork.consumers.records import ConsumerInfo, ParkedEvent
from cowork.consumers.store import ConsumerStore
from cowork.errors import NotFound, ValidationError
from cowork.events.log import START, cursor_of_position, head_cursor
from cowork.events.patterns import EventPattern
from cowork.kernel.core import Core
from cowork.tenancy import TenantScope, validate_id

__all__ = ["ConsumerInfo", "ConsumersService", "ParkedEvent"]


class ConsumersService:
    def __init__(self, core: Core, scope: TenantScope) -> None:
        self._core = core
        self._scope = scope

    async def list(self) -> list[ConsumerInfo]:
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, read_only=True
        ) as tx:
            return await ConsumerStore(tx, self._scope.tenant_id).list()

    async def parked(self, consumer_id: str | None = None) -> builtins.list[ParkedEvent]:
        if consumer_id is not None:
            validate_id(consumer_id, "consumer_id")
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, read_only=True
        ) as tx:
            return await ConsumerStore(tx, self._scope.tenant_id).parked(consumer_id)

    async def redrive(self, consumer_id: str, *, position: int | None = None) -> int:
        """Deliver parked events again (all of the consumer's, or one position); returns how
        many were queued. The running consumer picks them up within its redrive interval."""
        validate_id(consumer_id, "consumer_id")
        if position is not None:
            number_arg(position, "position", minimum=0, maximum=2**63 - 1, integer=True)
        async with self._core.database.transaction(
            tenant_id=self._scope.tenant_id, appends=False
        ) as tx:
            store = ConsumerStore(tx, self._scope.tenant_id)
            await self._require(store, consumer_id)
            count = await store.mark_redrive(consumer_id, position)
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
            store = ConsumerStore(tx, self._scope.tenant_id)
            await self._require(store, consumer_id)
            if to == "beginning":
                cursor = START
            elif to == "now":
                cursor = await head_cursor(tx, self._scope.tenant_id)
            elif isinstance(to, int) and not isinstance(to, bool):
                cursor = await cursor_of_position(tx, self._scope.tenant_id, to)
            else:
                raise ValidationError("to must be 'beginning', 'now' or a position")
            await store.reset(consumer_id, to=cursor, pattern=new_pattern)
        self._core.database.wakeups.signal(self._scope.tenant_id)

    async def _require(self, store: ConsumerStore, consumer_id: str) -> None:
        if await store.get(consumer_id) is None:
            raise NotFound(f"no consumer {consumer_id!r} in tenant {self._scope.tenant_id!r}")
