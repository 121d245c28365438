"""The durable consumers running in one process (the embedded or standalone worker)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from cowork.consumers.options import ConsumerOptions
from cowork.consumers.runner import ConsumerRunner
from cowork.consumers.subscription import DurableSubscription
from cowork.errors import CoworkError, ValidationError
from cowork.events.log import Cursor, head_cursor
from cowork.events.patterns import EventPattern
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["ConsumerManager"]

_log = logging.getLogger("cowork.consumers")


class ConsumerManager:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._runners: dict[tuple[str, str], ConsumerRunner] = {}

    @classmethod
    def of(cls, core: Core) -> ConsumerManager:
        """The process's consumer manager (one per core, made on first use)."""
        return core.part(cls, cls)

    def default_options(self) -> ConsumerOptions:
        # Where other processes' commits wake consumers (NOTIFY), polling is a fallback; where
        # wake-ups are in-process only, another process's events come by polling.
        poll = self._core.database.capabilities.poll_interval
        return ConsumerOptions(poll_interval=poll)

    def subscribe(
        self,
        scope: TenantScope,
        *,
        consumer_id: str,
        pattern: EventPattern,
        handler: Callable[..., Awaitable[Any] | Any],
        start: Literal["beginning", "now"],
        transactional: bool,
        max_attempts: int | None = None,
        options: ConsumerOptions | None = None,
        accepts: Callable[[str], bool] | None = None,
    ) -> DurableSubscription:
        key = (scope.tenant_id, consumer_id)
        existing = self._runners.get(key)
        if existing is not None and existing.running:
            raise ValidationError(
                f"consumer {consumer_id!r} is already subscribed in this runtime for tenant "
                f"{scope.tenant_id!r}; stop the first subscription before subscribing again"
            )
        opts = options or self.default_options()
        if max_attempts is not None:
            opts = ConsumerOptions(
                **{**_fields(opts), "max_attempts": max_attempts},
            )
        runner = ConsumerRunner(
            self._core,
            scope,
            consumer_id=consumer_id,
            pattern=pattern,
            handler=handler,
            transactional=transactional,
            start=start,
            options=opts,
            accepts=accepts,
        )
        self._runners[key] = runner
        runner.start(run=self._core.run_worker)
        return DurableSubscription(runner)

    def runner(self, tenant_id: str, consumer_id: str) -> ConsumerRunner | None:
        return self._runners.get((tenant_id, consumer_id))

    async def close(self) -> None:
        """Stop every runner, after letting the running ones handle what was committed
        before the close (see :meth:`drain`)."""
        runners, self._runners = list(self._runners.values()), {}
        await self.drain(runners, self._core.settings.stop_grace_seconds)
        for runner in runners:
            await runner.stop()

    async def drain(self, runners: Sequence[ConsumerRunner], timeout: float) -> None:
        """Let each running runner handle the events of its tenant committed up to now, for at
        most ``timeout`` seconds in all (``COWORK_WORKER_STOP_GRACE_SECONDS``). Without this a
        process that publishes and closes at once would stop its consumers with those events
        in hand; they would be delivered only by the next process that runs the consumer."""
        running = [r for r in runners if r.running]
        if not running or timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        heads: dict[str, Cursor] = {}
        for tenant_id in {r.scope.tenant_id for r in running}:
            try:
                heads[tenant_id] = await asyncio.wait_for(
                    self._head(tenant_id), max(0.0, deadline - time.monotonic())
                )
            except (CoworkError, TimeoutError) as exc:  # the next holder delivers
                _log.warning(
                    "not draining consumers of tenant %r on close: %s",
                    tenant_id,
                    str(exc) or "the log head could not be read in time",
                )
        waiting = [r for r in running if r.scope.tenant_id in heads]
        drained = await asyncio.gather(
            *(
                r.drain(heads[r.scope.tenant_id], max(0.0, deadline - time.monotonic()))
                for r in waiting
            )
        )
        for runner, done in zip(waiting, drained, strict=True):
            if not done:
                _log.warning(
                    "consumer %r had not handled every event committed before close after "
                    "%.1f s (COWORK_WORKER_STOP_GRACE_SECONDS); the next process that runs it "
                    "delivers the rest",
                    runner.consumer_id,
                    timeout,
                )

    async def _head(self, tenant_id: str) -> Cursor:
        async with self._core.database.transaction(tenant_id=tenant_id, read_only=True) as tx:
            return await head_cursor(tx, tenant_id)


def _fields(options: ConsumerOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}
