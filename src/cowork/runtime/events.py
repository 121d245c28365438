"""``rt.events``: publish, read and subscribe."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from cowork.consumers.manager import ConsumerManager
from cowork.consumers.subscription import DurableSubscription
from cowork.errors import ValidationError
from cowork.events.bus import LocalSubscription
from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.log import (
    END,
    START,
    Cursor,
    PreparedEvent,
    append_alone,
    count_events,
    cursor_of_position,
    existing_events,
    prepare_and_append,
    prepare_event,
    read_events,
    read_events_before,
)
from cowork.events.patterns import EventPattern
from cowork.kernel.database_store import horizon_holders
from cowork.kernel.service import TenantService, utcnow
from cowork.storage.port import HorizonHolder
from cowork.tenancy import validate_id, validate_limit

if TYPE_CHECKING:
    from cowork.runtime.transaction import TransactionContext

__all__ = ["EventHandler", "EventsService", "TransactionalHandler"]

MAX_BATCH = 5_000
# How long a read waits for this process's own committed writes to become readable.
OWN_WRITES_WAIT_SECONDS = 2.0
Start = Literal["beginning", "now"]
# An event handler: ``(event)``, async or not. A transactional one (``transactional=True``):
# ``async (event, tx)``, where ``tx`` is the transaction its checkpoint commits in.
EventHandler = Callable[[EventEnvelope], Awaitable[None] | None]
TransactionalHandler = Callable[[EventEnvelope, "TransactionContext"], Awaitable[None]]


class EventsService(TenantService):
    """Publishing, reading and subscribing for one tenant (``rt.events`` or ``tx.events``)."""

    async def publish(
        self,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        aggregate_type: str | None = None,
        aggregate_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
        truncate: bool = False,
    ) -> EventEnvelope:
        """Sanitise and append one event; publishing an ``event_id`` again returns the original.

        A payload or metadata over a configured limit (``COWORK_EVENT_MAX_BYTES``,
        ``COWORK_EVENT_MAX_STRING_LENGTH``, ``COWORK_EVENT_MAX_DEPTH``) raises
        :class:`~cowork.errors.PayloadRejected` naming the path and nothing is stored.
        ``truncate=True`` cuts long strings and too-deep containers instead, and lists their
        paths in the metadata under ``"truncated"``; the byte limit still applies.
        """
        event = NewEvent(
            event_type=event_type,
            payload=payload,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            metadata=metadata,
            event_id=event_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            occurred_at=occurred_at,
        )
        [envelope] = await self.publish_many([event], truncate=truncate)
        return envelope

    async def publish_many(
        self, events: Sequence[NewEvent], *, truncate: bool = False
    ) -> list[EventEnvelope]:
        """Append several events in one transaction, in order (all or none: one rejected
        event stores nothing). ``truncate`` as for :meth:`publish`."""
        if not isinstance(truncate, bool):
            raise ValidationError(f"truncate must be True or False, got {truncate!r}")
        core = self._core
        policy = core.truncating_event_policy if truncate else core.event_policy
        if isinstance(events, NewEvent | str | bytes) or not isinstance(events, Sequence):
            raise ValidationError("publish_many takes a sequence of cowork.NewEvent")
        if len(events) > MAX_BATCH:
            raise ValidationError(f"publish_many takes at most {MAX_BATCH} events per call")
        for event in events:
            if not isinstance(event, NewEvent):
                raise ValidationError(
                    f"publish_many takes cowork.NewEvent items, got {type(event).__name__}"
                )
        if self._bound is None and len(events) == 1:
            return [await self._publish_alone(prepare_event(events[0], policy=policy))]
        if not events:
            return []
        async with self._transaction() as ctx:
            appended = await prepare_and_append(
                ctx.tx, self._scope.tenant_id, events, policy=policy
            )
            ctx.record_published(appended.new)
        return appended.envelopes

    async def _publish_alone(self, event: PreparedEvent) -> EventEnvelope:
        """The hot path: one event, its own transaction, one round trip on PostgreSQL."""
        tenant = self._scope.tenant_id
        envelope = await append_alone(self._core.database, tenant, event, utcnow())
        if envelope is not None:
            self._core.committed(tenant, [envelope])
            return envelope
        # The id was stored before (idempotent publish): answer with the original.
        async with self._transaction(read_only=True) as ctx:
            existing = await existing_events(ctx.tx, tenant, [event.event_id])
        return existing[event.event_id]

    async def read(
        self, *, after: int | EventEnvelope | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        """Catch-up read: up to ``limit`` events after ``after`` (a position or an envelope).

        Events come in commit order; pass the last envelope (or its position) back as ``after``
        to continue. ``None`` or ``0`` reads from the beginning.

        A runtime reads its own writes: once a publish has returned, a read from this runtime
        returns that event. On PostgreSQL the read may wait for it briefly (up to
        OWN_WRITES_WAIT_SECONDS) while a transaction of this tenant that began earlier is
        still committing; events of other tenants and databases never make it wait.
        """
        async with self._transaction(read_only=True) as ctx:
            if isinstance(after, EventEnvelope):
                cursor = after.cursor
            elif after is None:
                cursor = START
            else:
                cursor = await cursor_of_position(ctx.tx, self._scope.tenant_id, after)
            page = await read_events(ctx.tx, self._scope.tenant_id, cursor, limit)
        own = self._core.own_heads.get(self._scope.tenant_id)
        if self._bound is None and own is not None:
            page = await self._await_own_writes(page, cursor, limit, own)
        return page

    async def read_before(
        self, *, before: int | EventEnvelope | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        """Paging backwards: up to ``limit`` events just before ``before`` (a position or an
        envelope; ``None`` is the end of the log), in commit order (oldest first).

        Pass the first envelope of a page back as ``before`` to continue towards the start; a
        page shorter than ``limit`` reached it. Only the rows returned are read, however long
        the log (``cowork events tail``). On PostgreSQL the end of the log is the tenant's
        commit horizon, as for :meth:`read`, so ``read(after=page[-1])`` follows on without a
        gap.
        """
        async with self._transaction(read_only=True) as ctx:
            if isinstance(before, EventEnvelope):
                cursor = before.cursor
            elif before is None:
                cursor = END
            else:
                cursor = await cursor_of_position(ctx.tx, self._scope.tenant_id, before)
            return await read_events_before(ctx.tx, self._scope.tenant_id, cursor, limit)

    async def _await_own_writes(
        self, page: list[EventEnvelope], cursor: Cursor, limit: int, own: Cursor
    ) -> list[EventEnvelope]:
        """Re-read while a partial page stops short of this process's last committed event
        (an older transaction of the tenant still open holds the horizon below it)."""
        deadline = time.monotonic() + OWN_WRITES_WAIT_SECONDS
        delay = 0.001
        while len(page) < limit and (page[-1].cursor if page else cursor) < own:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            async with self._transaction(read_only=True) as ctx:
                page = await read_events(ctx.tx, self._scope.tenant_id, cursor, limit)
        return page

    async def count(self) -> int:
        """How many events this tenant's log holds."""
        async with self._transaction(read_only=True) as ctx:
            return await count_events(ctx.tx, self._scope.tenant_id)

    async def horizon_holders(self, *, min_age_seconds: float = 5.0) -> list[HorizonHolder]:
        """Open transactions that have held this tenant's read horizon back for at least
        ``min_age_seconds``, oldest first (always empty on SQLite).

        A transaction of this tenant (or a cross-tenant one) that has written and stays open
        may still append events, so this tenant's readers and durable consumers wait for it;
        transactions of other tenants or other databases never hold it back. Transactions of
        database roles whose activity this connection may not see are not listed."""
        if isinstance(min_age_seconds, bool) or not isinstance(min_age_seconds, int | float):
            raise ValidationError("min_age_seconds must be a number of seconds")
        # The cross-tenant scope and the connecting role: pg_stat_activity shows the age of
        # this role's own sessions (the tenant role that RLS switches to would see none).
        async with self._core.database.transaction(tenant_id=None, read_only=True) as tx:
            return await horizon_holders(
                tx, self._scope.tenant_id, min_age_seconds=float(min_age_seconds)
            )

    async def iterate(
        self, *, after: int | EventEnvelope | None = None, page_size: int = 500
    ) -> AsyncIterator[EventEnvelope]:
        """Every event after ``after``, read page by page (memory stays bounded)."""
        validate_limit(page_size, what="page_size")
        cursor_after: int | EventEnvelope | None = after
        while True:
            page = await self.read(after=cursor_after, limit=page_size)
            for envelope in page:
                yield envelope
            if len(page) < page_size:
                return
            cursor_after = page[-1]

    @overload
    def subscribe(
        self, pattern: str, handler: EventHandler, *, consumer_id: None = None
    ) -> LocalSubscription: ...

    @overload
    def subscribe(
        self,
        pattern: str,
        handler: EventHandler,
        *,
        consumer_id: str,
        start: Start = "beginning",
        transactional: Literal[False] = False,
        max_attempts: int | None = None,
    ) -> DurableSubscription: ...

    @overload
    def subscribe(
        self,
        pattern: str,
        handler: TransactionalHandler,
        *,
        consumer_id: str,
        start: Start = "beginning",
        transactional: Literal[True],
        max_attempts: int | None = None,
    ) -> DurableSubscription: ...

    def subscribe(
        self,
        pattern: str,
        handler: EventHandler | TransactionalHandler,
        *,
        consumer_id: str | None = None,
        start: Start = "beginning",
        transactional: bool = False,
        max_attempts: int | None = None,
    ) -> LocalSubscription | DurableSubscription:
        """Subscribe ``handler`` to events matching ``pattern``.

        Without ``consumer_id``: an in-process subscriber, called after commit for events this
        process publishes (returns a :class:`LocalSubscription`). With ``consumer_id``: a
        durable consumer with a checkpoint in the database (at-least-once, retries, dead
        letters); ``await`` the :class:`DurableSubscription` to make sure it is registered.
        ``transactional=True`` says the handler is ``async def h(event, tx)``: its writes
        through ``tx`` and the checkpoint commit together.
        """
        parsed = EventPattern.parse(pattern)
        if not callable(handler):
            raise ValidationError("handler must be callable: async def handler(event) -> None")
        if transactional is not True and transactional is not False:
            raise ValidationError("transactional must be True or False")
        if consumer_id is None:
            if transactional:
                raise ValidationError("a transactional handler needs a consumer_id")
            _refuse_implicit_transaction(handler)
            plain = cast(EventHandler, handler)  # not transactional: it takes the event only
            return self._core.bus.subscribe(self._scope.tenant_id, parsed, plain)
        validate_id(consumer_id, "consumer_id")
        if start not in ("beginning", "now"):
            raise ValidationError("start must be 'beginning' or 'now'")
        if transactional:
            if not inspect.iscoroutinefunction(handler):
                raise ValidationError(
                    "a transactional handler must be async: async def h(event, tx)"
                )
        else:
            _refuse_implicit_transaction(handler)
        return ConsumerManager.of(self._core).subscribe(
            self._scope,
            consumer_id=consumer_id,
            pattern=parsed,
            handler=handler,
            start=start,
            transactional=transactional,
            max_attempts=max_attempts,
        )


def _refuse_implicit_transaction(handler: Callable[..., object]) -> None:
    """The handler's kind is what the caller says (``transactional=``), never guessed; but a
    handler that needs a second argument would fail on every event, so say so now."""
    if _required_positional(handler) >= 2:
        raise ValidationError(
            "this handler takes (event, tx): subscribe it with consumer_id=... and "
            "transactional=True, or make it take only the event"
        )


def _required_positional(handler: Callable[..., object]) -> int:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(
        1
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )
