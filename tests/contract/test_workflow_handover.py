"""Workflow start hand-over, exclusive leases and lazy action savepoints (both backends).

- ``rt.workflows.start`` in a process whose executor runs inserts the instance already leased to
  that executor, which then runs it without claiming it; without a local executor the instance
  is inserted unleased, for any worker to claim.
- A claim treats an unexpired lease as exclusive, its owner's too.
- An action's savepoint is taken only when it touches the database: a failing action's writes
  are still undone, a succeeding one's commit with its step, and in-process subscribers get
  the action's events and the step's in log order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

import cowork
from cowork import (
    ActionContext,
    ActionStep,
    EventEnvelope,
    HistoryEntry,
    InstanceStatus,
    WorkflowDefinition,
    WorkflowInstance,
)
from cowork.kernel.service import utcnow
from cowork.workflows.store import WorkflowStore
from tests.support.events import eventually

TENANT = "t1"
DEADLINE = 10.0  # well below the default 30 s lease: a stranded lease shows up as a timeout


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as runtime:
        yield runtime


# -- helpers --------------------------------------------------------------------------------------
def _manual(workflow_id: str, *steps: Any) -> WorkflowDefinition:
    return WorkflowDefinition(
        workflow_id=workflow_id, version=1, name=workflow_id, correlation=("key",), steps=steps
    )


def _two_actions(workflow_id: str, first: str, second: str, **options: Any) -> WorkflowDefinition:
    return _manual(
        workflow_id,
        ActionStep(name="first", action=first, backoff_seconds=0.05, **options),
        ActionStep(name="second", action=second, backoff_seconds=0.05, **options),
    )


async def events_of(rt: cowork.Runtime, event_type: str | None = None) -> list[EventEnvelope]:
    return [
        e
        async for e in rt.events.iterate(page_size=1000)
        if event_type is None or e.event_type == event_type
    ]


def kinds(history: list[HistoryEntry]) -> list[tuple[str, str | None]]:
    return [(h.kind, h.step_name) for h in history]


def of_instance(instance_id: str) -> Callable[[EventEnvelope], bool]:
    return lambda e: e.payload.get("instanceId") == instance_id


async def logged(rt: cowork.Runtime, instance_id: str, last_type: str) -> list[EventEnvelope]:
    """The instance's events in log order, once ``last_type`` is readable."""

    async def read() -> list[EventEnvelope] | None:
        mine = [e for e in await events_of(rt) if of_instance(instance_id)(e)]
        return mine if any(e.event_type == last_type for e in mine) else None

    found: list[EventEnvelope] = await eventually(
        read, timeout=DEADLINE, what=f"a readable {last_type} of {instance_id}"
    )
    return found


async def _noop(ctx: ActionContext) -> dict[str, Any]:
    return {ctx.step_name: ctx.attempt}


# -- a. start hands the instance to the local executor --------------------------------------------
async def test_a_start_with_a_local_executor_is_leased_to_it_and_runs(rt: cowork.Runtime) -> None:
    rt.workflows.register_action("handover.first", _noop)
    rt.workflows.register_action("handover.second", _noop)
    await rt.workflows.register(_two_actions("handover", "handover.first", "handover.second"))

    before = utcnow()
    started = await rt.workflows.start("handover", input={"key": "h1"})
    assert started.lease_owner == rt._core.worker_id, "the start did not lease it to our executor"
    assert started.lease_expires_at is not None
    lease = rt._core.settings.workflow_lease_seconds
    assert before + timedelta(seconds=lease - 5) < started.lease_expires_at
    assert started.lease_expires_at <= utcnow() + timedelta(seconds=lease)
    assert started.status is InstanceStatus.RUNNING and started.step_index == 0

    # The executor runs it now (no claim: a claim would skip it until its lease expires).
    done = await rt.workflows.wait(started.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    assert done.data == {"first": 1, "second": 1}
    assert kinds(await rt.workflows.history(done.instance_id)) == [
        ("started", None),
        ("step_completed", "first"),
        ("step_completed", "second"),
        ("completed", None),
    ]

    # Several at once: every one is handed over and runs.
    many = [await rt.workflows.start("handover", input={"key": f"m{i}"}) for i in range(5)]
    assert {i.lease_owner for i in many} == {rt._core.worker_id}
    for instance in many:
        ended = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
        assert ended.status is InstanceStatus.COMPLETED, ended.last_error


async def test_an_idempotent_restart_returns_the_first_instance(rt: cowork.Runtime) -> None:
    rt.workflows.register_action("again.first", _noop)
    rt.workflows.register_action("again.second", _noop)
    await rt.workflows.register(_two_actions("again", "again.first", "again.second"))
    first = await rt.workflows.start("again", input={"key": "k"}, idempotency_key="once")
    done = await rt.workflows.wait(first.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    second = await rt.workflows.start("again", input={"key": "k"}, idempotency_key="once")
    assert second.instance_id == first.instance_id
    assert second.status is InstanceStatus.COMPLETED, "a repeated start ran the instance again"
    history = await rt.workflows.history(first.instance_id)
    assert [h.kind for h in history].count("started") == 1


async def test_a_start_without_a_local_executor_is_not_leased(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as client:
        await client.workflows.register(_two_actions("unleased", "ul.first", "ul.second"))
        started = await client.workflows.start("unleased", input={"key": "u1"})
        assert started.lease_owner is None, "leased to an executor that does not run here"
        assert started.lease_expires_at is None
        stored = await client.workflows.get(started.instance_id)
        assert stored is not None and stored.lease_owner is None
        assert stored.status is InstanceStatus.RUNNING and stored.step_index == 0

    # Any worker claims it at once (a lease to the client would keep it away for 30 s).
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as worker:
        worker.workflows.register_action("ul.first", _noop)
        worker.workflows.register_action("ul.second", _noop)
        done = await worker.workflows.wait(started.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED, done.last_error
        assert done.data == {"first": 1, "second": 1}


# -- b. an unexpired lease is exclusive, for its owner too ----------------------------------------
async def _claim(
    rt: cowork.Runtime, owner: str, now: Any, lease_seconds: float = 30.0
) -> WorkflowInstance | None:
    async with rt.transaction() as ctx:
        claimed = await WorkflowStore(ctx.tx, ctx.scope).claim(
            owner, lease_seconds, at=now, now=now, actions=("leased.a", "notdue.a", "cas.a")
        )
    return claimed[0] if claimed else None


async def test_a_claim_skips_an_unexpired_lease_even_of_its_owner(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as rt:
        await rt.workflows.register(_manual("leased", ActionStep(name="a", action="leased.a")))
        started = await rt.workflows.start("leased", input={"key": "l1"})
        assert started.lease_owner is None and started.wake_at is not None

        now = utcnow() + timedelta(seconds=1)  # the instance is due
        first = await _claim(rt, "owner-a", now, 30.0)
        assert first is not None and first.instance_id == started.instance_id
        assert first.lease_owner == "owner-a"
        assert first.lease_expires_at == now + timedelta(seconds=30)

        later = now + timedelta(seconds=10)
        assert await _claim(rt, "owner-a", later) is None, "its owner claimed a held lease again"
        assert await _claim(rt, "owner-b", later) is None, "another worker took a held lease"
        held = await rt.workflows.get(started.instance_id)
        assert held is not None and held.lease_owner == "owner-a"
        assert held.lease_expires_at == first.lease_expires_at, "a refused claim moved the lease"

        expired = first.lease_expires_at + timedelta(seconds=1)
        again = await _claim(rt, "owner-a", expired, 30.0)
        assert again is not None and again.instance_id == started.instance_id
        assert again.lease_owner == "owner-a"
        assert again.lease_expires_at == expired + timedelta(seconds=30)

        # Past that lease, another owner takes it over.
        assert again.lease_expires_at is not None
        taken = await _claim(rt, "owner-b", again.lease_expires_at + timedelta(seconds=1))
        assert taken is not None and taken.lease_owner == "owner-b"


async def test_a_claim_takes_nothing_that_is_not_due(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as rt:
        await rt.workflows.register(_manual("notdue", ActionStep(name="a", action="notdue.a")))
        started = await rt.workflows.start("notdue", input={"key": "n1"})
        assert started.wake_at is not None
        assert await _claim(rt, "owner-a", started.wake_at - timedelta(seconds=1)) is None
        claimed = await _claim(rt, "owner-a", started.wake_at)
        assert claimed is not None and claimed.instance_id == started.instance_id


# -- c. transactional steps: lazy savepoints, exactly-once writes --------------------------------
async def test_a_failing_actions_writes_are_undone_and_the_failure_recorded(
    rt: cowork.Runtime,
) -> None:
    ws = await rt.workspaces.create(name="Undo", actor="alice")
    calls = 0

    @rt.workflows.action("undo.write")
    async def write(ctx: ActionContext) -> None:
        nonlocal calls
        calls += 1
        await ctx.tx.events.publish(
            "test:undone", {"instanceId": ctx.instance.instance_id, "attempt": ctx.attempt}
        )
        await ctx.tx.blackboard.put(ws.workspace_id, "undone", {"n": 1}, actor="workflow")
        raise RuntimeError("crash after writing")

    seen: list[EventEnvelope] = []

    async def on_event(event: EventEnvelope) -> None:
        seen.append(event)

    sub = rt.events.subscribe("*", on_event)
    await rt.workflows.register(
        _manual(
            "undo",
            ActionStep(name="write", action="undo.write", max_attempts=1, transactional=True),
        )
    )
    instance = await rt.workflows.start("undo", input={"key": "k"})
    failed = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert failed.status is InstanceStatus.FAILED
    assert calls == 1
    assert "crash after writing" in (failed.last_error or "")
    history = await rt.workflows.history(failed.instance_id)
    assert kinds(history) == [("started", None), ("failed", "write")]

    mine = await logged(rt, instance.instance_id, "workflow:failed")
    assert [e.event_type for e in mine] == ["workflow:started", "workflow:failed"], (
        "the failed action's event is in the log"
    )
    assert await events_of(rt, "test:undone") == []
    assert await rt.blackboard.get(ws.workspace_id, "undone") is None, "its write stayed"
    await sub.drain()
    assert [e.event_type for e in seen if of_instance(instance.instance_id)(e)] == [
        "workflow:started",
        "workflow:failed",
    ], "an in-process subscriber got the rolled-back event"
    sub.close()


async def test_a_retried_actions_first_writes_are_undone(rt: cowork.Runtime) -> None:
    @rt.workflows.action("retry.write")
    async def write(ctx: ActionContext) -> dict[str, Any]:
        await ctx.tx.events.publish(
            "test:retried", {"instanceId": ctx.instance.instance_id, "attempt": ctx.attempt}
        )
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return {"attempt": ctx.attempt}

    await rt.workflows.register(
        _manual(
            "retry",
            ActionStep(
                name="write",
                action="retry.write",
                max_attempts=3,
                backoff_seconds=0.05,
                transactional=True,
            ),
        )
    )
    instance = await rt.workflows.start("retry", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    history = await rt.workflows.history(done.instance_id)
    assert kinds(history) == [
        ("started", None),
        ("step_retry", "write"),
        ("step_completed", "write"),
        ("completed", None),
    ]
    assert "first attempt fails" in history[1].detail["error"]
    await logged(rt, instance.instance_id, "workflow:completed")
    assert [e.payload["attempt"] for e in await events_of(rt, "test:retried")] == [2]


async def test_a_succeeding_actions_writes_commit_with_its_step_in_log_order(
    rt: cowork.Runtime,
) -> None:
    ws = await rt.workspaces.create(name="Commit", actor="alice")

    @rt.workflows.action("commit.first")
    async def first(ctx: ActionContext) -> dict[str, Any]:
        await ctx.tx.events.publish("test:first", {"instanceId": ctx.instance.instance_id})
        await ctx.tx.blackboard.put(ws.workspace_id, "first", {"n": 1}, actor="workflow")
        return {"first": ctx.attempt}

    @rt.workflows.action("commit.second")
    async def second(ctx: ActionContext) -> dict[str, Any]:
        await ctx.tx.events.publish(
            "test:second", {"instanceId": ctx.instance.instance_id, "attempt": ctx.attempt}
        )
        if ctx.attempt == 1:
            raise RuntimeError("second fails once")
        return {"second": ctx.attempt}

    seen: list[EventEnvelope] = []

    async def on_event(event: EventEnvelope) -> None:
        seen.append(event)

    sub = rt.events.subscribe("*", on_event)
    await rt.workflows.register(
        _two_actions("commit", "commit.first", "commit.second", max_attempts=3, transactional=True)
    )
    instance = await rt.workflows.start("commit", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    assert done.data == {"first": 1, "second": 2}
    assert kinds(await rt.workflows.history(done.instance_id)) == [
        ("started", None),
        ("step_completed", "first"),
        ("step_retry", "second"),
        ("step_completed", "second"),
        ("completed", None),
    ]

    mine = await logged(rt, instance.instance_id, "workflow:completed")
    expected = [
        ("workflow:started", None),
        ("test:first", None),
        ("workflow:step:completed", "first"),
        ("test:second", None),
        ("workflow:step:completed", "second"),
        ("workflow:completed", None),
    ]
    assert [(e.event_type, e.payload.get("step")) for e in mine] == expected, (
        "the first action's write is missing or the second's failed attempt stayed"
    )
    assert [e.payload.get("attempt") for e in mine if e.event_type == "test:second"] == [2]
    by_type = {(e.event_type, e.payload.get("step")): e for e in mine}
    for action_event, step_event in (
        (("test:first", None), ("workflow:step:completed", "first")),
        (("test:second", None), ("workflow:step:completed", "second")),
    ):
        assert by_type[action_event].tx_id == by_type[step_event].tx_id, (
            f"{action_event[0]} was not committed with its step"
        )
    entry = await rt.blackboard.get(ws.workspace_id, "first")
    assert entry is not None and entry.payload == {"n": 1}

    # In-process delivery: the action's event before its step's, exactly in log order.
    await sub.drain()
    delivered = [e for e in seen if of_instance(instance.instance_id)(e)]
    assert [(e.event_type, e.payload.get("step")) for e in delivered] == expected
    assert [e.event_id for e in delivered] == [e.event_id for e in mine]
    sub.close()


async def test_an_action_that_catches_its_own_savepoint_keeps_its_other_writes(
    rt: cowork.Runtime,
) -> None:
    @rt.workflows.action("inner.savepoint")
    async def act(ctx: ActionContext) -> dict[str, Any]:
        instance_id = ctx.instance.instance_id
        await ctx.tx.events.publish("test:kept", {"instanceId": instance_id})
        try:
            async with ctx.tx.savepoint():
                await ctx.tx.events.publish("test:dropped", {"instanceId": instance_id})
                raise RuntimeError("undo only the inner part")
        except RuntimeError:
            pass
        return {"ok": True}

    seen: list[EventEnvelope] = []

    async def on_event(event: EventEnvelope) -> None:
        seen.append(event)

    sub = rt.events.subscribe("test:*", on_event)
    await rt.workflows.register(
        _manual("inner", ActionStep(name="act", action="inner.savepoint", transactional=True))
    )
    instance = await rt.workflows.start("inner", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    mine = await logged(rt, instance.instance_id, "workflow:completed")
    assert [e.event_type for e in mine] == [
        "workflow:started",
        "test:kept",
        "workflow:step:completed",
        "workflow:completed",
    ]
    await sub.drain()
    assert [e.event_type for e in seen] == ["test:kept"]
    sub.close()


async def test_an_action_that_writes_nothing_still_commits_its_step(rt: cowork.Runtime) -> None:
    attempts: list[int] = []

    @rt.workflows.action("pure.compute")
    async def compute(ctx: ActionContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("no writes, still a failure")
        return {"value": 7}

    await rt.workflows.register(
        _manual(
            "pure",
            ActionStep(name="compute", action="pure.compute", max_attempts=2, backoff_seconds=0.05),
        )
    )
    instance = await rt.workflows.start("pure", input={"key": "k"})
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    assert done.data == {"value": 7} and attempts == [1, 2]
    assert kinds(await rt.workflows.history(done.instance_id)) == [
        ("started", None),
        ("step_retry", "compute"),
        ("step_completed", "compute"),
        ("completed", None),
    ]


# -- saves: the lease is released, and the compare-and-set includes the lease --------------------
async def test_a_saved_transition_releases_the_executors_lease(rt: cowork.Runtime) -> None:
    await rt.workflows.register(
        _manual("release", cowork.WaitStep(name="w", event="release:go", timeout_seconds=60))
    )
    started = await rt.workflows.start("release", input={"key": "r1"})
    assert started.lease_owner == rt._core.worker_id

    async def waiting() -> WorkflowInstance | None:
        got = await rt.workflows.get(started.instance_id)
        return got if got is not None and got.status is InstanceStatus.WAITING else None

    instance = await eventually(waiting, timeout=DEADLINE, what="the instance to wait")
    assert instance.lease_owner is None and instance.lease_expires_at is None
    assert instance.row_version == started.row_version + 1


async def test_a_save_expecting_another_lease_owner_writes_nothing(database_url: str) -> None:
    from cowork.workflows.machine import Transition

    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as rt:
        definition = _manual("cas", ActionStep(name="a", action="cas.a"))
        await rt.workflows.register(definition)
        started = await rt.workflows.start("cas", input={"key": "c1"})
        claimed = await _claim(rt, "owner-a", utcnow() + timedelta(seconds=1))
        assert claimed is not None and claimed.instance_id == started.instance_id
        history = await rt.workflows.history(started.instance_id)

        with pytest.raises(cowork.StorageConflict):
            async with rt.transaction() as ctx:
                transition = Transition(ctx, definition, claimed)
                transition.complete_step(detail={"attempt": 1})
                await transition.advance(scan=True)
                await transition.save(expect_owner="owner-b")  # owner-a holds the lease
        unchanged = await rt.workflows.get(started.instance_id)
        assert unchanged is not None and unchanged.row_version == claimed.row_version
        assert unchanged.step_index == 0 and unchanged.lease_owner == "owner-a"
        assert await rt.workflows.history(started.instance_id) == history
        assert not [e for e in await events_of(rt) if e.event_type == "workflow:completed"]

        async with rt.transaction() as ctx:
            transition = Transition(ctx, definition, claimed)
            transition.complete_step(detail={"attempt": 1})
            await transition.advance(scan=True)
            saved = await transition.save(expect_owner="owner-a")
        assert saved.status is InstanceStatus.COMPLETED and saved.lease_owner is None
        assert kinds(await rt.workflows.history(started.instance_id))[-1] == ("completed", None)
