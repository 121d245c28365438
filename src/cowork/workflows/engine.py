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
import collections
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cowork.consumers.subscription import DurableSubscription
from cowork.errors import (
    CoworkError,
    PersistenceUnavailable,
    StorageConflict,
    ValidationError,
)
from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.log import append_events, prepare_event
from cowork.events.patterns import EventPattern
from cowork.ids import new_id
from cowork.jsondoc import validate_document
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

__all__ = [
    "CONSUMER_ID",
    "DEFINITION_REGISTERED",
    "DefinitionCache",
    "WorkflowEngine",
    "register_definition",
    "start_instance",
]

CONSUMER_ID = "cowork.workflows"
DEFINITION_REGISTERED = "workflow:definition:registered"
_log = logging.getLogger("cowork.workflows")
_CACHE_SECONDS = 2.0
_CHAIN_BUDGET_SECONDS = 0.05
_CLAIM_INTERVAL = 0.25  # while steps run, claims from the database are made at most this often


class DefinitionCache:
    """The tenant's definitions: every version by (id, version), and the latest per id."""

    def __init__(self) -> None:
        self.by_version: dict[tuple[str, int], WorkflowDefinition] = {}
        self.latest: dict[str, WorkflowDefinition] = {}
        self.generation = 0
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
        self.generation += 1
        self._loaded_at = time.monotonic()

    async def get(self, store: WorkflowStore, workflow_id: str, version: int) -> WorkflowDefinition:
        found = self.by_version.get((workflow_id, version))
        if found is None:
            await self.refresh(store, force=True)
            found = self.by_version[(workflow_id, version)]
        return found


async def register_definition(
    ctx: TransactionContext, definition: WorkflowDefinition, *, announce: bool = True
) -> bool:
    """Store a definition version and, when it is new, announce it in the same transaction
    (built-ins are not announced: every engine registers and loads them when it starts)."""
    created = await WorkflowStore(ctx.tx, ctx.scope).register(definition)
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
            )
        )
        appended = await append_events(ctx.tx, ctx.scope.tenant_id, [prepared])
        ctx.record_published(appended.new)
    return created


async def start_instance(
    ctx: TransactionContext,
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
    state: dict[str, Any] = {"input": dict(input_data or {}), "data": {}}
    if event is not None:
        state["trigger"] = {
            "eventId": event.event_id,
            "eventType": event.event_type,
            "position": event.position,
            "payload": event.payload,
        }
    now = utcnow()
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
    return await transition.save_new(at_head=event_cursor is None)


class WorkflowEngine:
    def __init__(self, core: Core, scope: TenantScope, *, run: bool) -> None:
        self.core = core
        self.scope = scope
        self.cache = DefinitionCache()
        self._run = run
        self._stop = asyncio.Event()
        self._subscription: DurableSubscription | None = None
        self._executor: asyncio.Task[None] | None = None
        # The executor wakes for workflow events (starts and transitions here or in other
        # processes make instances due), not for every commit of the tenant.
        self._waiter = core.database.wakeups.waiter(scope.tenant_id, wants=_workflow_event)
        self._relevance: dict[str, bool] = {}
        self._relevance_generation = -1
        self.transitions = 0
        # Instances this process started already leased to this executor (see take_over):
        # run from here without a claim; leases whose release failed, to retry.
        self._handed: collections.deque[WorkflowInstance] = collections.deque()
        self._unreleased: set[str] = set()
        # Steps run at once (one SQLite connection serialises them anyway).
        settings = core.settings
        self._lanes = (
            min(settings.workflow_concurrency, settings.pool_max_size)
            if core.database.backend == "postgresql"
            else 1
        )
        self._lane_failures: list[Exception] = []

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            for definition in BUILTIN_WORKFLOWS:
                await register_definition(ctx, definition, announce=False)
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
            accepts=self._accepts,
        )
        self._executor = asyncio.get_running_loop().create_task(
            self._execute_loop(), name=f"cowork-workflows-{self.scope.tenant_id}"
        )

    async def stop(self) -> None:
        """Stop: a running step may finish within the grace period; after it, the step is
        cancelled (its transaction rolls back) and its lease released for another worker."""
        self._stop.set()
        self._waiter.set()
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
        # Leases of handed-over instances not run yet go back, so others need not wait them out.
        self._unreleased.update(i.instance_id for i in self._handed)
        self._handed.clear()
        await self._release_pending()
        self._waiter.close()

    def wake(self) -> None:
        self._waiter.set()

    @property
    def executes(self) -> bool:
        """Whether this engine's executor runs here (and so can take started instances)."""
        return self._run and self._executor is not None and not self._stop.is_set()

    def lease_for_start(self) -> tuple[str, float] | None:
        """The lease a start in this process gives its instance: this executor's, so that it
        runs the instance without claiming it (None when the executor does not run here)."""
        return (self.core.worker_id, self.lease_seconds) if self.executes else None

    def take_over(self, instance: WorkflowInstance) -> None:
        """Run ``instance``, committed leased to this executor, next (no claim round trip).
        If the process dies first, the lease expires and any worker claims the instance."""
        if instance.lease_owner == self.core.worker_id and instance.status.active:
            self._handed.append(instance)
        self._waiter.set()

    # -- event side -----------------------------------------------------------------------------
    def _accepts(self, event_type: str) -> bool:
        """Whether any definition could react to this event type (a trigger of a latest
        version or a wait of any version); registrations always pass, to refresh the cache."""
        if event_type == DEFINITION_REGISTERED:
            return True
        generation = self.cache.generation
        if generation != self._relevance_generation:
            self._relevance.clear()
            self._relevance_generation = generation
        relevant = self._relevance.get(event_type)
        if relevant is None:
            relevant = any(
                d.trigger and EventPattern.parse(d.trigger).matches(event_type)
                for d in self.cache.latest.values()
            ) or any(
                isinstance(s, WaitStep) and EventPattern.parse(s.event).matches(event_type)
                for d in self.cache.by_version.values()
                for s in d.steps
            )
            self._relevance[event_type] = relevant
        return relevant

    async def _on_event(self, event: EventEnvelope, ctx: TransactionContext) -> None:
        store = WorkflowStore(ctx.tx, self.scope)
        # A registration commits its event with the definition, so every trigger published
        # after it comes later in the log: refreshing here means none is handled stale.
        await self.cache.refresh(store, force=event.event_type == DEFINITION_REGISTERED)
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
        """Dispatch due instances to up to ``workflow_concurrency`` steps at once: instances
        handed over by starts in this process first, then claims from the database (made
        one at a time, and while steps run at most every _CLAIM_INTERVAL, so that a stream
        of local starts neither starves other work nor costs a claim query per step)."""
        failures = 0
        running: set[asyncio.Task[None]] = set()
        last_claim = 0.0
        try:
            while not self._stop.is_set():
                try:
                    last_claim = await self._dispatch(running, last_claim)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    self._log_failure(exc)
                    await self._pause(min(5.0, 0.1 * 2**failures))
        finally:
            await self._finish_lanes(running)

    async def _dispatch(self, running: set[asyncio.Task[None]], last_claim: float) -> float:
        """One round: start a step if a lane is free and work is due, else wait."""
        if self._unreleased:
            await self._release_pending()
        claimed: WorkflowInstance | None = None
        if len(running) < self._lanes:
            claimed = self._take_handed()
            if claimed is None and (not running or time.monotonic() - last_claim > _CLAIM_INTERVAL):
                last_claim = time.monotonic()
                claimed = await self._claim()
        if self._lane_failures:
            raise self._lane_failures.pop()
        if claimed is not None and self._lanes == 1:
            await self._run_lane(claimed)  # one lane: no task to spawn and wait for
        elif claimed is not None:
            task = asyncio.get_running_loop().create_task(self._run_lane(claimed))
            running.add(task)
            task.add_done_callback(running.discard)
        elif running:  # wait for a free lane or new work
            await self._wait_for_lane(running)
        else:
            await self._pause(await self._idle_timeout())
        if self._lane_failures:
            raise self._lane_failures.pop()
        return last_claim

    async def _claim(self, now: datetime | None = None) -> WorkflowInstance | None:
        async with open_transaction(self.core, self.scope, appends=False) as ctx:
            return await WorkflowStore(ctx.tx, self.scope).claim(
                self.core.worker_id, now or utcnow(), self.lease_seconds
            )

    def _take_handed(self) -> WorkflowInstance | None:
        """The next instance a local start handed over, unless its lease is about to run
        out (then a claim takes it, like any other due instance)."""
        soon = utcnow() + timedelta(seconds=self.lease_seconds / 3)
        while self._handed:
            instance = self._handed.popleft()
            if instance.lease_expires_at is not None and instance.lease_expires_at > soon:
                return instance
        return None

    async def _run_lane(self, claimed: WorkflowInstance) -> None:
        try:
            await self._run_claimed(claimed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by the dispatcher, which backs off
            self._lane_failures.append(exc)
        finally:
            self._waiter.set()  # a lane is free

    async def _wait_for_lane(self, running: set[asyncio.Task[None]]) -> None:
        waiting = asyncio.get_running_loop().create_task(self._waiter.wait(_CLAIM_INTERVAL))
        try:
            await asyncio.wait({waiting, *running}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()

    async def _finish_lanes(self, running: set[asyncio.Task[None]]) -> None:
        """On stop: running steps finish (stop() bounds this by the grace period); when this
        loop is cancelled they are cancelled too (rolled back, leases released)."""
        if not running:
            return
        try:
            await asyncio.wait(set(running))
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _log_failure(self, exc: BaseException) -> None:
        level = logging.WARNING if isinstance(exc, CoworkError) else logging.ERROR
        _log.log(
            level,
            "workflow executor (%s): %s",
            self.scope.tenant_id,
            exc,
            exc_info=not isinstance(exc, CoworkError),
        )

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

    @property
    def lease_seconds(self) -> float:
        return self.core.settings.workflow_lease_seconds

    async def execute_one(self, now: datetime | None = None) -> bool:
        """Lease one due instance and run its transition; False when nothing was due.

        The lease is taken and committed first, so the step itself (an action may take long)
        runs without holding a row lock or a transaction id; other workers skip leased
        instances, and a lease of a dead worker expires. The transition then commits the
        step's writes, the instance, its history and events together, with a compare-and-set
        on the instance's row version and this worker's lease (or writes nothing)."""
        if self._unreleased:
            await self._release_pending()
        claimed = self._take_handed() or await self._claim(now)
        if claimed is None:
            return False
        await self._run_claimed(claimed)
        return True

    async def _run_claimed(self, claimed: WorkflowInstance) -> None:
        """Run the transition of an instance leased to this worker."""
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(claimed.instance_id))
        finished = False
        try:
            await self._transition(claimed)
            finished = True
            self.transitions += 1
        except _Superseded:
            finished = True  # cancelled or taken over meanwhile: nothing of ours was written
        except (asyncio.CancelledError, PersistenceUnavailable):
            raise
        except Exception as exc:
            await self._quarantine(claimed, f"{type(exc).__name__}: {exc}")
            finished = True
        finally:
            heartbeat.cancel()
            if not finished:
                self._unreleased.add(claimed.instance_id)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release_pending())

    async def _heartbeat(self, instance_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(CoworkError):
                async with open_transaction(self.core, self.scope, appends=False) as ctx:
                    await WorkflowStore(ctx.tx, self.scope).heartbeat(
                        instance_id, self.core.worker_id, self.lease_seconds
                    )

    async def _release_pending(self) -> None:
        """Give back the leases of steps that did not finish (kept and retried on failure:
        a lease is exclusive until it expires, for its owner too)."""
        with contextlib.suppress(CoworkError):
            async with open_transaction(self.core, self.scope, appends=False) as ctx:
                store = WorkflowStore(ctx.tx, self.scope)
                for instance_id in sorted(self._unreleased):
                    await store.release(instance_id, self.core.worker_id)
            self._unreleased.clear()

    async def _transition(self, claimed: WorkflowInstance) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            definition = await self.cache.get(store, claimed.workflow_id, claimed.workflow_version)
            steps = definition.steps
            step = steps[claimed.step_index] if claimed.step_index < len(steps) else None
            outcome: _Outcome | None = None
            if claimed.status is InstanceStatus.RUNNING and isinstance(step, ActionStep):
                outcome = await self._run_action(ctx, claimed, step)
            # No lock up to here: the save's compare-and-set (row version and our lease)
            # takes the row lock and finds out whether the instance changed meanwhile
            # (cancelled, advanced by an event, taken over), and then nothing is written.
            current = claimed
            transition = Transition(ctx, definition, current)
            if outcome is not None and isinstance(step, ActionStep):
                started = time.monotonic()
                while True:
                    if outcome.error is not None:
                        self._record_attempt(transition, step, outcome.attempt, outcome.error)
                        break
                    transition.merge_data(outcome.data)
                    transition.complete_step(detail={"attempt": outcome.attempt})
                    await transition.advance(scan=True)
                    # Quick consecutive actions share this transaction (fewer round trips);
                    # a slow one gets its own lease, so the row is not held while it runs.
                    nxt = transition.current
                    step = steps[nxt.step_index] if nxt.step_index < len(steps) else None
                    if (
                        nxt.status is not InstanceStatus.RUNNING
                        or not isinstance(step, ActionStep)
                        or time.monotonic() - started > _CHAIN_BUDGET_SECONDS
                        or self._stop.is_set()
                    ):
                        break
                    outcome = await self._run_action(ctx, nxt, step)
            elif current.status is InstanceStatus.WAITING and isinstance(step, WaitStep):
                await transition.timeout()
            else:
                await transition.advance(scan=True)
            try:
                await transition.save(expect_owner=self.core.worker_id)
            except StorageConflict:
                raise _Superseded from None

    async def _run_action(
        self, ctx: TransactionContext, instance: WorkflowInstance, step: ActionStep
    ) -> _Outcome:
        attempt = instance.attempts + 1
        handler = self.core.actions.get(step.action)
        if handler is None:
            return _Outcome(attempt, error=f"no handler registered for action {step.action!r}")
        try:
            # A failing action's writes are undone and ours go on; the savepoint is only
            # taken if the action writes.
            async with ctx.nested() as action_tx:
                action_ctx = ActionContext(
                    instance=instance, step_name=step.name, attempt=attempt, tx=action_tx
                )
                result = await handler(action_ctx)
                data = _action_result(step.action, result)
        except (asyncio.CancelledError, PersistenceUnavailable):
            raise
        except Exception as exc:
            _log.warning(
                "workflow %s instance %s: action %r failed (attempt %d/%d): %s",
                instance.workflow_id,
                instance.instance_id,
                step.action,
                attempt,
                step.max_attempts,
                exc,
            )
            return _Outcome(attempt, error=f"{type(exc).__name__}: {exc}"[:4000])
        return _Outcome(attempt, data=data)

    @staticmethod
    def _record_attempt(transition: Transition, step: ActionStep, attempt: int, error: str) -> None:
        if attempt >= step.max_attempts:
            transition.finish_failed(
                f"action {step.action!r} failed {attempt} times; last error: {error}",
                detail={"attempt": attempt},
            )
        else:
            transition.retry_later(error, backoff_for(step, attempt))

    async def _quarantine(self, claimed: WorkflowInstance, error: str) -> None:
        """A transition failed outside user code: count it as an attempt, back off, and fail
        the instance after a few, so that one bad instance cannot starve the others."""
        _log.error(
            "workflow %s instance %s: transition failed: %s",
            claimed.workflow_id,
            claimed.instance_id,
            error,
        )
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            current = await store.lock(claimed.instance_id)
            if current is None or current.row_version != claimed.row_version:
                return
            definition = await self.cache.get(store, current.workflow_id, current.workflow_version)
            steps = definition.steps
            step = steps[current.step_index] if current.step_index < len(steps) else None
            limit = (
                step
                if isinstance(step, ActionStep)
                else ActionStep(
                    name="transition", action="transition", max_attempts=3, backoff_seconds=1.0
                )
            )
            transition = Transition(ctx, definition, current)
            if current.step_index < len(steps):
                self._record_attempt(transition, limit, current.attempts + 1, error)
            else:
                transition.finish_failed(error)
            await transition.save()


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Superseded(Exception):
    """The instance changed or lost its lease while the step ran; nothing was written."""


def _workflow_event(event_type: str) -> bool:
    return event_type.startswith("workflow:")


def _action_result(action: str, result: object) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise ValidationError(
            f"action {action!r} returned {type(result).__name__}; return a mapping or None"
        )
    data = dict(result)
    validate_document(data, what=f"result of action {action!r}", max_bytes=256 * 1024)
    return data


def backoff_for(step: ActionStep, attempt: int) -> float:
    return float(step.backoff_seconds * 2 ** max(0, attempt - 1))
