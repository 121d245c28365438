"""The start of an instance: its first transition, and the trigger event kept in its state.

A start is one insert (the instance, its ``started`` history and event), idempotent on its
``start_key`` (``event:<id>`` for a trigger, ``manual:<key>`` for ``rt.workflows.start``).
A trigger's instance runs its inline steps and consumes the trigger itself in the same
transition (``run_inline``); a manual start is due at once for the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cowork.events.envelope import EventEnvelope
from cowork.ids import new_id
from cowork.kernel.unit import UnitOfWork
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.machine import Transition, TransitionContext
from cowork.workflows.records import InstanceStatus, WorkflowInstance

__all__ = ["start_instance", "starting", "trigger_of", "trigger_state"]


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
