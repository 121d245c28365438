"""The engine's event side: a durable transactional consumer (``cowork.workflows``, every
event of the tenant) that starts instances for trigger events and advances waiting instances
correlated with an event, in the same transaction as its checkpoint.

- A trigger starts, per workflow, the latest version registered before it in log order
  (:meth:`~cowork.workflows.definitions.DefinitionCache.started_by`), idempotently: the start
  key is ``event:<event id>``.
- Events no definition can react to (no trigger and no wait of any version matches their
  type) are passed over without a transaction (the subscription's pre-filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cowork.consumers.manager import ConsumerManager
from cowork.consumers.subscription import DurableSubscription
from cowork.events.envelope import EventEnvelope
from cowork.events.patterns import EventPattern
from cowork.kernel.unit import UnitOfWork
from cowork.tenancy import TenantScope
from cowork.workflows.definition import WaitStep
from cowork.workflows.definitions import DEFINITION_REGISTERED, DefinitionCache
from cowork.workflows.machine import Transition, before
from cowork.workflows.starts import start_instance
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["CONSUMER_ID", "TriggerConsumer"]

CONSUMER_ID = "cowork.workflows"


class TriggerConsumer:
    def __init__(self, core: Core, scope: TenantScope, cache: DefinitionCache) -> None:
        self.core = core
        self.scope = scope
        self.cache = cache
        self.transitions = 0  # committed by this consumer (starts and advanced waits)
        self._subscription: DurableSubscription | None = None
        self._relevance: dict[str, bool] = {}
        self._relevance_generation = -1

    async def subscribe(self) -> None:
        self._subscription = await ConsumerManager.of(self.core).subscribe(
            self.scope,
            consumer_id=CONSUMER_ID,
            pattern=EventPattern.parse("*"),
            handler=self.on_event,
            start="beginning",
            transactional=True,
            accepts=self.accepts,
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.stop()

    def accepts(self, event_type: str) -> bool:
        """Whether any definition could react to this event type (a trigger of any version or
        a wait of any version); registrations always pass, to refresh the cache."""
        if event_type == DEFINITION_REGISTERED:
            return True
        generation = self.cache.generation
        if generation != self._relevance_generation:
            self._relevance.clear()
            self._relevance_generation = generation
        relevant = self._relevance.get(event_type)
        if relevant is None:
            relevant = any(
                (d.trigger and EventPattern.parse(d.trigger).matches(event_type))
                or any(
                    isinstance(s, WaitStep) and EventPattern.parse(s.event).matches(event_type)
                    for s in d.steps
                )
                for d in self.cache.by_version.values()
            )
            self._relevance[event_type] = relevant
        return relevant

    async def on_event(self, event: EventEnvelope, ctx: UnitOfWork) -> None:
        store = WorkflowStore(ctx.tx, self.scope)
        # A registration commits its event with the definition, so every trigger published
        # after it comes later in the log: refreshing here means none is handled stale.
        await self.cache.refresh(store, force=event.event_type == DEFINITION_REGISTERED)
        for definition in self.cache.started_by(event.cursor):
            if definition.trigger and EventPattern.parse(definition.trigger).matches(
                event.event_type
            ):
                key = definition.correlation_key(event.payload)
                if key is None:
                    continue  # the event lacks a correlation field: not this workflow's
                started = await start_instance(
                    ctx,
                    definition,
                    start_key=f"event:{event.event_id}",
                    correlation_key=key,
                    event=event,
                    input_data=None,
                    event_cursor=before(event.cursor),
                    run_inline=True,
                )
                if started is not None:
                    self.transitions += 1
        await self._advance_waiting(ctx, store, event)

    async def _advance_waiting(
        self, ctx: UnitOfWork, store: WorkflowStore, event: EventEnvelope
    ) -> None:
        seen: set[tuple[str, str]] = set()
        for definition in list(self.cache.by_version.values()):
            if not any(
                isinstance(s, WaitStep) and EventPattern.parse(s.event).matches(event.event_type)
                for s in definition.steps
            ):
                continue
            key = definition.correlation_key(event.payload)
            if key is None or (definition.workflow_id, key) in seen:
                continue
            seen.add((definition.workflow_id, key))
            for instance in await store.correlated(definition.workflow_id, key):
                own = await self.cache.version(
                    store, instance.workflow_id, instance.workflow_version
                )
                transition = Transition(ctx, own, instance)
                if transition.offer(event):
                    await transition.advance(scan=False)
                    await transition.save()
                    self.transitions += 1
