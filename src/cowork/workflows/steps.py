"""Running one claimed step of an instance, in one lane of the executor.

An action runs outside any transaction (it may await a model call for minutes) and its
outcome is checkpointed in one short transaction: the instance's compare-and-set (row version
and our lease), its history, its events and the writes the action registered with
``ctx.at_completion`` commit together, or nothing does; where the adapter writes a transition
in one statement and nothing must be read first, the checkpoint is that statement, sent in
one trip. A ``transactional=True`` step runs its handler inside the checkpoint's transaction.
A step that needs no action (a start to advance, a timer that fired) is one transaction.
When the next step is an action this process offers, the checkpoint keeps the lease and the
lane runs it at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cowork.errors import PersistenceUnavailable, StorageConflict
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.tenancy import TenantScope
from cowork.workflows.actions import ActionContext, ActionHandler, ActionRegistry
from cowork.workflows.attempts import Outcome, action_result, log_attempt, record_attempt
from cowork.workflows.definition import ActionStep, WaitStep, WorkflowDefinition
from cowork.workflows.definitions import DefinitionCache
from cowork.workflows.machine import DetachedContext, Transition, idempotency_key
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.starts import trigger_of
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["Lane", "StepRunner", "Superseded"]

_log = logging.getLogger("cowork.workflows")


@dataclass(eq=False)
class Lane:
    """One step running in the executor (the instance it runs may go on to its next step)."""

    instance_id: str
    task: asyncio.Task[None] | None = None
    lost: str | None = None  # why the running step was taken away (cancelled, lease lost)
    saving: bool = False  # checkpointing: the compare-and-set decides, not the watcher


class Superseded(Exception):
    """The instance changed or lost its lease while the step ran; nothing was written."""


class StepRunner:
    def __init__(
        self, core: Core, scope: TenantScope, cache: DefinitionCache, stopping: asyncio.Event
    ) -> None:
        self.core = core
        self.scope = scope
        self.cache = cache
        self.transitions = 0  # checkpoints committed
        self._stopping = stopping  # set when the executor stops: no next step is kept
        self._reported_missing: set[str] = set()
        # Checkpoints in one trip where the adapter writes a transition in one statement.
        self._one_trip = core.database.capabilities.one_statement_saves

    @property
    def _lease_seconds(self) -> float:
        return self.core.settings.workflow_lease_seconds

    async def run(self, lane: Lane, claimed: WorkflowInstance) -> WorkflowInstance | None:
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
        self, lane: Lane, instance: WorkflowInstance, step: ActionStep, handler: ActionHandler
    ) -> Outcome:
        """The action, outside any transaction (it may await a model call for minutes)."""
        attempt = instance.attempts + 1
        ctx = self._context(instance, step, attempt, transaction=None)
        try:
            async with asyncio.timeout(step.timeout_seconds):
                result = await handler(ctx)
            data = action_result(step.action, result)
        except TimeoutError:
            error = f"timed out after {step.timeout_seconds:g} s"
            log_attempt(instance, step, attempt, error)
            return Outcome(attempt, error=error)
        except (asyncio.CancelledError, PersistenceUnavailable):
            raise
        except Exception as exc:
            log_attempt(instance, step, attempt, exc)
            return Outcome(attempt, error=f"{type(exc).__name__}: {exc}"[:4000])
        if lane.lost is not None:  # the action swallowed its cancellation: still not ours
            raise Superseded
        return Outcome(attempt, data=data, completions=tuple(ctx.completions))

    async def _transactional_step(
        self,
        lane: Lane,
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
                    outcome = Outcome(attempt, data=action_result(step.action, result))
            except TimeoutError:
                outcome = Outcome(attempt, error=f"timed out after {step.timeout_seconds:g} s")
                log_attempt(claimed, step, attempt, outcome.error)
            except (asyncio.CancelledError, PersistenceUnavailable):
                raise
            except Exception as exc:
                log_attempt(claimed, step, attempt, exc)
                outcome = Outcome(attempt, error=f"{type(exc).__name__}: {exc}"[:4000])
            return await self._finish(tctx, claimed, definition, step, outcome)

    async def _checkpoint(
        self,
        lane: Lane,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: Outcome,
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
                    log_attempt(claimed, step, outcome.attempt, exc)
                    outcome = Outcome(outcome.attempt, error=f"{type(exc).__name__}: {exc}")
            return await self._finish(tctx, claimed, definition, step, outcome)

    async def _checkpoint_in_one_trip(
        self,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: Outcome,
    ) -> tuple[bool, WorkflowInstance | None]:
        """A checkpoint with nothing to read first (no completion writes, no wait to scan the
        log for) as one statement sent in one trip: the same compare-and-set, history and
        events, a third of a transaction's client cost. (False, None) when a wait comes next
        (it needs a transaction); else (True, the instance to run next here or None)."""
        detached = DetachedContext(self.core, self.scope)
        transition = Transition(detached, definition, claimed)
        await self._apply(transition, step, outcome, scan=False)
        if outcome.error is None and transition.current.status is InstanceStatus.WAITING:
            return False, None  # the wait scans the log for events that passed
        keep = self._runs_next(transition)
        if keep:
            transition.keep_lease(self.core.worker_id, self._lease_seconds)
        statement = transition.save_statement(expect_owner=self.core.worker_id)
        rows = await self.core.trips.run(
            statement.query, statement.params, tenant_id=self.scope.tenant_id
        )
        saved = await transition.saved(statement, rows[0] if rows else None)
        if saved is None:
            raise Superseded  # the compare-and-set failed: nothing was written
        self.core.committed(self.scope.tenant_id, detached.published)
        self.transitions += 1
        return True, (saved if keep else None)

    async def _finish(
        self,
        tctx: UnitOfWork,
        claimed: WorkflowInstance,
        definition: WorkflowDefinition,
        step: ActionStep,
        outcome: Outcome,
    ) -> WorkflowInstance | None:
        transition = Transition(tctx, definition, claimed)
        await self._apply(transition, step, outcome, scan=True)
        return await self._save(transition)

    async def _apply(
        self, transition: Transition, step: ActionStep, outcome: Outcome, *, scan: bool
    ) -> None:
        """The step's outcome on the instance: its result merged and the instance advanced
        (``scan``: a wait reached next may read the log), or the failed attempt recorded."""
        if outcome.error is None:
            transition.merge_data(outcome.data)
            transition.complete_step(
                detail={"attempt": outcome.attempt, "worker": self.core.worker_id}
            )
            await transition.advance(scan=scan)
        else:
            record_attempt(transition, step, outcome.attempt, outcome.error)

    async def _inline(
        self,
        lane: Lane,
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
            transition.keep_lease(self.core.worker_id, self._lease_seconds)
        try:
            saved = await transition.save(expect_owner=self.core.worker_id)
        except StorageConflict:
            raise Superseded from None
        self.transitions += 1
        return saved if keep else None

    def _runs_next(self, transition: Transition) -> bool:
        current = transition.current
        steps = transition.definition.steps
        if self._stopping.is_set() or current.status is not InstanceStatus.RUNNING:
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

    async def _await_worker(self, claimed: WorkflowInstance, step: ActionStep) -> None:
        """A claimed step whose action this process lacks (a row from before routing): hand
        it back with its action recorded, so that only workers offering it claim it."""
        async with open_transaction(self.core, self.scope, appends=False) as ctx:
            await WorkflowStore(ctx.tx, self.scope).await_worker(
                claimed.instance_id, self.core.worker_id, step.action
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

    async def quarantine(self, claimed: WorkflowInstance, error: str) -> None:
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
