"""The changes a transition makes to one instance, recorded as it goes.

Each move (a step completed, a jump, a retry, an end) changes the instance's state and records
a history row and a ``workflow:*`` event; :class:`~cowork.workflows.machine.Transition` drives
the moves and writes them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.log import PreparedEvent, prepare_event
from cowork.workflows.context import TransitionContext
from cowork.workflows.definition import ActionStep, WorkflowDefinition
from cowork.workflows.records import InstanceStatus, WorkflowInstance
from cowork.workflows.store import WorkflowStore

__all__ = ["InstanceChanges", "idempotency_key", "pending_action"]

_DONE_KEY = "_stepsDone"  # per action step name: how many times it completed (idempotency keys)


@dataclass
class InstanceChanges:
    """Changes to one instance: its new state, and the history rows and ``workflow:*`` events
    that record them (written by :meth:`~cowork.workflows.machine.Transition.save`)."""

    ctx: TransitionContext
    definition: WorkflowDefinition
    original: WorkflowInstance
    actor: str | None = None
    current: WorkflowInstance = field(init=False)
    _events: list[NewEvent] = field(default_factory=list)
    _history: list[dict[str, Any]] = field(default_factory=list)
    _lease: tuple[str, datetime] | None = None

    def __post_init__(self) -> None:
        self.current = self.original

    @property
    def store(self) -> WorkflowStore:
        return WorkflowStore(self.ctx.tx, self.ctx.scope)

    def _now(self) -> datetime:
        """The database's time (timers and deadlines never use a host's clock)."""
        return self.ctx.clock.now()

    def keep_lease(self, owner: str, seconds: float) -> None:
        """Save with the lease kept by ``owner`` (its executor runs the next step at once)
        instead of released."""
        self._lease = (owner, self._now() + timedelta(seconds=seconds))

    def _prepared(self, *, new: bool) -> WorkflowInstance:
        """The current state as it is written: its pending action, its lease (a start keeps
        the one it was given; a transition releases it unless kept), the write time."""
        current = self.current
        if new:
            lease = (current.lease_owner, current.lease_expires_at)
        else:
            lease = self._lease or (None, None)
        return replace(
            current,
            action=pending_action(self.definition, current),
            lease_owner=lease[0],
            lease_expires_at=lease[1],
            updated_at=self._now(),
        )

    # -- recording ------------------------------------------------------------------------------
    def _event(self, name: str, **extra: Any) -> None:
        inst = self.current
        payload: dict[str, Any] = {
            "workflowId": inst.workflow_id,
            "workflowVersion": inst.workflow_version,
            "instanceId": inst.instance_id,
            "status": inst.status.value,
            "correlationKey": inst.correlation_key,
            **extra,
        }
        trigger = inst.state.get("trigger") or {}
        for key in self.definition.correlation:
            value = (trigger.get("payload") or {}).get(key)
            if value is not None and key not in payload:
                payload[key] = value
        self._events.append(
            NewEvent(
                event_type=name,
                aggregate_type="workflow",
                aggregate_id=inst.instance_id,
                payload=payload,
                causation_id=extra.get("eventId"),
            )
        )

    def _record(self, kind: str, previous: InstanceStatus, **values: Any) -> None:
        self._history.append(
            {"kind": kind, "from_status": previous, "to_status": self.current.status, **values}
        )

    def _set(self, **changes: Any) -> None:
        self.current = replace(self.current, **changes)

    # -- moves ----------------------------------------------------------------------------------
    def started(self, event: EventEnvelope | None) -> None:
        self._record(
            "started",
            self.current.status,
            from_status=None,
            event_id=event.event_id if event else None,
            detail={"startKey": self.current.start_key},
        )
        self._event("workflow:started", eventId=event.event_id if event else None)

    def complete_step(
        self, *, event: EventEnvelope | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        inst = self.current
        step = self.definition.steps[inst.step_index]
        previous = inst.status
        changes: dict[str, Any] = {
            "step_index": inst.step_index + 1,
            "attempts": 0,
            "last_error": None,
        }
        if event is not None:
            changes["event_cursor"] = event.cursor
        if isinstance(step, ActionStep):
            done = dict(inst.state.get(_DONE_KEY) or {})
            done[step.name] = int(done.get(step.name, 0)) + 1
            changes["state"] = {**inst.state, _DONE_KEY: done}
        self._set(**changes)
        self._record(
            "step_completed",
            previous,
            step_index=inst.step_index,
            step_name=step.name,
            event_id=event.event_id if event else None,
            detail=detail or {},
        )
        self._event(
            "workflow:step:completed",
            step=step.name,
            stepIndex=inst.step_index,
            eventId=event.event_id if event else None,
        )

    def jump(self, target: str, *, kind: str, detail: dict[str, Any]) -> bool:
        """Go to a named step or end ('complete'/'fail'); False if the instance ended."""
        inst = self.current
        step = self.definition.steps[inst.step_index]
        self._record(
            kind, inst.status, step_index=inst.step_index, step_name=step.name, detail=detail
        )
        self._event(
            "workflow:step:completed", step=step.name, stepIndex=inst.step_index, outcome=kind
        )
        if target == "complete":
            self._set(step_index=len(self.definition.steps))
            self.finish_completed()
            return False
        if target == "fail":
            self.finish_failed(f"step {step.name!r} went to fail ({kind})")
            return False
        self._set(step_index=self.definition.index_of(target), attempts=0, last_error=None)
        return True

    def finish_completed(self) -> None:
        previous = self.current.status
        self._set(status=InstanceStatus.COMPLETED, ended_at=self._now(), wake_at=None)
        self._record("completed", previous)
        self._event("workflow:completed")

    def finish_failed(self, error: str, *, detail: dict[str, Any] | None = None) -> None:
        previous = self.current.status
        inst = self.current
        steps = self.definition.steps
        name = steps[inst.step_index].name if inst.step_index < len(steps) else None
        self._set(
            status=InstanceStatus.FAILED, ended_at=self._now(), wake_at=None, last_error=error
        )
        self._record(
            "failed",
            previous,
            step_index=inst.step_index,
            step_name=name,
            detail={"error": error, **(detail or {})},
        )
        self._event("workflow:failed", error=error, step=name)

    def cancel(self, reason: str | None) -> None:
        previous = self.current.status
        self._set(status=InstanceStatus.CANCELLED, ended_at=self._now(), wake_at=None)
        self._record("cancelled", previous, actor=self.actor, detail={"reason": reason})
        self._event("workflow:cancelled", reason=reason, actorId=self.actor)

    def retry_later(self, error: str, delay: float) -> None:
        inst = self.current
        step = self.definition.steps[inst.step_index]
        attempts = inst.attempts + 1
        self._set(
            attempts=attempts, last_error=error, wake_at=self._now() + timedelta(seconds=delay)
        )
        self._record(
            "step_retry",
            inst.status,
            step_index=inst.step_index,
            step_name=step.name,
            detail={"error": error, "attempt": attempts, "retryInSeconds": round(delay, 3)},
        )

    def merge_data(self, result: dict[str, Any]) -> None:
        state = dict(self.current.state)
        state["data"] = {**state.get("data", {}), **result}
        self._set(state=state)

    def _prepared_events(self) -> list[PreparedEvent]:
        """The engine's own events, sanitised with truncation on: their text is the
        library's (exception messages, already cut to 4000 characters by the executor, with
        the action name around them) and a cancel reason, and an event over the configured
        limits must not wedge the instance. Whatever is cut is listed in the event's
        metadata (``"truncated"``); the instance's ``last_error`` and history keep the text."""
        policy = self.ctx.truncating_event_policy
        return [prepare_event(e, policy=policy) for e in self._events]


def idempotency_key(instance: WorkflowInstance, step_name: str) -> str:
    """The key of the current visit of ``step_name``: the same for every attempt and takeover,
    a new one when a branch brings the instance back to the step after it completed."""
    done = instance.state.get(_DONE_KEY) or {}
    return f"{instance.instance_id}:{step_name}:{int(done.get(step_name, 0)) + 1}"


def pending_action(definition: WorkflowDefinition, instance: WorkflowInstance) -> str | None:
    """The action a running instance waits to run, or None (any worker may take it)."""
    steps = definition.steps
    if instance.status is InstanceStatus.RUNNING and instance.step_index < len(steps):
        step = steps[instance.step_index]
        if isinstance(step, ActionStep):
            return step.action
    return None
