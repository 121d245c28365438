"""The executor of one tenant's workflows: claims due steps and runs them, agent-sized.

- **Claims** lease due instances in one short committed transaction (``SKIP LOCKED``), only
  those whose pending action this process has registered for the tenant (or that need no
  action: timers, starts, waits). Lease expiry is the database's time. A process that runs no
  worker never claims; a step no live worker offers stays pending (``cowork status`` shows it,
  and a worker that sees it logs it once); a missing handler never fails an instance.
- **Lanes**: up to ``COWORK_WORKFLOW_CONCURRENCY`` steps run at once, each in its own lane
  (:mod:`cowork.workflows.steps`): the action runs outside any transaction, holding no
  connection while it awaits (a connection is needed only to claim and to checkpoint), and
  its result is checkpointed in its own short transaction. A crash re-runs only the step in
  flight, with the same idempotency key. When the next step is another action this process
  offers, the checkpoint keeps the lease and the same lane runs it at once.
- **A watcher** (:mod:`cowork.workflows.watcher`) renews the leases of running steps and
  checks twice a second that each is still ours and active: a cancelled instance, or a lease
  another worker took over, cancels the running action (it sees ``CancelledError``) and
  nothing of it is committed.
- **Timeouts**: ``ActionStep.timeout_seconds`` bounds each attempt; a timed-out attempt is a
  failed one (retried with backoff, then the instance fails: :mod:`cowork.workflows.attempts`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from cowork.errors import CoworkError, PersistenceUnavailable
from cowork.kernel.backoff import backoff_delay
from cowork.kernel.unit import open_transaction
from cowork.logs import describe_error
from cowork.tenancy import TenantScope
from cowork.workflows.actions import ActionRegistry
from cowork.workflows.attempts import backoff_for
from cowork.workflows.definitions import DefinitionCache
from cowork.workflows.records import WorkflowInstance
from cowork.workflows.steps import Lane, StepRunner, Superseded
from cowork.workflows.store import WorkflowStore
from cowork.workflows.watcher import LeaseWatcher

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["PENDING_WARN_SECONDS", "Executor", "backoff_for"]

_log = logging.getLogger("cowork.workflows")
_CLAIM_INTERVAL = 0.25  # while lanes are busy and nothing woke us, claims at most this often
_PENDING_CHECK_SECONDS = 30.0  # how often an idle executor looks for steps nobody takes
PENDING_WARN_SECONDS = 5.0  # a step due this long that nobody took is waiting for a worker
_FAILURE_PAUSE = 0.2  # after a failed dispatch, doubling per failure in a row
_FAILURE_PAUSE_MAX = 5.0


class Executor:
    def __init__(self, core: Core, scope: TenantScope, cache: DefinitionCache) -> None:
        self.core = core
        self.scope = scope
        self.cache = cache
        self.lanes = max(1, core.settings.workflow_concurrency)
        # The executor wakes for workflow events (starts and transitions here or in other
        # processes make instances due), not for every commit of the tenant.
        self.waiter = core.database.wakeups.waiter(scope.tenant_id, wants=_workflow_event)
        self._stop = asyncio.Event()
        self._running: dict[str, Lane] = {}
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
        self._steps = StepRunner(core, scope, cache, self._stop)
        self._watcher = LeaseWatcher(
            core, scope, self._running, self._has_running, self.cancel_running
        )

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

    @property
    def transitions(self) -> int:
        """Checkpoints this executor committed."""
        return self._steps.transitions

    async def run(self) -> None:
        """Dispatch due steps to lanes until stopped."""
        watcher = asyncio.get_running_loop().create_task(self._watcher.run())
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
                    await self._pause(
                        backoff_delay(failures, initial=_FAILURE_PAUSE, cap=_FAILURE_PAUSE_MAX)
                    )
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
        lane = Lane(instance.instance_id)
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

    # -- lanes ----------------------------------------------------------------------------------
    async def _run_lane(self, lane: Lane, claimed: WorkflowInstance) -> None:
        finished = False
        try:
            current: WorkflowInstance | None = claimed
            while current is not None:
                current = await self._steps.run(lane, current)
                if current is not None and self._stop.is_set():
                    self._unreleased.add(current.instance_id)  # kept for a next step: give back
                    current = None
            finished = True
        except Superseded:
            finished = True  # cancelled or taken over meanwhile: nothing of ours was written
        except asyncio.CancelledError:
            if lane.lost is not None:
                finished = True  # the instance is no longer ours: nothing to release
            else:
                raise  # shutdown: the lease is released below
        except PersistenceUnavailable as exc:
            self._failures.append(exc)
        except Exception as exc:
            await self._steps.quarantine(claimed, f"{type(exc).__name__}: {exc}")
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

    # -- steps nobody takes ---------------------------------------------------------------------
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
    async def _release_pending(self) -> None:
        """Give back the leases of steps that did not finish (kept and retried on failure:
        a lease is exclusive until it expires, for its owner too)."""
        with contextlib.suppress(CoworkError):
            async with open_transaction(self.core, self.scope, appends=False) as ctx:
                store = WorkflowStore(ctx.tx, self.scope)
                for instance_id in sorted(self._unreleased):
                    await store.release(instance_id, self.worker_id)
            self._unreleased.clear()


def _workflow_event(event_type: str) -> bool:
    return event_type.startswith("workflow:")
