"""The workflow engine of one tenant: a durable consumer and an executor.

- The consumer (``cowork.workflows``, all events, transactional) starts instances for trigger
  events (idempotent per trigger event id; the version is the latest registered before the
  trigger in log order) and advances waiting instances that correlate with the event; its
  checkpoint commits in the same transaction as those transitions.
- The executor (:mod:`cowork.workflows.executor`) claims due steps (actions this process
  offers, timers that fired, fresh starts) and runs them outside any transaction, each step
  checkpointed in its own short one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cowork.consumers.manager import ConsumerManager
from cowork.consumers.subscription import DurableSubscription
from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.log import append_events, prepare_event
from cowork.events.patterns import EventPattern
from cowork.ids import new_id
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.tenancy import TenantScope
from cowork.workflows.actions import ActionRegistry
from cowork.workflows.builtins import BUILTIN_WORKFLOWS
from cowork.workflows.cache import DefinitionCache
from cowork.workflows.definition import WaitStep, WorkflowDefinition
from cowork.workflows.executor import Executor
from cowork.workflows.machine import Transition, TransitionContext, before
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = [
    "CONSUMER_ID",
    "DEFINITION_REGISTERED",
    "WorkflowEngine",
    "register_definition",
    "start_instance",
    "starting",
]

CONSUMER_ID = "cowork.workflows"
DEFINITION_REGISTERED = "workflow:definition:registered"


async def register_definition(
    ctx: UnitOfWork, definition: WorkflowDefinition, *, announce: bool = True
) -> bool:
    """Store a definition version and, when it is new, announce it in the same transaction;
    the announcement's log cursor is recorded with the version, so that a trigger starts the
    latest version registered before it (built-ins are not announced: every engine registers
    and loads them when it starts)."""
    store = WorkflowStore(ctx.tx, ctx.scope)
    created = await store.register(definition)
    if created and announce:
        prepared = prepare_event(
            NewEvent(
                event_type=DEFINITION_REGISTERED,
                aggregate_type="workflow-definition",
                aggregate_id=definition.workflow_id,
                payload={
                    "workflowId": definition.workflow_id,
                    "version": definition.version,
                    "checksum": definition.checksum,
                    "trigger": definition.trigger,
                },
            ),
            policy=ctx.truncating_event_policy,  # as the engine's other events (machine)
        )
        appended = await append_events(ctx.tx, ctx.scope.tenant_id, [prepared])
        ctx.record_published(appended.new)
        await store.set_registered(definition, appended.envelopes[0].cursor)
    return created


def trigger_state(event: EventEnvelope) -> dict[str, Any]:
    """The trigger as kept in an instance's state (``ctx.trigger`` is rebuilt from it)."""
    return {
        "eventId": event.event_id,
        "eventType": event.event_type,
        "position": event.position,
        "txId": event.tx_id,
        "payload": event.payload,
        "metadata": event.metadata,
        "aggregateType": event.aggregate_type,
        "aggregateId": event.aggregate_id,
        "correlationId": event.correlation_id,
        "causationId": event.causation_id,
        "occurredAt": event.occurred_at.isoformat(),
        "recordedAt": event.recorded_at.isoformat(),
    }


async def start_instance(
    ctx: UnitOfWork,
    definition: WorkflowDefinition,
    *,
    start_key: str,
    correlation_key: str,
    event: EventEnvelope | None,
    input_data: Mapping[str, Any] | None,
    event_cursor: tuple[int, int] | None,
    run_inline: bool,
    lease: tuple[str, float] | None = None,
) -> WorkflowInstance | None:
    """Create an instance and record its start, in one insert (None if ``start_key`` was
    used). ``event_cursor`` None: the head of the log as the insert sees it. ``lease``
    (owner, seconds) inserts it already leased to that executor, which is handed the instance
    after the commit instead of claiming it."""
    transition = await starting(
        ctx,
        definition,
        start_key=start_key,
        correlation_key=correlation_key,
        event=event,
        input_data=input_data,
        event_cursor=event_cursor,
        run_inline=run_inline,
        lease=lease,
    )
    return await transition.save_new(at_head=event_cursor is None)


async def starting(
    ctx: TransitionContext,
    definition: WorkflowDefinition,
    *,
    start_key: str,
    correlation_key: str,
    event: EventEnvelope | None,
    input_data: Mapping[str, Any] | None,
    event_cursor: tuple[int, int] | None,
    run_inline: bool,
    lease: tuple[str, float] | None = None,
) -> Transition:
    """The start of an instance as a transition, not written yet (see start_instance)."""
    state: dict[str, Any] = {"input": dict(input_data or {}), "data": {}}
    if event is not None:
        state["trigger"] = trigger_state(event)
    now = ctx.clock.now()
    draft = WorkflowInstance(
        instance_id=new_id(),
        workflow_id=definition.workflow_id,
        workflow_version=definition.version,
        status=InstanceStatus.RUNNING,
        step_index=0,
        correlation_key=correlation_key,
        start_key=start_key,
        state=state,
        attempts=0,
        last_error=None,
        wake_at=None if run_inline else now,
        tenant_id=ctx.scope.tenant_id,
        owner_id=ctx.scope.owner_id,
        created_at=now,
        updated_at=now,
        ended_at=None,
        row_version=1,
        event_cursor=event_cursor or (0, 0),
        lease_owner=None if lease is None else lease[0],
        lease_expires_at=None if lease is None else now + timedelta(seconds=lease[1]),
    )
    transition = Transition(ctx, definition, draft)
    transition.started(event)
    if run_inline and event is not None:
        await transition.advance(scan=False)
        transition.offer(event)
        await transition.advance(scan=False)
    return transition


class WorkflowEngine:
    def __init__(self, core: Core, scope: TenantScope, *, run: bool) -> None:
        self.core = core
        self.scope = scope
        self.cache = DefinitionCache()
        self.executor = Executor(core, scope, self.cache)
        self._waiter = self.executor.waiter
        self._run = run
        self._stopped = False
        self._subscription: DurableSubscription | None = None
        self._executor: asyncio.Task[None] | None = None
        self._relevance: dict[str, bool] = {}
        self._relevance_generation = -1
        self._consumer_transitions = 0

    @property
    def transitions(self) -> int:
        """Transitions this engine committed (the consumer's and the executor's)."""
        return self._consumer_transitions + self.executor.transitions

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            for definition in BUILTIN_WORKFLOWS:
                await register_definition(ctx, definition, announce=False)
            await self.cache.refresh(store, force=True)
        if not self._run:
            return
        self._subscription = await ConsumerManager.of(self.core).subscribe(
            self.scope,
            consumer_id=CONSUMER_ID,
            pattern=EventPattern.parse("*"),
            handler=self._on_event,
            start="beginning",
            transactional=True,
            accepts=self._accepts,
        )
        self._executor = asyncio.get_running_loop().create_task(
            self.executor.run(), name=f"cowork-workflows-{self.scope.tenant_id}"
        )

    async def stop(self) -> None:
        """Stop: a running step may finish within the grace period; after it, the step is
        cancelled (nothing of it commits) and its lease released for another worker."""
        self._stopped = True
        self.executor.stop()
        if self._subscription is not None:
            await self._subscription.stop()
        if self._executor is not None:
            done, _ = await asyncio.wait(
                {self._executor}, timeout=self.core.settings.stop_grace_seconds
            )
            if not done:
                self._executor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._executor
        await self.executor.close()

    def wake(self) -> None:
        self.executor.wake()

    @property
    def executes(self) -> bool:
        """Whether this engine's executor runs here (and so can take started instances)."""
        return self._run and self._executor is not None and not self._stopped

    def lease_for_start(self, definition: WorkflowDefinition) -> tuple[str, float] | None:
        """The lease a start in this process gives its instance: this executor's, so that it
        runs the instance without claiming it; None when the executor does not run here or
        the first step is an action this process does not offer (a worker that does claims it)."""
        if not self.executes:
            return None
        first = definition.steps[0]
        action = getattr(first, "action", None)
        if (
            action is not None
            and ActionRegistry.of(self.core).get(self.scope.tenant_id, action) is None
        ):
            return None
        return (self.core.worker_id, self.executor.lease_seconds)

    def take_over(self, instance: WorkflowInstance) -> None:
        self.executor.take_over(instance)

    def cancelled(self, instance_id: str) -> None:
        """An instance was cancelled in this process: stop its running action, if here."""
        self.executor.cancel_running(instance_id, "cancelled")

    # -- event side -----------------------------------------------------------------------------
    def _accepts(self, event_type: str) -> bool:
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

    async def _on_event(self, event: EventEnvelope, ctx: UnitOfWork) -> None:
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
                    self._consumer_transitions += 1
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
                    self._consumer_transitions += 1
