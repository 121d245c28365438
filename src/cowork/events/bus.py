"""In-process subscribers: called after commit, isolated from the publisher and each other.

Each subscription has its own queue and task, so a slow or failing subscriber never blocks or
breaks the publisher or another subscriber. Plain (non-async) functions run in a worker thread
so that they cannot stall the event loop. In-process subscribers see the events committed by
this process only and are not durable: use a durable consumer (``consumer_id=``) for work that
must survive a crash or see other processes' events.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from cowork.events.envelope import EventEnvelope
from cowork.events.patterns import EventPattern

__all__ = ["LocalBus", "LocalSubscription"]

_log = logging.getLogger("cowork.events")
_BACKLOG_WARNING = 10_000

Handler = Callable[[EventEnvelope], Awaitable[Any] | Any]


class LocalSubscription:
    """An in-process subscription; ``await sub.stop()`` (or ``sub.close()``) ends it."""

    def __init__(self, bus: LocalBus, tenant_id: str, pattern: EventPattern, handler: Handler):
        self.tenant_id = tenant_id
        self.pattern = pattern
        self.handler = handler
        self.durable = False
        self.delivered = 0
        self.failed = 0
        self._bus = bus
        self._queue: asyncio.Queue[EventEnvelope | None] = asyncio.Queue()
        self._is_async = inspect.iscoroutinefunction(handler)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"cowork-subscriber-{pattern.text}"
        )

    def offer(self, envelope: EventEnvelope) -> None:
        self._queue.put_nowait(envelope)
        size = self._queue.qsize()
        if size and size % _BACKLOG_WARNING == 0:
            _log.warning("in-process subscriber %r is %d events behind", self.pattern.text, size)

    async def _run(self) -> None:
        while True:
            envelope = await self._queue.get()
            if envelope is None:
                self._queue.task_done()
                return
            try:
                if self._is_async:
                    await self.handler(envelope)
                else:
                    result = await asyncio.to_thread(self.handler, envelope)
                    if inspect.isawaitable(result):
                        await result
                self.delivered += 1
            except Exception:
                self.failed += 1
                _log.exception(
                    "in-process subscriber %r failed on %s (position %d)",
                    self.pattern.text,
                    envelope.event_type,
                    envelope.position,
                )
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every event offered so far has been handled (tests, shutdown)."""
        if not self._task.done():
            await self._queue.join()

    def close(self) -> None:
        self._bus.remove(self)
        self._queue.put_nowait(None)

    async def stop(self) -> None:
        self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class LocalBus:
    def __init__(self) -> None:
        self._subscriptions: list[LocalSubscription] = []

    def subscribe(
        self, tenant_id: str, pattern: EventPattern, handler: Handler
    ) -> LocalSubscription:
        subscription = LocalSubscription(self, tenant_id, pattern, handler)
        self._subscriptions.append(subscription)
        return subscription

    def remove(self, subscription: LocalSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def dispatch(self, envelopes: Iterable[EventEnvelope]) -> None:
        if not self._subscriptions:
            return
        for envelope in envelopes:
            for subscription in self._subscriptions:
                if subscription.tenant_id == envelope.tenant_id and subscription.pattern.matches(
                    envelope.event_type
                ):
                    subscription.offer(envelope)

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.stop()
