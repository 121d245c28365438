"""The workflow engine of one tenant: a durable consumer and an executor.

- The consumer (``cowork.workflows``, all events, transactional) starts instances for trigger
  events (idempotent per trigger event id) and advances waiting instances that correlate with
  the event; its checkpoint commits in the same transaction as those transitions.
- The executor claims due instances (actions to run, timers that fired, fresh manual starts)
  one at a time with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no step ever runs in two
  workers at once; a worker that dies releases its row locks with its connection and another
  takes over. Timers are ``wake_at`` columns, so they survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cowork.consumers.subscription import DurableSubscription
from cowork.errors import CoworkError, PersistenceUnavailable
from cowork.events.envelope import EventEnvelope
from cowork.events.patterns import EventPattern
from cowork.ids import new_id
from cowork.service import utcnow
from cowork.tenancy import TenantScope
from cowork.transaction import TransactionContext, open_transaction
from cowork.workflows.actions import ActionContext
from cowork.workflows.builtins import BUILTIN_WORKFLOWS
from cowork.workflows.definition import ActionStep, WaitStep, WorkflowDefinition
from cowork.workflows.machine import Transition, before
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.core import Core

__all__ = ["CONSUMER_ID", "DefinitionCache", "WorkflowEngine", "start_instance"]

CONSUMER_ID = "cowork.workflows"
_log = logging.getLogger("cowork.workflows")
_CACHE_SECONDS = 2.0


class DefinitionCache:
    """The tenant's definitions: every version by (id, version), and the latest per id."""

    def __init__(self) -> None:
        self.by_version: dict[tuple[str, int], WorkflowDefinition] = {}
        self.latest: dict[str, WorkflowDefinition] = {}
        self._loaded_at = 0.0

    async def refresh(self, store: WorkflowStore, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < _CACHE_SECONDS:
            return
        by_version: dict[tuple[str, int], WorkflowDefinition] = {}
        latest: dict[str, WorkflowDefinition] = {}
        for definition in await store.definitions():
            by_version[(definition.workflow_id, definition.version)] = definition
            current = latest.get(definition.workflow_id)
            if current is None or definition.version > current.version:
                latest[definition.workflow_id] = definition
        self.by_version, self.latest = by_version, latest
        self._loaded_at = time.monotonic()

    async def get(self, store: WorkflowStore, workflow_id: str, version: int) -> WorkflowDefinition:
        found = self.by_version.get((workflow_id, version))
        if found is None:
            await self.refresh(store, force=True)
            found = self.by_version[(workflow_id, version)]
        return found


async def start_instance(
    ctx: TransactionContext,
    definition: WorkflowDefinition,
    *,
    start_key: str,
    correlation_key: str,
    event: EventEnvelope | None,
    input_data: Mapping[str, Any] | None,
    event_cursor: tuple[int, int],
    run_inline: bool,
) -> WorkflowInstance | None:
    """Create an instance (None if ``start_key`` was used) and record its start."""
    store = WorkflowStore(ctx.tx, ctx.scope)
    state: dict[str, Any] = {"input": dict(input_data or {}), "data": {}}
    if event is not None:
        state["trigger"] = {
            "eventId": event.event_id,
            "eventType": event.event_type,
            "position": event.position,
            "payload": event.payload,
        }
    instance = await store.insert_instance(
        instance_id=new_id(),
        definition=definition,
        correlation_key=correlation_key,
        start_key=start_key,
        state=state,
        status=InstanceStatus.RUNNING,
        wake_at=None if run_inline else utcnow(),
        event_cursor=event_cursor,
    )
    if instance is None:
        return None
    transition = Transition(ctx, definition, instance)
    transition.started(event)
    if run_inline and event is not None:
        await transition.advance(scan=False)
        transition.offer(event)
        await transition.advance(scan=False)
    return await transition.save()


class WorkflowEngine:
    def __init__(self, core: Core, scope: TenantScope, *, run: bool) -> None:
        self.core = core
        self.scope = scope
        self.cache = DefinitionCache()
        self._run = run
        self._stop = asyncio.Event()
        self._subscription: DurableSubscription | None = None
        self._executor: asyncio.Task[None] | None = None
        self._waiter = core.database.wakeups.waiter(scope.tenant_id)
        self.transitions = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            for definition in BUILTIN_WORKFLOWS:
                await store.register(definition)
            await self.cache.refresh(store, force=True)
        if not self._run:
            return
        self._subscription = await self.core.consumers.subscribe(
            self.scope,
            consumer_id=CONSUMER_ID,
            pattern=EventPattern.parse("*"),
            handler=self._on_event,
            start="beginning",
            transactional=True,
        )
        self._executor = asyncio.get_running_loop().create_task(
            self._execute_loop(), name=f"cowork-workflows-{self.scope.tenant_id}"
        )

    async def stop(self) -> None:
        self._stop.set()
        self._waiter.set()
        if self._subscription is not None:
            await self._subscription.stop()
        if self._executor is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._executor
        self._waiter.close()

    def wake(self) -> None:
        self._waiter.set()

    # -- event side -----------------------------------------------------------------------------
    async def _on_event(self, event: EventEnvelope, ctx: TransactionContext) -> None:
        store = WorkflowStore(ctx.tx, self.scope)
        await self.cache.refresh(store)
        for definition in list(self.cache.latest.values()):
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
        self, ctx: TransactionContext, store: WorkflowStore, event: EventEnvelope
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
                own = await self.cache.get(store, instance.workflow_id, instance.workflow_version)
                transition = Transition(ctx, own, instance)
                if transition.offer(event):
                    await transition.advance(scan=False)
                    await transition.save()
                    self.transitions += 1

    # -- executor side --------------------------------------------------------------------------
    async def _execute_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                worked = await self.execute_one()
                failures = 0
            except CoworkError as exc:
                failures += 1
                _log.warning("workflow executor (%s): %s", self.scope.tenant_id, exc)
                await self._pause(min(5.0, 0.1 * 2**failures))
                continue
            if worked:
                continue
            await self._pause(await self._idle_timeout())

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._waiter.wait(seconds)

    async def _idle_timeout(self) -> float:
        poll = 1.0 if self.core.database.backend == "postgresql" else 0.5
        async with open_transaction(self.core, self.scope, read_only=True) as ctx:
            wake = await WorkflowStore(ctx.tx, self.scope).next_wake()
        if wake is None:
            return poll
        return max(0.0, min(poll, (wake - utcnow()).total_seconds()))

    async def execute_one(self, now: datetime | None = None) -> bool:
        """Run one due transition; False when nothing was due."""
        try:
            async with open_transaction(self.core, self.scope) as ctx:
                store = WorkflowStore(ctx.tx, self.scope)
                instance = await store.claim_due(now or utcnow())
                if instance is None:
                    return False
                definition = await self.cache.get(
                    store, instance.workflow_id, instance.workflow_version
                )
                transition = Transition(ctx, definition, instance)
                step = (
                    definition.steps[instance.step_index]
                    if instance.step_index < len(definition.steps)
                    else None
                )
                if instance.status is InstanceStatus.RUNNING and isinstance(step, ActionStep):
                    await self._run_action(ctx, transition, step)
                elif instance.status is InstanceStatus.WAITING and isinstance(step, WaitStep):
                    await transition.timeout()
                else:
                    await transition.advance(scan=True)
                await transition.save()
                self.transitions += 1
        except _ActionFailed as failed:
            # The action's transaction rolled back (its writes with it); record the attempt.
            await self._record_failure(failed)
        return True

    async def _run_action(
        self, ctx: TransactionContext, transition: Transition, step: ActionStep
    ) -> None:
        instance = transition.current
        handler = self.core.actions.get(step.action)
        if handler is None:
            raise _ActionFailed(
                instance, f"no handler registered for action {step.action!r} in this worker"
            )
        action_ctx = ActionContext(
            instance=instance, step_name=step.name, attempt=instance.attempts + 1, tx=ctx
        )
        try:
            result = await handler(action_ctx)
        except PersistenceUnavailable:
            raise  # the database went away: not an attempt; the loop backs off
        except Exception as exc:
            raise _ActionFailed(instance, f"{type(exc).__name__}: {exc}") from exc
        if result:
            transition.merge_data(dict(result))
        transition.complete_step(detail={"attempt": action_ctx.attempt})
        await transition.advance(scan=True)

    async def _record_failure(self, failed: _ActionFailed) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            instance = await store.lock(failed.instance.instance_id)
            if instance is None or instance.row_version != failed.instance.row_version:
                return  # cancelled or moved on meanwhile
            definition = await self.cache.get(
                store, instance.workflow_id, instance.workflow_version
            )
            step = definition.steps[instance.step_index]
            assert isinstance(step, ActionStep)
            transition = Transition(ctx, definition, instance)
            attempt = instance.attempts + 1
            _log.warning(
                "workflow %s instance %s: action %r failed (attempt %d/%d): %s",
                instance.workflow_id,
                instance.instance_id,
                step.action,
                attempt,
                step.max_attempts,
                failed.message,
            )
            if attempt >= step.max_attempts:
                transition.retry_later(failed.message, 0)
                transition.finish_failed(
                    f"action {step.action!r} failed {attempt} times; last error: {failed.message}"
                )
            else:
                transition.retry_later(failed.message, backoff_for(step, attempt))
            await transition.save()


class _ActionFailed(Exception):
    def __init__(self, instance: WorkflowInstance, message: str) -> None:
        super().__init__(message)
        self.instance = instance
        self.message = message[:4000]


def backoff_for(step: ActionStep, attempt: int) -> float:
    return float(step.backoff_seconds * 2 ** max(0, attempt - 1))
