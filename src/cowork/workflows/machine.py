"""The workflow state machine: every transition happens inside one transaction.

A transition loads the instance under its row lock, decides, then writes the instance
(compare-and-set on ``row_version``), appends history rows (a per-instance sequence) and the
``workflow:*`` events, all in the caller's transaction. Callers are the engine's durable
consumer (event-driven waits, starts; its checkpoint commits in the same transaction) and the
executor (actions, timers, resumption).

Each instance remembers the commit-order cursor of the last event it consumed. A wait step
entered by the executor first scans the log after that cursor, so an event that passed while
the instance was busy (in an action) is not missed; the consumer skips events at or before the
cursor, so no event is consumed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cowork.errors import StorageConflict
from cowork.events.envelope import EventEnvelope
from cowork.events.log import (
    Cursor,
    PendingAppend,
    PreparedEvent,
    appended_from,
    batch_json,
    read_events,
    submit_append,
)
from cowork.events.patterns import EventPattern
from cowork.kernel.backoff import backoff_delay
from cowork.storage.port import Row
from cowork.workflows.changes import InstanceChanges, idempotency_key, pending_action
from cowork.workflows.context import DetachedContext, TransitionContext
from cowork.workflows.definition import (
    ActionStep,
    BranchStep,
    CompleteStep,
    FailStep,
    WaitStep,
    WorkflowDefinition,
)
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.store import save_statement

__all__ = [
    "DetachedContext",
    "SaveStatement",
    "Transition",
    "TransitionContext",
    "before",
    "event_matches_wait",
    "idempotency_key",
    "pending_action",
]

_SCAN_PAGE = 500
_HORIZON_KEY = "_timeoutHorizon"
_HORIZON_CHECKS_KEY = "_timeoutChecks"
_MAX_INLINE_STEPS = 1000


def before(cursor: Cursor) -> Cursor:
    """The cursor just before ``cursor`` (so that event itself is still ahead)."""
    return (cursor[0], cursor[1] - 1)


def event_matches_wait(
    definition: WorkflowDefinition, step: WaitStep, instance: WorkflowInstance, event: EventEnvelope
) -> bool:
    if not EventPattern.parse(step.event).matches(event.event_type):
        return False
    if event.cursor <= instance.event_cursor:
        return False  # consumed already (or happened before this instance could see it)
    key = definition.correlation_key(event.payload)
    return key is not None and key == (instance.correlation_key or "")


@dataclass
class Transition(InstanceChanges):
    """Changes to one instance, driven through its inline steps and written by :meth:`save`
    in the caller's transaction."""

    _row_locked: bool = False

    # -- driving --------------------------------------------------------------------------------
    def offer(self, event: EventEnvelope) -> bool:
        """Consume ``event`` if the instance waits for it; returns True if it advanced."""
        inst = self.current
        if inst.status is not InstanceStatus.WAITING or inst.step_index >= len(
            self.definition.steps
        ):
            return False
        step = self.definition.steps[inst.step_index]
        if not isinstance(step, WaitStep) or not event_matches_wait(
            self.definition, step, inst, event
        ):
            return False
        self.complete_step(event=event)
        return True

    async def advance(self, *, scan: bool, now: datetime | None = None) -> None:
        """Run inline steps until the instance waits, needs an action, or ends."""
        for _ in range(_MAX_INLINE_STEPS):
            inst = self.current
            if not inst.status.active:
                return
            if inst.step_index >= len(self.definition.steps):
                self.finish_completed()
                return
            step = self.definition.steps[inst.step_index]
            moment = now or self._now()
            if isinstance(step, WaitStep):
                wake = None
                if step.timeout_seconds is not None:
                    wake = (
                        self.current.wake_at
                        if self._already_waiting(step)
                        else moment + timedelta(seconds=step.timeout_seconds)
                    )
                self._set(status=InstanceStatus.WAITING, wake_at=wake)
                if scan and await self._scan_for(step):
                    continue
                return
            if isinstance(step, ActionStep):
                self._set(
                    status=InstanceStatus.RUNNING,
                    wake_at=self.current.wake_at if self.current.attempts else moment,
                )
                return
            if isinstance(step, BranchStep):
                target = _branch_target(step, inst.state)
                if target is None:
                    self.complete_step(detail={"branch": "next"})
                    continue
                if not self.jump(target, kind="step_completed", detail={"branch": target}):
                    return
                continue
            if isinstance(step, CompleteStep):
                self.complete_step()
                self.finish_completed()
                return
            if isinstance(step, FailStep):
                self.finish_failed(step.reason)
                return
        self.finish_failed(f"more than {_MAX_INLINE_STEPS} steps without waiting (a branch loop?)")

    def _already_waiting(self, step: WaitStep) -> bool:
        return (
            self.original.status is InstanceStatus.WAITING
            and self.original.step_index == self.current.step_index
            and self.original.wake_at is not None
        )

    async def _scan_for(self, step: WaitStep) -> bool:
        """Look in the log for a matching event after the instance's cursor (visible now).

        The instance's row is locked first (once per transition, by an executor's transition;
        the engine's consumer holds it already): an event committed after this scan's
        snapshot is then handled by the consumer only once this transition has committed the
        wait (its row lock makes the consumer wait and re-read), so it is not missed."""
        if not self._row_locked:
            await self.store.lock(self.original.instance_id)
            self._row_locked = True
        tenant = self.ctx.scope.tenant_id
        cursor = self.current.event_cursor
        while True:
            page = await read_events(self.ctx.tx, tenant, cursor, _SCAN_PAGE)
            for event in page:
                if event_matches_wait(self.definition, step, self.current, event):
                    self.complete_step(event=event)
                    return True
            if len(page) < _SCAN_PAGE:
                return False
            cursor = page[-1].cursor

    async def timeout(self) -> None:
        """A wait step's deadline passed: take a matching event if one exists, else branch.

        An event committed before the deadline may not be readable yet on PostgreSQL (an older
        transaction still open holds the read horizon back). So the timeout is taken only once
        every transaction that had started when the deadline was noticed has ended; until then
        the instance re-checks shortly (the horizon to wait for is kept in its state)."""
        inst = self.current
        step = self.definition.steps[inst.step_index]
        assert isinstance(step, WaitStep)
        if await self._scan_for(step):
            self._forget_horizon()
            await self.advance(scan=True)
            return
        xmin, xmax = await self.store.horizon()
        needed = int(inst.state.get(_HORIZON_KEY, xmax))
        if xmin < needed:
            checks = int(inst.state.get(_HORIZON_CHECKS_KEY, 0)) + 1
            state = {**inst.state, _HORIZON_KEY: needed, _HORIZON_CHECKS_KEY: checks}
            delay = backoff_delay(checks, initial=0.04, cap=1.0)  # 0.04 s doubling to 1 s
            self._set(state=state, wake_at=self._now() + timedelta(seconds=delay))
            return
        self._forget_horizon()
        target = step.on_timeout or "fail"
        self._set(wake_at=None)
        if self.jump(target, kind="timed_out", detail={"timeoutSeconds": step.timeout_seconds}):
            await self.advance(scan=True)

    def _forget_horizon(self) -> None:
        hidden = (_HORIZON_KEY, _HORIZON_CHECKS_KEY)
        if any(key in self.current.state for key in hidden):
            self._set(state={k: v for k, v in self.current.state.items() if k not in hidden})

    # -- writing --------------------------------------------------------------------------------
    async def save(self, *, expect_owner: str | None = None) -> WorkflowInstance:
        """Write the instance (compare-and-set on its row version and, when given, on
        ``expect_owner``'s lease), its history and its events; StorageConflict (and nothing
        written) when the compare-and-set fails."""
        if self.ctx.capabilities.one_statement_saves:
            row = await self._save_in_one(new=False, expect_owner=expect_owner)
            if row is None:
                raise StorageConflict(
                    f"workflow instance {self.original.instance_id!r} changed concurrently "
                    f"(row version {self.original.row_version})"
                )
            return row
        update = await self.store.update(
            self.original, expect_owner=expect_owner, **_fields(self._prepared(new=False))
        )
        append = await self._save_records()
        saved = await update.saved()  # one round trip for the three statements
        await self._published(append)
        return saved

    async def save_new(self, *, at_head: bool = False) -> WorkflowInstance | None:
        """Insert a new instance in its current state, with its history and events; None (and
        nothing written) when its start key was used already. ``at_head``: its event cursor
        is the head of the log now."""
        if self.ctx.capabilities.one_statement_saves:
            return await self._save_in_one(new=True, at_head=at_head)
        saved = await self.store.insert_instance(self._prepared(new=True), at_head=at_head)
        if saved is None:
            self._history.clear()
            self._events.clear()
            return None
        await self._published(await self._save_records())
        return saved

    async def _save_in_one(
        self, *, new: bool, expect_owner: str | None = None, at_head: bool = False
    ) -> WorkflowInstance | None:
        """The instance, its history and its events in one statement (wf_save / wf_start)."""
        statement = self.save_statement(new=new, expect_owner=expect_owner, at_head=at_head)
        row = await self.ctx.tx.fetch_one(statement.query, statement.params)
        return await self.saved(statement, row)

    def save_statement(
        self, *, new: bool = False, expect_owner: str | None = None, at_head: bool = False
    ) -> SaveStatement:
        """The one statement that writes this transition (adapters with ``wf_save``), to run
        in a transaction (:meth:`save`) or in one trip; then :meth:`saved` reads its row."""
        entries = [{"actor": self.actor, **entry} for entry in self._history]
        prepared = self._prepared_events()
        self._history.clear()
        self._events.clear()
        current = self._prepared(new=new)
        if not new:  # the compare-and-set is on the stored row version
            current = replace(current, row_version=self.original.row_version)
        query, params = save_statement(
            self.ctx.scope,
            current,
            new=new,
            entries=entries,
            batch=batch_json(prepared),
            expect_owner=expect_owner,
            at_head=at_head,
        )
        return SaveStatement(query, params, prepared)

    async def saved(self, statement: SaveStatement, row: Row | None) -> WorkflowInstance | None:
        """The stored instance from the statement's row (None: not written), its new events
        recorded for dispatch after the commit."""
        if row is None:
            return None
        tenant = self.ctx.scope.tenant_id
        stored = row["appended"]
        if len(stored) != len(statement.events):  # an event id stored before: look it up
            appended = await appended_from(self.ctx.tx, tenant, statement.events, stored)
            self.ctx.record_published(appended.new)
        else:
            by_id = {item[0]: item for item in stored}
            envelopes = [
                event.envelope(tenant, _stored_row(by_id[event.event_id]))
                for event in statement.events
            ]
            self.ctx.record_published(envelopes)
        return WorkflowInstance.from_row(row)

    async def _save_records(self) -> PendingAppend:
        """Send the history rows and events (their results are read by ``_published``)."""
        await self.store.add_history_batch(
            self.current.instance_id, [{"actor": self.actor, **entry} for entry in self._history]
        )
        prepared = self._prepared_events()
        self._history.clear()
        self._events.clear()
        return await submit_append(self.ctx.tx, self.ctx.scope.tenant_id, prepared)

    async def _published(self, append: PendingAppend) -> None:
        self.ctx.record_published((await append.finish()).new)


@dataclass(frozen=True, slots=True)
class SaveStatement:
    query: str
    params: dict[str, Any]
    events: list[PreparedEvent]


def _stored_row(item: list[Any]) -> Row:
    """One ``appended`` item, ``[event_id, position, tx_id, recorded_at]``, as a row."""
    return {"position": item[1], "tx_id": item[2], "recorded_at": datetime.fromisoformat(item[3])}


def _fields(instance: WorkflowInstance) -> dict[str, Any]:
    return {
        "action": instance.action,
        "lease_owner": instance.lease_owner,
        "lease_expires_at": instance.lease_expires_at,
        "updated_at": instance.updated_at,
        "status": instance.status,
        "step_index": instance.step_index,
        "state": instance.state,
        "attempts": instance.attempts,
        "last_error": instance.last_error,
        "wake_at": instance.wake_at,
        "event_cursor": instance.event_cursor,
        "ended_at": instance.ended_at,
    }


def _lookup(state: dict[str, Any], path: str) -> Any:
    value: Any = state
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def _branch_target(step: BranchStep, state: dict[str, Any]) -> str | None:
    for case in step.cases:
        if _lookup(state, case.path) == case.equals:
            return case.goto
    return step.default
