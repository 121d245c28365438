"""Delivering one event to a durable consumer's handler.

The handler is tried up to ``max_attempts`` times, with a capped exponential backoff between
attempts (:meth:`~cowork.consumers.options.ConsumerOptions.backoff`); then the event is
parked (``cowork_event_parked``, with its error) and the consumer moves on. A transactional
handler ``(event, tx)`` commits its writes with the checkpoint; a parking moves the checkpoint
in its own transaction. Parked events due for a re-drive are delivered again the same way,
resolving their parked row instead of moving the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cowork.consumers.lease import ConsumerLease, LeaseLost
from cowork.consumers.options import ConsumerOptions
from cowork.errors import PersistenceUnavailable
from cowork.events.envelope import EventEnvelope
from cowork.events.log import event_at_position
from cowork.kernel.core import Core
from cowork.kernel.unit import open_transaction
from cowork.logs import describe_error
from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope

__all__ = ["Delivery", "Handler", "pause"]

_log = logging.getLogger("cowork.consumers")
Handler = Callable[..., Awaitable[Any] | Any]
_REDRIVE_BATCH = 50


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Delivery:
    def __init__(
        self,
        core: Core,
        scope: TenantScope,
        *,
        consumer_id: str,
        handler: Handler,
        transactional: bool,
        options: ConsumerOptions,
        lease: ConsumerLease,
        stop: asyncio.Event,
    ) -> None:
        self.core = core
        self.scope = scope
        self.consumer_id = consumer_id
        self.handler = handler
        self.transactional = transactional
        self.options = options
        self.handled = 0
        self.parked = 0
        self._lease = lease
        self._stop = stop
        self._is_async = inspect.iscoroutinefunction(handler)

    async def deliver(self, envelope: EventEnvelope, *, checkpoint: bool) -> bool | None:
        """Handle with retries. True: handled. False: parked. None: stopped before finishing.

        With ``checkpoint``, a transactional handler's transaction and a parking also move the
        checkpoint to this event (fenced); for a re-drive they resolve the parked row instead.
        """
        error: BaseException | None = None
        attempts = 0
        for attempt in range(1, self.options.max_attempts + 1):
            attempts = attempt
            try:
                if self.transactional:
                    async with open_transaction(self.core, self.scope) as ctx:
                        await self.handler(envelope, ctx)
                        await self._after_handled(ctx.tx, envelope, checkpoint)
                else:
                    await self._call_plain(envelope)
                    if not checkpoint:
                        async with self.core.database.transaction(
                            tenant_id=self.scope.tenant_id
                        ) as tx:
                            await self._after_handled(tx, envelope, checkpoint)
                self.handled += 1
                return True
            except (LeaseLost, PersistenceUnavailable):
                raise  # not the handler's fault: the outer loop backs off and reacquires
            except Exception as exc:
                error = exc
                _log.warning(
                    "consumer %r failed on %s at position %d (attempt %d/%d): %s",
                    self.consumer_id,
                    envelope.event_type,
                    envelope.position,
                    attempt,
                    self.options.max_attempts,
                    describe_error(exc),
                )
                if attempt < self.options.max_attempts:
                    await pause(self._stop, self.options.backoff(attempt))
                    if self._stop.is_set():
                        return None
                    self._lease.check()
        await self._park(envelope, attempts, error, checkpoint=checkpoint)
        return False

    async def redrive(self) -> None:
        """Deliver again the parked events that are due for a re-drive."""
        tenant_id = self.scope.tenant_id
        async with self.core.database.transaction(tenant_id=tenant_id, appends=False) as tx:
            due = await self._lease.store(tx).due_redrive(self.consumer_id, limit=_REDRIVE_BATCH)
            events = [await event_at_position(tx, tenant_id, position) for position in due]
        for envelope in events:
            if envelope is None or self._stop.is_set():
                continue
            self._lease.check()
            await self.deliver(envelope, checkpoint=False)

    async def _call_plain(self, envelope: EventEnvelope) -> None:
        if self._is_async:
            await self.handler(envelope)
            return
        result = await asyncio.to_thread(self.handler, envelope)
        if inspect.isawaitable(result):
            await result

    async def _after_handled(
        self, tx: Transaction, envelope: EventEnvelope, checkpoint: bool
    ) -> None:
        if checkpoint:
            await self._lease.save_checkpoint_in(tx, envelope.cursor)
        else:
            await self._lease.store(tx).resolve(self.consumer_id, envelope.position)

    async def _park(
        self,
        envelope: EventEnvelope,
        attempts: int,
        error: BaseException | None,
        *,
        checkpoint: bool,
    ) -> None:
        message = f"{type(error).__name__}: {error}" if error else "unknown error"
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            await self._lease.store(tx).park(
                self.consumer_id,
                position=envelope.position,
                event_id=envelope.event_id,
                attempts=attempts,
                last_error=message[:4000],
            )
            if checkpoint:
                await self._lease.save_checkpoint_in(tx, envelope.cursor)
        self.parked += 1
        _log.error(
            "consumer %r parked %s at position %d after %d attempts: %s",
            self.consumer_id,
            envelope.event_type,
            envelope.position,
            attempts,
            describe_error(error) if error else message,
        )
