"""The executor of one tenant's workflows: claims due steps and runs them, agent-sized.

- **Claims** lease due instances in one short committed transaction (``SKIP LOCKED``), only
  those whose pending action this process has registered for the tenant (or that need no
  action: timers, starts, waits). Lease expiry is the database's time. A process that runs no
  worker never claims; a step no live worker offers stays pending (``cowork status`` shows it,
  and a worker that sees it logs it once); a missing handler never fails an instance.
- **Actions** run outside any transaction, holding no connection while they await, up to
  ``COWORK_WORKFLOW_CONCURRENCY`` at once (a connection is needed only to claim and to
  checkpoint). Each step's result is checkpointed in its own short transaction: the instance's
  compare-and-set (row version and our lease), its history, its events and the writes the
  action registered with ``ctx.at_completion`` commit together, or nothing does. A crash
  re-runs only the step in flight, with the same idempotency key. When the next step is another
  action this process offers, the checkpoint keeps the lease and the same lane runs it at once.
- **A watcher** renews the leases of running steps (database time) and checks twice a second
  that each is still ours and active: a cancelled instance, or a lease another worker took
  over, cancels the running action (it sees ``CancelledError``) and nothing of it is committed.
- **Timeouts**: ``ActionStep.timeout_seconds`` bounds each attempt; a timed-out attempt is a
  failed one (retried with backoff, then the instance fails).
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

from cowork.errors import CoworkError, PersistenceUnavailable, StorageConflict, ValidationError
from cowork.events.envelope import EventEnvelope
from cowork.jsondoc import validate_document
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.logs import describe_error
from cowork.tenancy import TenantScope
from cowork.workflows.actions import ActionContext, ActionHandler, ActionRegistry, CompletionWrite
from cowork.workflows.cache import DefinitionCache
from cowork.workflows.definition import ActionStep, WaitStep, WorkflowDefinition
from cowork.workflows.machine import DetachedContext, Transition, idempotency_key
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["PENDING_WARN_SECONDS", "Executor", "backoff_for"]

_log = logging.getLogger("cowork.workflows")
_CLAIM_INTERVAL = 0.25  # while lanes are busy and nothing woke us, claims at most this often
_WATCH_INTERVAL = 0.5  # how often running steps are checked for a cancel or a lost lease
_PENDING_CHECK_SECONDS = 30.0  # how often an idle executor looks for steps nobody takes
PENDING_WARN_SECONDS = 5.0  # a step due this long that nobody took is waiting for a worker


@dataclass(eq=False)
class _Lane:
    instance_id: str
    task: asyncio.Task[None] | None = None
    lost: str | None = None  # why the running step was taken away (cancelled, lease lost)
    saving: bool = False  # checkpointing: the compare-and-set decides, not the watcher


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    completions: tuple[CompletionWrite, ...] = ()


class _Superseded(Exception):
    """The instance changed or lost its lease while the step ran; nothing was written."""


class Executor:
    def __init__(self, core: Core, scope: TenantScope, cache: DefinitionCache) -> None:
        self.core = core
        self.scope = scope
        self.cache = cache
        self.lanes = max(1, core.settings.workflow_concurrency)
        self.transitions = 0
        # The executor wakes for workflow events (starts and transitions here or in other
        # processes make instances due), not for every commit of the tenant.
        self.waiter = core.database.wakeups.waiter(scope.tenant_id, wants=_workflow_event)
        self._stop = asyncio.Event()
        self._running: dict[str, _Lane] = {}
        self._has_running = asyncio.Event()
        # Instances this process started already leased to this executor (see take_over):
        # run from here without a claim; leases whose release failed, to retry.
        self._handed: collections.deque[WorkflowInstance] = collections.deque()
        self._unreleased: set[str] = set()
        self._failures: list[Exception] = []
        self._maybe_due = True
        self._last_claim = 0.0
        self._last_pending_check = 0.0
        self._reported_pending: set[str] = set()
        self._reported_missing: set[str] = set()
        # Checkpoints in one trip where the adapter writes a transition in one statement.
        self._one_trip = core.database.has_query("wf_save")

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def worker_id(self) -> str:
        return self.core.worker_id

    @property
    def lease_seconds(self) -> float:
        return self.core.settings.workflow_lease_seconds

    @property
    def actions(self) -> tuple[str, ...]:
        return ActionRegistry.of(self.core).names(self.scope.tenant_id)

    async def run(self) -> None:
        """Dispatch due steps to lanes until stopped."""
        watcher = asyncio.get_running_loop().create_task(self._watch())
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    await self._dispatch()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    self._log_failure(exc)
                    await self._pause(min(5.0, 0.1 * 2**failures))
        finally:
            await self._finish_lanes()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def stop(self) -> None:
        self._stop.set()
        self.waiter.set()

    async def close(self) -> None:
        """After the loop ended: leases of handed-over instances not run yet go back."""
        self._unreleased.update(i.instance_id for i in self._handed)
        self._handed.clear()
        await self._release_pending()
        self.waiter.close()

    def wake(self) -> None:
        self._maybe_due = True
        self.waiter.set()

    def take_over(self, instance: WorkflowInstance) -> None:
        """Run ``instance``, committed leased to this executor, next (no claim round trip).
        If the process dies first, the lease expires and any worker claims the instance."""
        if instance.lease_owner == self.worker_id and instance.status.active:
            self._handed.append(instance)
        self.wake()

    def cancel_running(self, instance_id: str, reason: str) -> None:
        """The instance was cancelled (or lost) here: its running action, if any, stops."""
        lane = self._running.get(instance_id)
        if lane is not None and not lane.saving and lane.task is not None:
            lane.lost = reason
            lane.task.cancel()

    # -- dispatch -------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        if self._unreleased:
            await self._release_pending()
        if self.core.clock.stale:
            await self.core.clock.sync(self.core.database)
        if self._failures:
            raise self._failures.pop()
        free = self.lanes - len(self._running)
        batch: list[WorkflowInstance] = []
        while free > len(batch) and self._handed:
            instance = self._take_handed()
            if instance is not None:
                batch.append(instance)
        wanted = free - len(batch)
        # While steps run, claims are made at most every _CLAIM_INTERVAL (a stream of local
        # starts and of our own checkpoints' wake-ups must not cost a claim per step); an
        # idle executor claims at once when woken.
        interval_passed = time.monotonic() - self._last_claim > _CLAIM_INTERVAL
        if wanted > 0 and (interval_passed or (self._maybe_due and not self._running)):
            self._maybe_due = False
            self._last_claim = time.monotonic()
            claimed = await self._claim(wanted)
            self._maybe_due = len(claimed) == wanted  # a full batch: more may be due
            batch.extend(claimed)
        for instance in batch:
            # A step already running here whose lease had lapsed and was claimed again by
            # us: its lane goes on (the fresh lease is ours), no second lane.
            if instance.instance_id not in self._running:
                self._spawn(instance)
        if batch:
            return
        if self._running:
            await self._wait_for_work(_CLAIM_INTERVAL)
        else:
            await self._report_pending()
            await self._wait_for_work(await self._idle_timeout())

    def _spawn(self, instance: WorkflowInstance) -> None:
        lane = _Lane(instance.instance_id)
        self._running[instance.instance_id] = lane
        self._has_running.set()
        lane.task = asyncio.get_running_loop().create_task(
            self._run_lane(lane, instance), name=f"cowork-step-{instance.instance_id}"
        )

    async def _wait_for_work(self, timeout: float) -> None:
        """Until a wake-up, a free lane or ``timeout``."""
        lanes = {lane.task for lane in self._running.values() if lane.task is not None}
        waiting = asyncio.get_running_loop().create_task(self.waiter.wait(timeout))
        try:
            await asyncio.wait({waiting, *lanes}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                if waiting.done() and waiting.result():
                    self._maybe_due = True

    async def _pause(self, seconds: float) -> None:
        if seconds > 0 and await self.waiter.wait(seconds):
            self._maybe_due = True

    async def _claim(self, limit: int) -> list[WorkflowInstance]:
        async with open_transaction(self.core, self.scope, appends=False) as ctx:
            return await WorkflowStore(ctx.tx, self.scope).claim(
                self.worker_id,
                self.lease_seconds,
                at=self.core.clock.now(),
                limit=limit,
                actions=self.actions,
            )

    def _take_handed(self) -> WorkflowInstance | None:
        """The next instance a local start handed over, unless its lease is about to run
        out (then a claim takes it, like any other due instance)."""
        soon = self.core.clock.now() + timedelta(seconds=self.lease_seconds / 3)
        while self._handed:
            instance = self._handed.popleft()
            if instance.lease_expires_at is not None and instance.lease_expires_at > soon:
                return instance
        return None

    async def _idle_timeout(self) -> float:
        poll = 1.0
        async with open_transaction(self.core, self.scope, read_only=True) as ctx:
            wake = await WorkflowStore(ctx.tx, self.scope).next_wake(
                at=self.core.clock.now(), actions=self.actions
            )
        if wake is None:
            return poll
        return max(0.0, min(poll, (wake - self.core.clock.now()).total_seconds()))

    async def _finish_lanes(self) -> None:
        """On stop: running steps finish (the engine bounds this by the grace period); when
        this loop is cancelled they are cancelled too (nothing committed, leases released)."""
        tasks = [lane.task for lane in self._running.values() if lane.task is not None]
        if not tasks:
            return
        try:
            await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _log_failure(self, exc: BaseException) -> None:
        level = logging.WARNING if isinstance(exc, CoworkError) else logging.ERROR
        _log.log(
            level,
            "workflow executor (%s): %s",
            self.scope.tenant_id,
            describe_error(exc),
            exc_info=not isinstance(exc, CoworkError),
        )

    # -- one lane -------------------------------------------------------------------------------
    async def _run_lane(self, lane: _Lane, claimed: WorkflowInstance) -> None:
        finished = False
        try:
            current: WorkflowInstance | None = claimed
            while current is not None:
                current = await self._step(lane, current)
                if current is not None and self._stop.is_set():
                    self._unreleased.add(current.instance_id)  # kept for a next step: give back
                    current = None
            finished = True
        except _Superseded:
            finished = True  # cancelled or taken over meanwhile: nothing of ours was written
        except asyncio.CancelledError:
            if lane.lost is not None:
                finished = True  # the instance is no longer ours: nothing to release
            else:
                raise  # shutdown: the lease is released below
        except PersistenceUnavailable as exc:
            self._failures.append(exc)
        except Exception as exc:
            await self._quarantine(claimed, f"{type(exc).__name__}: {exc}")
            finished = True
        finally:
            self._running.pop(lane.instance_id, None)
            if not self._running:
                self._has_running.clear()
            if not finished:
                self._unreleased.add(lane.instance_id)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release_pending())
            self.waiter.set()  # a lane is free

    async def _step(self, lane: _Lane, claimed: WorkflowInstance) -> WorkflowInstance | None:
        """Run the instance's due step; returns it again (still leased to us) when its next
        step is an action this process runs at once, else None."""
        lane.saving = False
        definition = await self.cache.get(self.core, self.scope, claimed)
        steps = definition.steps
        step = steps[claimed.step_index] if claimed.step_index < len(steps) else None
        if claimed.status is InstanceStatus.RUNNING and isinstance(step, ActionStep):
            handler = ActionRegistry.of(self.core).get(self.scope.tenant_id, step.action)
            if handler is None:
                await self._await_worker(claimed, step)
                return None
            if step.transactional:
                return await self._transactional_step(lane, claimed, definition, step, handler)
            outcome = await self._run_action(lane, claimed, step, handler)
            return await self._checkpoint(lane, claimed, definition, step, outcome)
        return await self._inline(lane, claimed, definition, step)

    async def _run_action(
        self, lane: _Lane, instance: WorkflowInstance, step: ActionStep, handler: ActionHandler
    ) -> _Outcome:
        """The action, outside any transaction (it may await a model call for minutes)."""
        attempt = instance.attempts + 1
        ctx = self._context(instance, step, attempt, transaction=None)
        try:
            async with asyncio.timeout(step.timeout_seconds):
                result = await handler(ctx)
            data = _action_result(step.action, result)
        except TimeoutError:
            error = f"timed out after {step.timeout_seconds:g} s"
            self._log_attempt(instance, step, attempt, error)
            return _Outcome(attempt, error=error)
        except (asyncio.CancelledError, PersistenceUnavailable):
            raise
        except Exception as exc:
            self._log_attempt(instance, step, attempt, exc)
            return _Outcome(attempt, error=f"{type(exc).__name__}: {exc}"[:4000])
        if lane.lost is not None:  # the action swallowed its cancellation: still not ours
            raise _Superseded
        return _Outcome(attempt, data=data, completions=tuple(ctx.completions))

    async def _transactional_step(
        self,
        lane: _Lane,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        handler: ActionHandler,
    ) -> WorkflowInstance | None:
        """A ``transactional=True`` step: the handler runs inside the checkpoint's transaction
        (its writes commit exactly once, with the step)."""
        attempt = claimed.attempts + 1
        lane.saving = True
        async with open_transaction(self.core, self.scope) as tctx:
            try:
                async with tctx.nested() as action_tx:
                    ctx = self._context(claimed, step, attempt, transaction=action_tx)
                    async with asyncio.timeout(step.timeout_seconds):
                        result = await handler(ctx)
                        for write in ctx.completions:
                            await write(action_tx)
                    outcome = _Outcome(attempt, data=_action_result(step.action, result))
            except TimeoutError:
                outcome = _Outcome(attempt, error=f"timed out after {step.timeout_seconds:g} s")
                self._log_attempt(claimed, step, attempt, outcome.error)
            except (asyncio.CancelledError, PersistenceUnavailable):
                raise
            except Exception as exc:
                self._log_attempt(claimed, step, attempt, exc)
                outcome = _Outcome(attempt, error=f"{type(exc).__name__}: {exc}"[:4000])
            return await self._finish(tctx, claimed, definition, step, outcome)

    async def _checkpoint(
        self,
        lane: _Lane,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: _Outcome,
    ) -> WorkflowInstance | None:
        """The step's result in one short transaction, with its ``at_completion`` writes."""
        lane.saving = True
        if not outcome.completions and self._one_trip:
            handled, following = await self._checkpoint_in_one_trip(
                claimed, definition, step, outcome
            )
            if handled:
                return following
        async with open_transaction(self.core, self.scope) as tctx:
            if outcome.error is None and outcome.completions:
                try:
                    async with tctx.nested() as writes:
                        for write in outcome.completions:
                            await write(writes)
                except (asyncio.CancelledError, PersistenceUnavailable):
                    raise
                except Exception as exc:
                    self._log_attempt(claimed, step, outcome.attempt, exc)
                    outcome = _Outcome(outcome.attempt, error=f"{type(exc).__name__}: {exc}")
            return await self._finish(tctx, claimed, definition, step, outcome)

    async def _checkpoint_in_one_trip(
        self,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: _Outcome,
    ) -> tuple[bool, WorkflowInstance | None]:
        """A checkpoint with nothing to read first (no completion writes, no wait to scan the
        log for) as one statement sent in one trip: the same compare-and-set, history and
        events, a third of a transaction's client cost. (False, None) when a wait comes next
        (it needs a transaction); else (True, the instance to run next here or None)."""
        detached = DetachedContext(self.core, self.scope)
        transition = Transition(detached, definition, claimed)
        if outcome.error is None:
            transition.merge_data(outcome.data)
            transition.complete_step(detail={"attempt": outcome.attempt, "worker": self.worker_id})
            await transition.advance(scan=False)
            if transition.current.status is InstanceStatus.WAITING:
                return False, None  # the wait scans the log for events that passed
        else:
            record_attempt(transition, step, outcome.attempt, outcome.error)
        keep = self._runs_next(transition)
        if keep:
            transition.keep_lease(self.worker_id, self.lease_seconds)
        statement = transition.save_statement(expect_owner=self.worker_id)
        rows = await self.core.trips.run(
            statement.query, statement.params, tenant_id=self.scope.tenant_id
        )
        saved = await transition.saved(statement, rows[0] if rows else None)
        if saved is None:
            raise _Superseded  # the compare-and-set failed: nothing was written
        self.core.committed(self.scope.tenant_id, detached.published)
        self.transitions += 1
        return True, (saved if keep else None)

    async def _finish(
        self,
        tctx: UnitOfWork,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: _Outcome,
    ) -> WorkflowInstance | None:
        transition = Transition(tctx, definition, claimed)
        if outcome.error is None:
            transition.merge_data(outcome.data)
            transition.complete_step(detail={"attempt": outcome.attempt, "worker": self.worker_id})
            await transition.advance(scan=True)
        else:
            record_attempt(transition, step, outcome.attempt, outcome.error)
        return await self._save(transition)

    async def _inline(
        self,
        lane: _Lane,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: object,
    ) -> WorkflowInstance | None:
        """A step that needs no action: a start to advance, a timer that fired."""
        lane.saving = True
        async with open_transaction(self.core, self.scope) as tctx:
            transition = Transition(tctx, definition, claimed)
            if claimed.status is InstanceStatus.WAITING and isinstance(step, WaitStep):
                await transition.timeout()
            else:
                await transition.advance(scan=True)
            return await self._save(transition)

    async def _save(self, transition: Transition) -> WorkflowInstance | None:
        """Save with a compare-and-set on the row version and our lease; keep the lease when
        this process runs the next step at once."""
        keep = self._runs_next(transition)
        if keep:
            transition.keep_lease(self.worker_id, self.lease_seconds)
        try:
            saved = await transition.save(expect_owner=self.worker_id)
        except StorageConflict:
            raise _Superseded from None
        self.transitions += 1
        return saved if keep else None

    def _runs_next(self, transition: Transition) -> bool:
        current = transition.current
        steps = transition.definition.steps
        if self._stop.is_set() or current.status is not InstanceStatus.RUNNING:
            return False
        if current.step_index >= len(steps) or current.attempts:
            return False  # ended, or a retry that is due later
        step = steps[current.step_index]
        return (
            isinstance(step, ActionStep)
            and ActionRegistry.of(self.core).get(self.scope.tenant_id, step.action) is not None
        )

    def _context(
        self,
        instance: WorkflowInstance,
        step: ActionStep,
        attempt: int,
        *,
        transaction: UnitOfWork | None,
    ) -> ActionContext[UnitOfWork]:
        return ActionContext(
            instance=instance,
            step_name=step.name,
            attempt=attempt,
            idempotency_key=idempotency_key(instance, step.name),
            trigger=trigger_of(instance),
            transaction=transaction,
        )

    def _log_attempt(
        self, instance: WorkflowInstance, step: ActionStep, attempt: int, error: object
    ) -> None:
        _log.warning(
            "workflow %s instance %s: action %r failed (attempt %d/%d): %s",
            instance.workflow_id,
            instance.instance_id,
            step.action,
            attempt,
            step.max_attempts,
            describe_error(error) if isinstance(error, BaseException) else error,
        )

    # -- routing --------------------------------------------------------------------------------
    async def _await_worker(self, claimed: WorkflowInstance, step: ActionStep) -> None:
        """A claimed step whose action this process lacks (a row from before routing): hand
        it back with its action recorded, so that only workers offering it claim it."""
        async with open_transaction(self.core, self.scope, appends=False) as ctx:
            await WorkflowStore(ctx.tx, self.scope).await_worker(
                claimed.instance_id, self.worker_id, step.action
            )
        if step.action not in self._reported_missing:
            self._reported_missing.add(step.action)
            _log.warning(
                "workflow %s (tenant %s): step %r needs action %r, which this process has not "
                "registered; it waits for a worker that has",
                claimed.workflow_id,
                self.scope.tenant_id,
                step.name,
                step.action,
            )

    async def _report_pending(self) -> None:
        """Log, once per action, steps that have waited for a worker offering an action this
        process lacks (no live worker runs them until one registers it)."""
        if time.monotonic() - self._last_pending_check < _PENDING_CHECK_SECONDS:
            return
        self._last_pending_check = time.monotonic()
        async with open_transaction(self.core, self.scope, read_only=True) as ctx:
            pending = await WorkflowStore(ctx.tx, self.scope).pending_actions(
                PENDING_WARN_SECONDS, at=self.core.clock.now()
            )
        local = set(self.actions)
        for item in pending:
            if item.action in local or item.action in self._reported_pending:
                continue
            self._reported_pending.add(item.action)
            _log.warning(
                "tenant %s: %d workflow step(s) have waited %.0f s for a worker with action %r; "
                "no worker serving this tenant has registered it",
                self.scope.tenant_id,
                item.steps,
                item.waiting_seconds,
                item.action,
            )

    # -- leases ---------------------------------------------------------------------------------
    async def _watch(self) -> None:
        """Renew the leases of running steps and cancel the ones that are no longer ours."""
        last_beat = time.monotonic()
        while True:
            await self._has_running.wait()
            await asyncio.sleep(_WATCH_INTERVAL)
            ids = sorted(self._running)
            if not ids:
                continue
            beat = time.monotonic() - last_beat >= self.lease_seconds / 3
            try:
                async with open_transaction(
                    self.core, self.scope, read_only=not beat, appends=False
                ) as ctx:
                    store = WorkflowStore(ctx.tx, self.scope)
                    if beat:
                        held = await store.heartbeat(
                            ids, self.worker_id, self.lease_seconds, at=self.core.clock.now()
                        )
                    else:
                        held = await store.still_held(ids, self.worker_id)
            except CoworkError as exc:
                _log.warning("workflow leases (%s): %s", self.scope.tenant_id, exc)
                if time.monotonic() - last_beat > self.lease_seconds:
                    held = set()  # not renewed for a whole lease: others may have them now
                else:
                    continue
            if beat:
                last_beat = time.monotonic()
            for instance_id in ids:
                if instance_id not in held:
                    self.cancel_running(instance_id, "cancelled, ended or taken over")

    async def _release_pending(self) -> None:
        """Give back the leases of steps that did not finish (kept and retried on failure:
        a lease is exclusive until it expires, for its owner too)."""
        with contextlib.suppress(CoworkError):
            async with open_transaction(self.core, self.scope, appends=False) as ctx:
                store = WorkflowStore(ctx.tx, self.scope)
                for instance_id in sorted(self._unreleased):
                    await store.release(instance_id, self.worker_id)
            self._unreleased.clear()

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
            definition = await self.cache.get(self.core, self.scope, current)
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
                record_attempt(transition, limit, current.attempts + 1, error)
            else:
                transition.finish_failed(error)
            await transition.save()


def record_attempt(transition: Transition, step: ActionStep, attempt: int, error: str) -> None:
    """A failed attempt: retry later with backoff, or fail the instance after the last."""
    if attempt >= step.max_attempts:
        transition.finish_failed(
            f"action {step.action!r} failed {attempt} times; last error: {error}",
            detail={"attempt": attempt},
        )
    else:
        transition.retry_later(error, backoff_for(step, attempt))


def trigger_of(instance: WorkflowInstance) -> EventEnvelope | None:
    """The event that started ``instance`` (None for a manual start), as an envelope."""
    trigger = instance.state.get("trigger")
    if not isinstance(trigger, Mapping):
        return None
    occurred = trigger.get("occurredAt")
    recorded = trigger.get("recordedAt")
    created = instance.created_at
    return EventEnvelope(
        event_id=str(trigger.get("eventId")),
        tenant_id=instance.tenant_id,
        position=int(trigger.get("position") or 0),
        event_type=str(trigger.get("eventType")),
        aggregate_type=trigger.get("aggregateType"),
        aggregate_id=trigger.get("aggregateId"),
        payload=dict(trigger.get("payload") or {}),
        metadata=dict(trigger.get("metadata") or {}),
        occurred_at=datetime.fromisoformat(occurred) if occurred else created,
        recorded_at=datetime.fromisoformat(recorded) if recorded else created,
        correlation_id=trigger.get("correlationId"),
        causation_id=trigger.get("causationId"),
        tx_id=int(trigger.get("txId") or 0),
    )


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
    """Exponential backoff, capped at a day."""
    return float(min(86_400.0, step.backoff_seconds * 2 ** min(max(0, attempt - 1), 30)))
