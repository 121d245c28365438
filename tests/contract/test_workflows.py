"""Workflow engine contract: versioned definitions, correlation,
idempotent starts, resume after restart, timers, retries, failure, cancel, atomic transitions.

Runs on both backends through ``database_url``. The embedded worker runs the engine in the
background (its durable consumer and its executor), so every condition is polled with a
deadline. On PostgreSQL a committed event becomes readable only once no older transaction in the
cluster is open, so the deadlines are generous while the tests stay fast when things work.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

import cowork
from cowork import (
    ActionContext,
    ActionStep,
    BranchCase,
    BranchStep,
    CompleteStep,
    EventEnvelope,
    FailStep,
    HistoryEntry,
    InstanceStatus,
    WaitStep,
    WorkflowDefinition,
    WorkflowInstance,
)
from tests.support.events import eventually

TENANT = "t1"
ENGINE_CONSUMER = "cowork.workflows"
DEADLINE = 10.0

ORDERS_V1 = WorkflowDefinition(
    workflow_id="orders",
    version=1,
    name="Orders",
    trigger="order:placed",
    correlation=("orderId",),
    steps=(
        WaitStep(name="placed", event="order:placed"),
        WaitStep(name="paid", event="order:paid"),
        CompleteStep(name="done"),
    ),
)
ORDERS_V2 = WorkflowDefinition(
    workflow_id="orders",
    version=2,
    name="Orders",
    trigger="order:placed",
    correlation=("orderId",),
    steps=(
        WaitStep(name="placed", event="order:placed"),
        WaitStep(name="paid", event="order:paid"),
        WaitStep(name="shipped", event="order:shipped"),
        CompleteStep(name="done"),
    ),
)


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id=TENANT) as runtime:
        yield runtime


# -- helpers --------------------------------------------------------------------------------------
async def events_of(rt: cowork.Runtime, event_type: str | None = None) -> list[EventEnvelope]:
    return [
        e
        async for e in rt.events.iterate(page_size=1000)
        if event_type is None or e.event_type == event_type
    ]


async def find_event(
    rt: cowork.Runtime, event_type: str, *, timeout: float = DEADLINE, **payload: Any
) -> EventEnvelope:
    """The one readable event of ``event_type`` whose payload has the given values."""

    async def found() -> EventEnvelope | None:
        hits = [
            e
            for e in await events_of(rt, event_type)
            if all(e.payload.get(k) == v for k, v in payload.items())
        ]
        assert len(hits) <= 1, f"more than one {event_type} with {payload}: {hits}"
        return hits[0] if hits else None

    event: EventEnvelope = await eventually(
        found, timeout=timeout, what=f"a readable {event_type} event with {payload}"
    )
    return event


async def started_by(
    rt: cowork.Runtime, workflow_id: str, event_id: str, *, timeout: float = DEADLINE
) -> WorkflowInstance:
    """The instance the trigger event ``event_id`` started (polled)."""
    instance: WorkflowInstance = await eventually(
        lambda: rt.workflows.for_trigger(workflow_id, event_id),
        timeout=timeout,
        what=f"a {workflow_id} instance for trigger {event_id}",
    )
    return instance


async def until(
    rt: cowork.Runtime,
    instance_id: str,
    predicate: Callable[[WorkflowInstance], bool],
    *,
    timeout: float = DEADLINE,
    what: str = "the instance to change",
) -> WorkflowInstance:
    async def check() -> WorkflowInstance | None:
        instance = await rt.workflows.get(instance_id)
        assert instance is not None
        return instance if predicate(instance) else None

    instance: WorkflowInstance = await eventually(check, timeout=timeout, what=what)
    return instance


def waiting_at(index: int) -> Callable[[WorkflowInstance], bool]:
    return lambda i: i.status is InstanceStatus.WAITING and i.step_index == index


def kinds(history: list[HistoryEntry]) -> list[tuple[str, str | None]]:
    return [(h.kind, h.step_name) for h in history]


def completed_steps(history: list[HistoryEntry]) -> list[str | None]:
    return [h.step_name for h in history if h.kind == "step_completed"]


async def workflow_events(rt: cowork.Runtime, instance_id: str) -> list[EventEnvelope]:
    return [
        e
        for e in await events_of(rt)
        if e.event_type.startswith("workflow:") and e.payload.get("instanceId") == instance_id
    ]


# -- definitions ----------------------------------------------------------------------------------
async def test_builtins_are_listed_right_after_open(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id="fresh", worker=False) as rt:
        listed = {(d.workflow_id, d.version): d for d in await rt.workflows.definitions()}
        other = {
            (d.workflow_id, d.version) for d in await rt.for_tenant("t9").workflows.definitions()
        }
    expected = {("workspace-provisioning", 2), ("blackboard-entry-review-publish", 2)}
    assert expected <= set(listed)
    assert expected <= other
    provisioning = listed[("workspace-provisioning", 2)]
    assert provisioning.trigger == "workspace:created"
    assert provisioning.correlation == ("workspaceId",)
    assert [s.name for s in provisioning.steps] == ["created", "member-added", "artifact-updated"]
    review = listed[("blackboard-entry-review-publish", 2)]
    assert review.trigger == "blackboard:entry:created"
    assert review.correlation == ("workspaceId", "artifactKey")
    assert [s.name for s in review.steps] == ["created", "feedback-added", "entry-updated"]
    # Their waits time out (a week) instead of piling up forever.
    for definition in (provisioning, review):
        waits = [s for s in definition.steps[1:] if isinstance(s, WaitStep)]
        assert waits and all(
            w.timeout_seconds == 7 * 86_400 and w.on_timeout == "fail" for w in waits
        )


async def test_definitions_are_immutable_and_running_instances_keep_their_version(
    rt: cowork.Runtime,
) -> None:
    assert await rt.workflows.register(ORDERS_V1) is True
    assert await rt.workflows.register(ORDERS_V1) is False, "identical content is a no-op"
    assert await rt.workflows.register(WorkflowDefinition.from_json(ORDERS_V1.to_json())) is False
    with pytest.raises(cowork.DefinitionConflict):
        await rt.workflows.register(replace(ORDERS_V1, steps=ORDERS_V1.steps[1:]))
    with pytest.raises(cowork.DefinitionConflict):
        await rt.workflows.register(replace(ORDERS_V1, trigger="order:created"))
    stored = [d for d in await rt.workflows.definitions() if d.workflow_id == "orders"]
    assert stored == [ORDERS_V1], "a rejected registration changed nothing"

    placed1 = await rt.events.publish("order:placed", {"orderId": "o1"})
    first = await started_by(rt, "orders", placed1.event_id)
    first = await until(rt, first.instance_id, waiting_at(1), what="o1 to wait for payment")
    assert first.workflow_version == 1

    assert await rt.workflows.register(ORDERS_V2) is True
    with pytest.raises(cowork.DefinitionConflict):
        await rt.workflows.register(replace(ORDERS_V2, name="Orders renamed"))
    placed2 = await rt.events.publish("order:placed", {"orderId": "o2"})
    second = await started_by(rt, "orders", placed2.event_id)
    second = await until(rt, second.instance_id, waiting_at(1), what="o2 to wait for payment")
    assert second.workflow_version == 2, "a new trigger starts the latest version"
    instances = await rt.workflows.list(workflow_id="orders")
    assert sorted(i.instance_id for i in instances) == sorted(
        [first.instance_id, second.instance_id]
    ), "one instance per trigger, not one per registered version"

    # The v1 instance, started before v2 existed, advances with v1's steps (no "shipped").
    await rt.events.publish("order:paid", {"orderId": "o1"})
    done1 = await rt.workflows.wait(first.instance_id, timeout=DEADLINE)
    assert done1.status is InstanceStatus.COMPLETED
    assert done1.workflow_version == 1
    assert completed_steps(await rt.workflows.history(first.instance_id)) == [
        "placed",
        "paid",
        "done",
    ]

    # The v2 instance needs v2's extra step.
    await rt.events.publish("order:paid", {"orderId": "o2"})
    await until(rt, second.instance_id, waiting_at(2), what="o2 to wait for shipping")
    await rt.events.publish("order:shipped", {"orderId": "o2"})
    done2 = await rt.workflows.wait(second.instance_id, timeout=DEADLINE)
    assert done2.status is InstanceStatus.COMPLETED and done2.workflow_version == 2
    assert completed_steps(await rt.workflows.history(second.instance_id)) == [
        "placed",
        "paid",
        "shipped",
        "done",
    ]
    versions = sorted(
        d.version for d in await rt.workflows.definitions() if d.workflow_id == "orders"
    )
    assert versions == [1, 2]


# -- correlation ----------------------------------------------------------------------------------
async def _provisioning(rt: cowork.Runtime, workspace_id: str) -> WorkflowInstance:
    created = await find_event(rt, "workspace:created", workspaceId=workspace_id)
    instance = await started_by(rt, "workspace-provisioning", created.event_id)
    return await until(rt, instance.instance_id, waiting_at(1), what="provisioning to start")


async def _review(rt: cowork.Runtime, workspace_id: str, key: str) -> WorkflowInstance:
    created = await find_event(
        rt, "blackboard:entry:created", workspaceId=workspace_id, artifactKey=key
    )
    instance = await started_by(rt, "blackboard-entry-review-publish", created.event_id)
    return await until(rt, instance.instance_id, waiting_at(1), what="review to start")


async def test_events_advance_only_the_instances_they_correlate_with(rt: cowork.Runtime) -> None:
    ws_a = await rt.workspaces.create(name="A", actor="alice", members=[])
    ws_b = await rt.workspaces.create(name="B", actor="bob", members=[])
    a_id, b_id = ws_a.workspace_id, ws_b.workspace_id
    prov_a = await _provisioning(rt, a_id)
    prov_b = await _provisioning(rt, b_id)
    assert prov_a.instance_id != prov_b.instance_id
    history_a = await rt.workflows.history(prov_a.instance_id)

    # The same artifact key in both workspaces, and a second key in B.
    await rt.blackboard.put(a_id, "doc", {"v": "a1"}, actor="agent")
    review_a = await _review(rt, a_id, "doc")
    await rt.workspaces.add_member(b_id, "m1")
    await rt.blackboard.put(b_id, "doc", {"v": "b1"}, actor="agent")
    await rt.blackboard.put(b_id, "notes", {"v": "n1"}, actor="agent")
    review_b = await _review(rt, b_id, "doc")
    notes_b = await _review(rt, b_id, "notes")

    done_b = await rt.workflows.wait(prov_b.instance_id, timeout=DEADLINE)
    assert done_b.status is InstanceStatus.COMPLETED
    a_now = await rt.workflows.get(prov_a.instance_id)
    assert a_now is not None and a_now.status is InstanceStatus.WAITING
    assert a_now.step_index == 1, "B's member and artifact events moved A's instance"
    assert a_now.row_version == prov_a.row_version
    assert await rt.workflows.history(prov_a.instance_id) == history_a

    # Feedback on B/notes advances only B/notes; then B/doc is reviewed and revised.
    await rt.blackboard.add_feedback(b_id, actor="rev", body="tighten", artifact_key="notes")
    await until(rt, notes_b.instance_id, waiting_at(2), what="B/notes to see its feedback")
    await rt.blackboard.add_feedback(b_id, actor="rev", body="ok?", artifact_key="doc")
    await until(rt, review_b.instance_id, waiting_at(2), what="B/doc to see its feedback")
    await rt.blackboard.put(b_id, "doc", {"v": "b2"}, actor="agent")
    done_review_b = await rt.workflows.wait(review_b.instance_id, timeout=DEADLINE)
    assert done_review_b.status is InstanceStatus.COMPLETED

    review_a_now = await rt.workflows.get(review_a.instance_id)
    notes_b_now = await rt.workflows.get(notes_b.instance_id)
    assert review_a_now is not None and notes_b_now is not None
    assert (review_a_now.status, review_a_now.step_index) == (InstanceStatus.WAITING, 1), (
        "feedback and an update on B/doc moved A/doc's review"
    )
    assert (notes_b_now.status, notes_b_now.step_index) == (InstanceStatus.WAITING, 2), (
        "B/doc's update moved B/notes' review"
    )
    a_final = await rt.workflows.get(prov_a.instance_id)
    assert a_final is not None and (a_final.status, a_final.step_index) == (
        InstanceStatus.WAITING,
        1,
    )


# -- idempotent starts ----------------------------------------------------------------------------
async def _snapshot(rt: cowork.Runtime) -> dict[str, tuple[WorkflowInstance, list[HistoryEntry]]]:
    return {
        i.instance_id: (i, await rt.workflows.history(i.instance_id))
        for i in await rt.workflows.list(limit=1000)
    }


async def test_redelivering_every_event_starts_nothing_twice(rt: cowork.Runtime) -> None:
    assert await rt.workflows.register(ORDERS_V1)
    ws1 = await rt.workspaces.create(name="one", actor="alice", members=[])
    ws2 = await rt.workspaces.create(name="two", actor="alice", members=[])
    await rt.workspaces.add_member(ws1.workspace_id, "m1")
    await rt.blackboard.put(ws1.workspace_id, "doc", {"v": 1}, actor="agent")
    await rt.workspaces.add_member(ws2.workspace_id, "m2")
    await rt.events.publish("order:placed", {"orderId": "o1"})
    order = await started_by(
        rt, "orders", (await find_event(rt, "order:placed", orderId="o1")).event_id
    )
    await until(rt, order.instance_id, waiting_at(1))
    prov1 = await _provisioning_any(rt, ws1.workspace_id)
    prov2 = await _provisioning_any(rt, ws2.workspace_id)
    await rt.workflows.wait(prov1.instance_id, timeout=DEADLINE)
    await until(rt, prov2.instance_id, waiting_at(2))
    review = await _review_any(rt, ws1.workspace_id, "doc")
    await until(rt, review.instance_id, waiting_at(1))
    before = await _snapshot(rt)
    assert len(before) == 4
    started_before = 4
    await eventually(
        lambda: _count(rt, "workflow:started", started_before),
        timeout=DEADLINE,
        what="four readable workflow:started events",
    )

    await rt.consumers.reset(ENGINE_CONSUMER, to="beginning")
    # A new trigger after the reset: the consumer reaches it only after redelivering everything
    # before it (in order, with its checkpoint fenced by the reset's generation).
    ws3 = await rt.workspaces.create(name="three", actor="alice", members=[])
    created3 = await find_event(rt, "workspace:created", workspaceId=ws3.workspace_id)
    prov3 = await started_by(rt, "workspace-provisioning", created3.event_id)

    async def consumed_past_barrier() -> bool:
        [info] = [c for c in await rt.consumers.list() if c.consumer_id == ENGINE_CONSUMER]
        return info.last_position >= created3.position

    await eventually(consumed_past_barrier, timeout=DEADLINE, what="the engine to catch up")
    after = await _snapshot(rt)
    assert set(after) == set(before) | {prov3.instance_id}
    for instance_id, (instance, history) in before.items():
        assert after[instance_id][1] == history, f"redelivery changed {instance_id}'s history"
        assert after[instance_id][0].row_version == instance.row_version
        assert after[instance_id][0].status == instance.status
    await eventually(
        lambda: _count(rt, "workflow:started", started_before + 1),
        timeout=DEADLINE,
        what="one more workflow:started event",
    )
    await asyncio.sleep(0.1)
    assert await _count(rt, "workflow:started", started_before + 1)
    per_trigger = Counter(i.start_key for i, _ in after.values())
    assert set(per_trigger.values()) == {1}


async def _count(rt: cowork.Runtime, event_type: str, expected: int) -> bool:
    found = len(await events_of(rt, event_type))
    assert found <= expected, f"{found} {event_type} events, expected {expected}"
    return found == expected


async def _provisioning_any(rt: cowork.Runtime, workspace_id: str) -> WorkflowInstance:
    created = await find_event(rt, "workspace:created", workspaceId=workspace_id)
    return await started_by(rt, "workspace-provisioning", created.event_id)


async def _review_any(rt: cowork.Runtime, workspace_id: str, key: str) -> WorkflowInstance:
    created = await find_event(
        rt, "blackboard:entry:created", workspaceId=workspace_id, artifactKey=key
    )
    return await started_by(rt, "blackboard-entry-review-publish", created.event_id)


async def test_the_same_event_id_published_twice_starts_one_instance(rt: cowork.Runtime) -> None:
    assert await rt.workflows.register(ORDERS_V1)
    first = await rt.events.publish("order:placed", {"orderId": "o7"}, event_id="evt-o7")
    again = await rt.events.publish("order:placed", {"orderId": "o7"}, event_id="evt-o7")
    assert again.event_id == first.event_id and again.position == first.position
    instance = await started_by(rt, "orders", "evt-o7")
    # A different event (another id, same payload) is another trigger: its own instance.
    other = await rt.events.publish("order:placed", {"orderId": "o8"})
    other_instance = await started_by(rt, "orders", other.event_id)
    await until(rt, other_instance.instance_id, waiting_at(1))
    instances = await rt.workflows.list(workflow_id="orders")
    assert sorted(i.instance_id for i in instances) == sorted(
        [instance.instance_id, other_instance.instance_id]
    )
    assert len([e for e in await events_of(rt, "order:placed") if e.event_id == "evt-o7"]) == 1


async def test_manual_start_is_idempotent_per_key_and_validates(rt: cowork.Runtime) -> None:
    assert await rt.workflows.register(ORDERS_V1)
    one = await rt.workflows.start("orders", input={"orderId": "m1"}, idempotency_key="req-1")
    two = await rt.workflows.start("orders", input={"orderId": "m1"}, idempotency_key="req-1")
    assert one.instance_id == two.instance_id
    assert one.workflow_version == 1 and one.state["input"] == {"orderId": "m1"}
    other = await rt.workflows.start("orders", input={"orderId": "m1"}, idempotency_key="req-2")
    assert other.instance_id != one.instance_id
    unkeyed = await rt.workflows.start("orders", input={"orderId": "m1"})
    assert unkeyed.instance_id not in (one.instance_id, other.instance_id)
    assert len(await rt.workflows.list(workflow_id="orders")) == 3
    history = await rt.workflows.history(one.instance_id)
    assert [h.kind for h in history][:1] == ["started"] and history[0].seq == 1
    assert len([h for h in history if h.kind == "started"]) == 1

    with pytest.raises(cowork.NotFound):
        await rt.workflows.start("no-such-workflow", input={"orderId": "x"})
    with pytest.raises(cowork.NotFound):
        await rt.workflows.start("orders", input={"orderId": "x"}, version=9)
    with pytest.raises(cowork.ValidationError, match="orderId"):
        await rt.workflows.start("orders", input={"order": "x"})
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.start("orders", input={"orderId": {"nested": 1}})
    assert len(await rt.workflows.list(workflow_id="orders")) == 3, "rejected starts left nothing"
    assert await rt.workflows.get("no-such-instance") is None
    with pytest.raises(cowork.NotFound):
        await rt.workflows.history("no-such-instance")

    # The manual instance waits for its correlated events like any other.
    first = await until(rt, one.instance_id, waiting_at(0), what="the manual start to wait")
    assert first.status is InstanceStatus.WAITING
    counts = await rt.workflows.counts()
    assert counts.get("waiting", 0) + counts.get("running", 0) >= 3


# -- end to end through the domain, across a restart -----------------------------------------------
async def test_workspace_provisioning_end_to_end_across_a_restart(database_url: str) -> None:
    rt = await cowork.open(database_url, tenant_id=TENANT)
    try:
        ws = await rt.workspaces.create(name="Launch", actor="alice", project_id="p1", members=[])
        wid = ws.workspace_id
        created = await find_event(rt, "workspace:created", workspaceId=wid)
        instance = await started_by(rt, "workspace-provisioning", created.event_id)
        await rt.workspaces.add_member(wid, "bob", actor="alice")
        member = await find_event(rt, "workspace:member:added", workspaceId=wid)
        instance = await until(rt, instance.instance_id, waiting_at(2), what="member step")
    finally:
        await rt.close()
    assert rt.closed

    async with await cowork.open(database_url, tenant_id=TENANT) as rt2:
        await rt2.blackboard.put(wid, "readme", {"text": "hello"}, actor="agent")
        artifact = await find_event(rt2, "workspace:artifact:updated", workspaceId=wid)
        done = await rt2.workflows.wait(instance.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED and done.ended_at is not None
        assert await rt2.workflows.for_trigger("workspace-provisioning", created.event_id) == done
        history = await rt2.workflows.history(done.instance_id)
        assert [(h.seq, h.kind, h.step_name) for h in history] == [
            (1, "started", None),
            (2, "step_completed", "created"),
            (3, "step_completed", "member-added"),
            (4, "step_completed", "artifact-updated"),
            (5, "completed", None),
        ]
        assert [h.event_id for h in history[1:4]] == [
            created.event_id,
            member.event_id,
            artifact.event_id,
        ], "each step records the event that caused it"
        assert history[0].event_id == created.event_id
        assert [h.to_status for h in history][-1] == "completed"
        emitted = await eventually(
            lambda: _emitted_through_completed(rt2, done.instance_id),
            timeout=DEADLINE,
            what="the workflow:completed event",
        )
        assert [e.event_type for e in emitted] == [
            "workflow:started",
            "workflow:step:completed",
            "workflow:step:completed",
            "workflow:step:completed",
            "workflow:completed",
        ]
        assert all(e.payload.get("workspaceId") == wid for e in emitted)
        assert len(await rt2.workflows.list(workflow_id="workspace-provisioning")) == 1


async def _emitted_through_completed(
    rt: cowork.Runtime, instance_id: str
) -> list[EventEnvelope] | None:
    emitted = await workflow_events(rt, instance_id)
    return emitted if emitted and emitted[-1].event_type == "workflow:completed" else None


async def test_blackboard_review_end_to_end_across_a_restart(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT) as rt:
        ws = await rt.workspaces.create(name="Review", actor="alice", members=[])
        wid = ws.workspace_id
        entry = await rt.blackboard.put(wid, "spec", {"draft": 1}, actor="writer")
        assert entry.version == 1
        created = await find_event(rt, "blackboard:entry:created", workspaceId=wid)
        instance = await started_by(rt, "blackboard-entry-review-publish", created.event_id)
        await rt.blackboard.add_feedback(
            wid, actor="reviewer", body="needs a summary", artifact_key="spec"
        )
        feedback = await find_event(rt, "feedback:added", workspaceId=wid, artifactKey="spec")
        await until(rt, instance.instance_id, waiting_at(2), what="the feedback step")

    async with await cowork.open(database_url, tenant_id=TENANT) as rt2:
        updated_entry = await rt2.blackboard.put(
            wid, "spec", {"draft": 2}, actor="writer", expected_version=1
        )
        assert updated_entry.version == 2
        updated = await find_event(rt2, "blackboard:entry:updated", workspaceId=wid)
        done = await rt2.workflows.wait(instance.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED
        history = await rt2.workflows.history(done.instance_id)
        assert [(h.seq, h.kind, h.step_name, h.event_id) for h in history] == [
            (1, "started", None, created.event_id),
            (2, "step_completed", "created", created.event_id),
            (3, "step_completed", "feedback-added", feedback.event_id),
            (4, "step_completed", "entry-updated", updated.event_id),
            (5, "completed", None, None),
        ]
        reviews = await rt2.workflows.list(workflow_id="blackboard-entry-review-publish")
        assert [r.instance_id for r in reviews] == [done.instance_id], "one review per entry"


async def test_events_that_happen_while_no_worker_runs_are_consumed_on_restart(
    database_url: str,
) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT) as rt:
        ws = await rt.workspaces.create(name="Offline", actor="alice", members=[])
        wid = ws.workspace_id
        created = await find_event(rt, "workspace:created", workspaceId=wid)
        instance = await started_by(rt, "workspace-provisioning", created.event_id)
        await until(rt, instance.instance_id, waiting_at(1))
    # No worker: the domain writes happen, the instance does not move.
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as quiet:
        await quiet.workspaces.add_member(wid, "bob")
        await quiet.blackboard.put(wid, "doc", {"v": 1}, actor="agent")
        await asyncio.sleep(0.3)
        idle = await quiet.workflows.get(instance.instance_id)
        assert idle is not None and idle.step_index == 1, "a worker=False runtime ran the engine"
    async with await cowork.open(database_url, tenant_id=TENANT) as rt2:
        done = await rt2.workflows.wait(instance.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED
        assert completed_steps(await rt2.workflows.history(done.instance_id)) == [
            "created",
            "member-added",
            "artifact-updated",
        ]


# -- timers ---------------------------------------------------------------------------------------
TIMER = WorkflowDefinition(
    workflow_id="timer",
    version=1,
    name="Timer",
    correlation=("key",),
    steps=(
        WaitStep(name="wait", event="timer:poke", timeout_seconds=2, on_timeout="expired"),
        CompleteStep(name="poked"),
        CompleteStep(name="expired"),
    ),
)

LONG_WAIT = WaitStep(name="wait", event="timer:poke", timeout_seconds=30, on_timeout="expired")


async def test_a_wait_step_takes_its_event_before_the_timeout(rt: cowork.Runtime) -> None:
    # A long timeout: on a shared PostgreSQL cluster an event may become readable a while after
    # its commit (see the next test); this one is about the ordinary path.
    await rt.workflows.register(replace(TIMER, steps=(LONG_WAIT, *TIMER.steps[1:])))
    instance = await rt.workflows.start("timer", input={"key": "k1"})
    waiting = await until(rt, instance.instance_id, waiting_at(0), what="the timer to wait")
    assert waiting.wake_at is not None
    await rt.events.publish("timer:poke", {"key": "other"})
    poke = await rt.events.publish("timer:poke", {"key": "k1"})
    committed_at = datetime.now(UTC)
    margin = (waiting.wake_at - committed_at).total_seconds()
    assert margin > 20, f"the poke committed only {margin:.3f} s before the deadline"
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    history = await rt.workflows.history(done.instance_id)
    assert kinds(history) == [
        ("started", None),
        ("step_completed", "wait"),
        ("step_completed", "poked"),
        ("completed", None),
    ], (
        f"the poke committed {margin:.3f} s before the deadline, yet: "
        f"{[(h.kind, h.step_name, h.created_at.isoformat()) for h in history]}"
    )
    assert history[1].event_id == poke.event_id


@pytest.mark.postgres
async def test_an_event_committed_before_the_deadline_wins_over_the_timeout(pg_url: str) -> None:
    """PostgreSQL only. Gap-free reads see an event only once every older transaction in the
    cluster has ended, so an unrelated long transaction (another tenant's slow action, a report
    in another database) can keep a committed event unreadable past a wait step's deadline. The
    event was there before the deadline: the wait must take it, not its timeout branch."""
    async with await cowork.open(pg_url, tenant_id=TENANT) as rt:
        await rt.workflows.register(TIMER)
        instance = await rt.workflows.start("timer", input={"key": "k1"})
        waiting = await until(rt, instance.instance_id, waiting_at(0), what="the timer to wait")
        assert waiting.wake_at is not None
        async with await psycopg.AsyncConnection.connect(pg_url) as other:
            # An unrelated transaction with a transaction id, open across the deadline.
            await other.execute("SELECT pg_current_xact_id()")
            poke = await rt.events.publish("timer:poke", {"key": "k1"})
            margin = (waiting.wake_at - datetime.now(UTC)).total_seconds()
            assert margin > 1.0, f"the poke committed only {margin:.3f} s before the deadline"
            await asyncio.sleep(margin + 0.7)
            await other.rollback()
        done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
        history = await rt.workflows.history(done.instance_id)
        assert kinds(history) == [
            ("started", None),
            ("step_completed", "wait"),
            ("step_completed", "poked"),
            ("completed", None),
        ], (
            f"the poke committed {margin:.3f} s before the deadline, yet: "
            f"{[(h.kind, h.step_name, h.created_at.isoformat()) for h in history]}"
        )
        assert history[1].event_id == poke.event_id


async def test_a_timeout_fires_after_a_restart_during_the_wait(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT) as rt:
        await rt.workflows.register(TIMER)
        instance = await rt.workflows.start("timer", input={"key": "k1"})
        waiting = await until(rt, instance.instance_id, waiting_at(0), what="the timer to wait")
    closed_at = datetime.now(UTC)
    assert waiting.wake_at is not None
    deadline = waiting.wake_at
    remaining = (deadline - closed_at).total_seconds()
    assert 0 < remaining <= 2.0, f"the 2 s timer is due in {remaining:.3f} s after the close"
    await asyncio.sleep(remaining + 0.3)  # the deadline passes while no worker runs

    async with await cowork.open(database_url, tenant_id=TENANT) as rt2:
        done = await rt2.workflows.wait(instance.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED
        assert done.ended_at is not None and done.ended_at >= deadline
        history = await rt2.workflows.history(done.instance_id)
        assert kinds(history) == [
            ("started", None),
            ("timed_out", "wait"),
            ("step_completed", "expired"),
            ("completed", None),
        ]
        assert [h.seq for h in history] == [1, 2, 3, 4]
        timed_out = history[1]
        assert timed_out.created_at >= deadline
        # A late poke changes nothing.
        await rt2.events.publish("timer:poke", {"key": "k1"})
        await asyncio.sleep(0.2)
        assert await rt2.workflows.history(done.instance_id) == history


# -- actions: retries, failure, atomicity, branches -----------------------------------------------
def _manual(workflow_id: str, *steps: Any) -> WorkflowDefinition:
    return WorkflowDefinition(
        workflow_id=workflow_id, version=1, name=workflow_id, correlation=("key",), steps=steps
    )


async def test_a_flaky_action_is_retried_with_backoff_then_completes(rt: cowork.Runtime) -> None:
    backoff = 0.2
    calls: list[tuple[int, float]] = []

    @rt.workflows.action("flaky.call")
    async def flaky(ctx: ActionContext) -> dict[str, Any]:
        calls.append((ctx.attempt, time.monotonic()))
        if len(calls) <= 2:
            raise RuntimeError(f"transient failure {len(calls)}")
        return {"answer": 42}

    await rt.workflows.register(
        _manual(
            "flaky",
            ActionStep(name="call", action="flaky.call", max_attempts=3, backoff_seconds=backoff),
        )
    )
    instance = await rt.workflows.start("flaky", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    assert done.data == {"answer": 42}
    assert [a for a, _ in calls] == [1, 2, 3]
    delays = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(calls)]
    assert delays[0] >= backoff and delays[1] >= backoff, f"retries came after {delays}"
    history = await rt.workflows.history(done.instance_id)
    assert kinds(history) == [
        ("started", None),
        ("step_retry", "call"),
        ("step_retry", "call"),
        ("step_completed", "call"),
        ("completed", None),
    ]
    retries = [h for h in history if h.kind == "step_retry"]
    assert [r.detail["attempt"] for r in retries] == [1, 2]
    assert "transient failure 1" in retries[0].detail["error"]
    assert all(r.detail["retryInSeconds"] >= backoff for r in retries)
    assert history[3].detail.get("attempt") == 3


async def test_a_permanently_failing_action_fails_the_instance(rt: cowork.Runtime) -> None:
    calls = 0

    @rt.workflows.action("always.broken")
    async def broken(ctx: ActionContext) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("the printer is on fire")

    await rt.workflows.register(
        _manual(
            "doomed",
            ActionStep(name="print", action="always.broken", max_attempts=2, backoff_seconds=0.05),
            CompleteStep(name="never"),
        )
    )
    instance = await rt.workflows.start("doomed", input={"key": "k"})
    failed = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert failed.status is InstanceStatus.FAILED
    assert failed.last_error is not None and "the printer is on fire" in failed.last_error
    assert calls == 2
    history = await rt.workflows.history(failed.instance_id)
    assert history[-1].kind == "failed"
    assert history[-1].step_name == "print"
    assert "the printer is on fire" in history[-1].detail["error"]
    assert "never" not in completed_steps(history)
    emitted = await eventually(
        lambda: _event_for(rt, "workflow:failed", failed.instance_id),
        timeout=DEADLINE,
        what="workflow:failed",
    )
    assert "the printer is on fire" in emitted.payload["error"]
    with pytest.raises(cowork.InvalidTransition):
        await rt.workflows.cancel(failed.instance_id)


async def test_the_last_failed_attempt_is_not_recorded_as_a_retry(rt: cowork.Runtime) -> None:
    @rt.workflows.action("twice.broken")
    async def broken(ctx: ActionContext) -> None:
        raise ValueError(f"attempt {ctx.attempt} broke")

    await rt.workflows.register(
        _manual(
            "twice",
            ActionStep(name="print", action="twice.broken", max_attempts=2, backoff_seconds=0.05),
        )
    )
    instance = await rt.workflows.start("twice", input={"key": "k"})
    failed = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert failed.status is InstanceStatus.FAILED
    history = await rt.workflows.history(failed.instance_id)
    # Attempt 1 failed and was retried; attempt 2 failed for good: one retry, then the failure.
    # A "step_retry" row (retryInSeconds 0) for the last attempt records a retry that never ran.
    assert kinds(history) == [
        ("started", None),
        ("step_retry", "print"),
        ("failed", "print"),
    ], [(h.kind, h.detail) for h in history]
    assert "attempt 1 broke" in history[1].detail["error"]
    assert "attempt 2 broke" in history[2].detail["error"]


async def _event_for(rt: cowork.Runtime, event_type: str, instance_id: str) -> EventEnvelope | None:
    hits = [
        e for e in await events_of(rt, event_type) if e.payload.get("instanceId") == instance_id
    ]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


async def test_an_action_without_a_handler_waits_for_a_worker_and_never_fails(
    rt: cowork.Runtime,
) -> None:
    """Routing: a process claims only steps whose action it has registered; a step no worker
    offers stays pending (visible, with how long) and runs once a handler is registered."""
    await rt.workflows.register(
        _manual(
            "orphan",
            ActionStep(name="call", action="nobody.registered", max_attempts=1),
        )
    )
    instance = await rt.workflows.start("orphan", input={"key": "k"})
    await asyncio.sleep(1.0)  # the executor runs and finds the step due, with no handler
    waiting = await rt.workflows.get(instance.instance_id)
    assert waiting is not None and waiting.status is InstanceStatus.RUNNING
    assert waiting.attempts == 0 and waiting.last_error is None
    assert waiting.action == "nobody.registered" and waiting.lease_owner is None
    waited = waiting.awaiting_worker(rt.database_now())
    assert waited is not None and waited >= 0.5
    pending = await rt.workflows.pending_actions(min_age_seconds=0.5)
    assert [(p.action, p.steps) for p in pending] == [("nobody.registered", 1)]

    @rt.workflows.action("nobody.registered")
    async def call(ctx: ActionContext) -> dict[str, Any]:
        return {"called": True}

    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED and done.data == {"called": True}
    assert await rt.workflows.pending_actions(min_age_seconds=0) == []


async def test_a_transition_is_atomic_with_what_the_action_wrote(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="Atomic", actor="alice")

    @rt.workflows.action("atomic.write")
    async def write(ctx: ActionContext) -> dict[str, Any]:
        @ctx.at_completion
        async def writes(tx: cowork.TransactionContext) -> None:
            await tx.events.publish(
                "test:atomic", {"instanceId": ctx.instance.instance_id, "attempt": ctx.attempt}
            )
            await tx.blackboard.put(
                ws.workspace_id, "atomic", {"attempt": ctx.attempt}, actor="workflow"
            )

        if ctx.attempt == 1:
            raise RuntimeError("crash after registering its writes")
        return {"wrote": ctx.attempt}

    await rt.workflows.register(
        _manual(
            "atomic",
            ActionStep(name="write", action="atomic.write", max_attempts=3, backoff_seconds=0.05),
        )
    )
    instance = await rt.workflows.start("atomic", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    completed = await eventually(
        lambda: _event_for(rt, "workflow:completed", done.instance_id),
        timeout=DEADLINE,
        what="workflow:completed",
    )
    assert completed is not None
    published = [
        e.payload
        for e in await events_of(rt, "test:atomic")
        if e.payload["instanceId"] == done.instance_id
    ]
    assert published == [{"instanceId": done.instance_id, "attempt": 2}], (
        "the failed attempt's event was published"
    )
    history = await rt.blackboard.history(ws.workspace_id, "atomic")
    assert [v.payload for v in history] == [{"attempt": 2}], "the failed attempt's write stayed"
    assert done.data == {"wrote": 2}


async def test_a_branch_routes_on_what_an_action_returned(rt: cowork.Runtime) -> None:
    @rt.workflows.action("router.classify")
    async def classify(ctx: ActionContext) -> dict[str, Any]:
        return {"route": ctx.input["route"], "seen": ctx.step_name}

    await rt.workflows.register(
        _manual(
            "router",
            ActionStep(name="classify", action="router.classify", backoff_seconds=0.01),
            BranchStep(
                name="route",
                cases=(
                    BranchCase(path="data.route", equals="a", goto="path-a"),
                    BranchCase(path="data.route", equals="b", goto="path-b"),
                ),
                default="fallback",
            ),
            CompleteStep(name="path-a"),
            CompleteStep(name="path-b"),
            FailStep(name="fallback", reason="no route matched"),
        )
    )
    started = {
        route: await rt.workflows.start("router", input={"key": route, "route": route})
        for route in ("a", "b", "z")
    }
    ended = {
        route: await rt.workflows.wait(i.instance_id, timeout=DEADLINE)
        for route, i in started.items()
    }
    assert ended["a"].status is InstanceStatus.COMPLETED
    assert ended["b"].status is InstanceStatus.COMPLETED
    assert ended["z"].status is InstanceStatus.FAILED
    assert ended["b"].data == {"route": "b", "seen": "classify"}
    steps = {
        route: completed_steps(await rt.workflows.history(i.instance_id))
        for route, i in ended.items()
    }
    assert steps["a"] == ["classify", "route", "path-a"]
    assert steps["b"] == ["classify", "route", "path-b"]
    assert steps["z"] == ["classify", "route"]
    fallback = (await rt.workflows.history(ended["z"].instance_id))[-1]
    assert fallback.kind == "failed" and "no route matched" in fallback.detail["error"]


# -- cancel ---------------------------------------------------------------------------------------
async def test_cancel_stops_a_waiting_instance(rt: cowork.Runtime) -> None:
    await rt.workflows.register(ORDERS_V1)
    placed = await rt.events.publish("order:placed", {"orderId": "c1"})
    instance = await started_by(rt, "orders", placed.event_id)
    await until(rt, instance.instance_id, waiting_at(1))
    cancelled = await rt.workflows.cancel(instance.instance_id, reason="customer left", actor="ops")
    assert cancelled.status is InstanceStatus.CANCELLED and cancelled.ended_at is not None
    history = await rt.workflows.history(instance.instance_id)
    last = history[-1]
    assert (last.kind, last.to_status, last.actor) == ("cancelled", "cancelled", "ops")
    assert last.detail.get("reason") == "customer left"
    emitted = await eventually(
        lambda: _event_for(rt, "workflow:cancelled", instance.instance_id),
        timeout=DEADLINE,
        what="workflow:cancelled",
    )
    assert emitted.payload["reason"] == "customer left"

    # The event it waited for no longer moves it; cancelling again is an invalid transition.
    paid = await rt.events.publish("order:paid", {"orderId": "c1"})
    await find_event(rt, "order:paid", orderId="c1")

    async def engine_saw(event: EventEnvelope) -> bool:
        [info] = [c for c in await rt.consumers.list() if c.consumer_id == ENGINE_CONSUMER]
        return info.last_position >= event.position

    await eventually(lambda: engine_saw(paid), timeout=DEADLINE, what="the engine to see it")
    assert await rt.workflows.history(instance.instance_id) == history
    still = await rt.workflows.get(instance.instance_id)
    assert still is not None and still.status is InstanceStatus.CANCELLED
    with pytest.raises(cowork.InvalidTransition):
        await rt.workflows.cancel(instance.instance_id)
    with pytest.raises(cowork.NotFound):
        await rt.workflows.cancel("no-such-instance")


async def test_cancel_of_a_completed_instance_is_an_invalid_transition(rt: cowork.Runtime) -> None:
    await rt.workflows.register(_manual("instant", CompleteStep(name="done")))
    instance = await rt.workflows.start("instant", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    with pytest.raises(cowork.InvalidTransition):
        await rt.workflows.cancel(done.instance_id)
    after = await rt.workflows.get(done.instance_id)
    assert after is not None and after.status is InstanceStatus.COMPLETED


async def test_cancel_stops_a_running_instance_between_retries(rt: cowork.Runtime) -> None:
    calls = 0

    @rt.workflows.action("slow.retry")
    async def failing(ctx: ActionContext) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("not yet")

    await rt.workflows.register(
        _manual(
            "retrying",
            ActionStep(name="call", action="slow.retry", max_attempts=5, backoff_seconds=0.4),
        )
    )
    instance = await rt.workflows.start("retrying", input={"key": "k"})
    await until(
        rt,
        instance.instance_id,
        lambda i: i.attempts == 1 and i.status is InstanceStatus.RUNNING,
        what="the first failed attempt",
    )
    cancelled = await rt.workflows.cancel(instance.instance_id)
    assert cancelled.status is InstanceStatus.CANCELLED
    await asyncio.sleep(0.8)
    assert calls == 1, "a cancelled instance ran its action again"
    final = await rt.workflows.get(instance.instance_id)
    assert final is not None and final.status is InstanceStatus.CANCELLED
    assert [h.kind for h in await rt.workflows.history(instance.instance_id)] == [
        "started",
        "step_retry",
        "cancelled",
    ]


async def test_rejects_bad_arguments(rt: cowork.Runtime) -> None:
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.register({"workflowId": "x"})  # type: ignore[arg-type]
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.list(status="sleeping")
    with pytest.raises(cowork.ValidationError):

        def not_async(ctx: ActionContext) -> None:
            return None

        rt.workflows.register_action("sync.handler", not_async)  # type: ignore[arg-type]

    async def one(ctx: ActionContext) -> None:
        return None

    async def two(ctx: ActionContext) -> None:
        return None

    rt.workflows.register_action("dup.handler", one)
    rt.workflows.register_action("dup.handler", one)  # the same handler again is fine
    with pytest.raises(cowork.ValidationError):
        rt.workflows.register_action("dup.handler", two)


# -- robustness -----------------------------------------------------------------------------------
class _NotJson:
    pass


@pytest.mark.parametrize(
    "bad_result",
    [
        pytest.param(42, id="not-a-mapping"),
        pytest.param({"value": _NotJson()}, id="not-json"),
    ],
)
async def test_an_action_returning_garbage_fails_its_instance_and_the_engine_goes_on(
    database_url: str, bad_result: Any
) -> None:
    rt = await cowork.open(database_url, tenant_id=TENANT)
    try:

        @rt.workflows.action("garbage.out")
        async def garbage(ctx: ActionContext) -> Any:
            return bad_result

        @rt.workflows.action("fine.out")
        async def fine(ctx: ActionContext) -> dict[str, Any]:
            return {"ok": True}

        await rt.workflows.register(
            _manual("garbage", ActionStep(name="call", action="garbage.out", max_attempts=1))
        )
        await rt.workflows.register(
            _manual("fine", ActionStep(name="call", action="fine.out", max_attempts=1))
        )
        bad = await rt.workflows.start("garbage", input={"key": "k"})
        await asyncio.sleep(0.2)  # the bad one is due first
        good = await rt.workflows.start("fine", input={"key": "k"})
        done = await rt.workflows.wait(good.instance_id, timeout=3)
        assert done.status is InstanceStatus.COMPLETED
        ended = await rt.workflows.wait(bad.instance_id, timeout=3)
        assert ended.status is InstanceStatus.FAILED
        assert ended.last_error
    finally:
        await rt.close()  # must not re-raise an error of the engine's background task


async def test_an_event_the_action_publishes_completes_the_next_wait(rt: cowork.Runtime) -> None:
    @rt.workflows.action("job.submit")
    async def submit(ctx: ActionContext) -> dict[str, Any]:
        key = ctx.input["key"]

        @ctx.at_completion
        async def ack(tx: cowork.TransactionContext) -> None:
            await tx.events.publish("job:ack", {"key": key, "by": "action"})

        return {"submitted": True}

    await rt.workflows.register(
        _manual(
            "job",
            ActionStep(name="submit", action="job.submit", backoff_seconds=0.05),
            WaitStep(name="ack", event="job:ack"),
            CompleteStep(name="done"),
        )
    )
    instance = await rt.workflows.start("job", input={"key": "j1"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    history = await rt.workflows.history(done.instance_id)
    assert completed_steps(history) == ["submit", "ack", "done"]
    ack = await find_event(rt, "job:ack", key="j1")
    assert history[2].event_id == ack.event_id


async def test_tenants_do_not_advance_each_other(rt: cowork.Runtime) -> None:
    other = rt.for_tenant("t2", owner_id="owner-2")
    ws1 = await rt.workspaces.create(name="same", actor="alice", workspace_id="w-same", members=[])
    ws2 = await other.workspaces.create(name="same", actor="bob", workspace_id="w-same", members=[])
    assert ws1.workspace_id == ws2.workspace_id
    prov1 = await _provisioning(rt, "w-same")
    prov2 = await _provisioning(other, "w-same")
    assert prov1.instance_id != prov2.instance_id
    assert await rt.workflows.get(prov2.instance_id) is None
    assert [i.instance_id for i in await other.workflows.list()] == [prov2.instance_id]
    await other.workspaces.add_member("w-same", "m1")
    await other.blackboard.put("w-same", "doc", {"v": 1}, actor="agent")
    done2 = await other.workflows.wait(prov2.instance_id, timeout=DEADLINE)
    assert done2.status is InstanceStatus.COMPLETED
    still1 = await rt.workflows.get(prov1.instance_id)
    assert still1 is not None and (still1.status, still1.step_index) == (
        InstanceStatus.WAITING,
        1,
    )
    with pytest.raises(cowork.NotFound):
        await rt.workflows.cancel(prov2.instance_id)


async def test_a_branch_loop_fails_instead_of_spinning(rt: cowork.Runtime) -> None:
    await rt.workflows.register(
        _manual("loop", BranchStep(name="spin", cases=(), default="spin"), CompleteStep(name="x"))
    )
    instance = await rt.workflows.start("loop", input={"key": "k"})
    failed = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert failed.status is InstanceStatus.FAILED
    assert "loop" in (failed.last_error or "")


async def test_a_trigger_without_its_correlation_field_starts_nothing(rt: cowork.Runtime) -> None:
    await rt.workflows.register(ORDERS_V1)
    await rt.events.publish("order:placed", {"customer": "c1"})
    await rt.events.publish("order:placed", {"orderId": None})
    placed = await rt.events.publish("order:placed", {"orderId": "o1"})
    instance = await started_by(rt, "orders", placed.event_id)
    assert [i.instance_id for i in await rt.workflows.list(workflow_id="orders")] == [
        instance.instance_id
    ]


async def test_an_event_published_while_the_action_runs_is_not_missed(rt: cowork.Runtime) -> None:
    running = asyncio.Event()

    @rt.workflows.action("slow.prepare")
    async def prepare(ctx: ActionContext) -> None:
        running.set()
        await asyncio.sleep(0.3)

    await rt.workflows.register(
        _manual(
            "busy",
            ActionStep(name="prepare", action="slow.prepare", backoff_seconds=0.05),
            WaitStep(name="ack", event="job:ack"),
            CompleteStep(name="done"),
        )
    )
    instance = await rt.workflows.start("busy", input={"key": "b1"})
    await asyncio.wait_for(running.wait(), DEADLINE)
    ack = await rt.events.publish("job:ack", {"key": "b1"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    history = await rt.workflows.history(done.instance_id)
    assert completed_steps(history) == ["prepare", "ack", "done"]
    assert history[2].event_id == ack.event_id


async def test_a_definition_registered_by_another_runtime_starts_on_the_next_trigger(
    database_url: str,
) -> None:
    """Many runtimes share one database: a client (``worker=False``) registers a workflow and
    publishes its trigger; the worker of another runtime must start it (the latest version)."""
    async with (
        await cowork.open(database_url, tenant_id=TENANT) as worker_rt,
        await cowork.open(database_url, tenant_id=TENANT, worker=False) as client,
    ):
        assert await client.workflows.register(ORDERS_V1) is True
        placed = await client.events.publish("order:placed", {"orderId": "x1"})
        first = await started_by(worker_rt, "orders", placed.event_id, timeout=5)
        assert first.workflow_version == 1
        await until(worker_rt, first.instance_id, waiting_at(1))

        assert await client.workflows.register(ORDERS_V2) is True
        placed2 = await client.events.publish("order:placed", {"orderId": "x2"})
        second = await started_by(worker_rt, "orders", placed2.event_id, timeout=5)
        assert second.workflow_version == 2, "a trigger after v2 was registered started v1"


async def test_concurrent_manual_starts_with_one_key_make_one_instance(rt: cowork.Runtime) -> None:
    await rt.workflows.register(ORDERS_V1)
    started = await asyncio.gather(
        *(
            rt.workflows.start("orders", input={"orderId": "same"}, idempotency_key="once")
            for _ in range(8)
        )
    )
    assert len({i.instance_id for i in started}) == 1
    assert len(await rt.workflows.list(workflow_id="orders")) == 1
    history = await rt.workflows.history(started[0].instance_id)
    assert [h.kind for h in history].count("started") == 1
