"""The handle a durable ``subscribe`` returns."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from cowork.events.patterns import EventPattern

if TYPE_CHECKING:
    from cowork.consumers.runner import ConsumerRunner

__all__ = ["DurableSubscription"]


class DurableSubscription:
    """A durable consumer running in this process. ``await sub`` waits until it is registered
    (raising if its id exists with another pattern); ``await sub.stop()`` stops it and releases
    its lease."""

    durable = True

    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    @property
    def consumer_id(self) -> str:
        return self._runner.consumer_id

    @property
    def tenant_id(self) -> str:
        return self._runner.scope.tenant_id

    @property
    def pattern(self) -> EventPattern:
        return self._runner.pattern

    @property
    def handled(self) -> int:
        """Events handled successfully by this process."""
        return self._runner.handled

    @property
    def parked(self) -> int:
        """Events this process parked after exhausting retries."""
        return self._runner.parked

    @property
    def active(self) -> bool:
        """True while this process holds the consumer's lease."""
        return self._runner.holding

    async def ready(self) -> DurableSubscription:
        await self._runner.ready()
        return self

    def __await__(self) -> Generator[Any, None, DurableSubscription]:
        return self.ready().__await__()

    async def wait_until_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until this runner has read to the head of the log (tests, tooling)."""
        await self._runner.wait_caught_up(timeout)

    async def stop(self) -> None:
        await self._runner.stop()
