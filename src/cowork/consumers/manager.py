"""The durable consumers running in one process (the embedded or standalone worker)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from cowork.consumers.options import ConsumerOptions
from cowork.consumers.runner import ConsumerRunner
from cowork.consumers.subscription import DurableSubscription
from cowork.errors import ValidationError
from cowork.events.patterns import EventPattern
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.core import Core

__all__ = ["ConsumerManager"]


class ConsumerManager:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._runners: dict[tuple[str, str], ConsumerRunner] = {}

    def default_options(self) -> ConsumerOptions:
        # PostgreSQL wakes consumers across processes with NOTIFY, so polling is a fallback;
        # SQLite has only in-process wake-ups, so another process's events come by polling.
        poll = 1.0 if self._core.database.backend == "postgresql" else 0.25
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
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            await runner.stop()


def _fields(options: ConsumerOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}
