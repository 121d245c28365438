"""Workflow steps sized for agents, on both backends.

An action runs outside any database transaction: what it must write exactly once goes through
``ctx.at_completion`` (or a ``transactional=True`` step); a trigger reaches its action; the
version a trigger starts does not depend on when it is handled; a process claims only steps
whose action it registered; cancel reaches a running action; per-step timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cowork
from cowork import (
    ActionContext,
    ActionStep,
    EventEnvelope,
    InstanceStatus,
    TransactionContext,
    WaitStep,
    WorkflowDefinition,
)
from tests.support.events import eventually

DEADLINE = 15.0
TENANT = "agents"


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as runtime:
        yield runtime


def _definition(workflow_id: str, *steps: Any, version: int = 1, **kw: Any) -> WorkflowDefinition:
    return WorkflowDefinition(
        workflow_id=workflow_id,
        version=version,
        name=workflow_id,
        correlation=kw.pop("correlation", ("key",)),
        steps=tuple(steps),
        **kw,
    )


async def _events(rt: cowork.Runtime, event_type: str) -> list[EventEnvelope]:
    return [e async for e in rt.events.iterate() if e.event_type == event_type]


async def _started_by(rt: cowork.Runtime, workflow_id: str, event: EventEnvelope) -> Any:
    async def found() -> Any:
        return await rt.workflows.for_trigger(workflow_id, event.event_id)

    return await eventually(found, timeout=DEADLINE, what=f"{workflow_id} started")


# -- a trigger reaches its action ---------------------------------------------------------------
async def test_a_trigger_reaches_its_action_as_ctx_trigger_and_input(rt: cowork.Runtime) -> None:
    seen: dict[str, Any] = {}

    @rt.workflows.action("render")
    async def render(ctx: ActionContext) -> dict[str, Any]:
        assert ctx.trigger is not None
        seen.update(
            trigger_type=ctx.trigger.event_type,
            trigger_payload=dict(ctx.trigger.payload),
            trigger_id=ctx.trigger.event_id,
            input=ctx.input,
            key=ctx.idempotency_key,
        )
        return {"rendered": ctx.input["workspaceId"]}

    await rt.workflows.register(
        _definition(
            "publish",
            ActionStep(name="render", action="render"),
            trigger="notes:written",
            correlation=("workspaceId",),
        )
    )
    event = await rt.events.publish("notes:written", {"workspaceId": "w-1", "n": 3})
    instance = await _started_by(rt, "publish", event)
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED, done.last_error
    assert seen["trigger_type"] == "notes:written"
    assert seen["trigger_id"] == event.event_id
    assert seen["trigger_payload"] == {"workspaceId": "w-1", "n": 3}
    assert seen["input"] == {"workspaceId": "w-1", "n": 3}
    assert seen["key"] == f"{instance.instance_id}:render:1"
    assert done.data == {"rendered": "w-1"}


async def test_a_manual_start_has_no_trigger_and_its_input(rt: cowork.Runtime) -> None:
    seen: list[Any] = []

    @rt.workflows.action("manual.act")
    async def act(ctx: ActionContext) -> None:
        seen.append((ctx.trigger, ctx.input))

    await rt.workflows.register(_definition("manual", ActionStep(name="a", action="manual.act")))
    started = await rt.workflows.start("manual", input={"key": "k1", "x": 1})
    done = await rt.workflows.wait(started.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    assert seen == [(None, {"key": "k1", "x": 1})]


# -- versions -----------------------------------------------------------------------------------
async def test_a_trigger_starts_the_version_registered_before_it_in_log_order(
    database_url: str,
) -> None:
    """A trigger published while v1 was the latest, handled after v2 was registered, starts
    v1; a trigger published after v2 starts v2."""
    v1 = _definition(
        "versioned", WaitStep(name="w", event="never:happens"), trigger="job:queued", version=1
    )
    v2 = _definition(
        "versioned", WaitStep(name="w2", event="never:happens"), trigger="job:queued", version=2
    )
    # No engine consumer runs in this process: the triggers wait in the log.
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as client:
        await client.workflows.register(v1)
        early = await client.events.publish("job:queued", {"key": "early"})
        await client.workflows.register(v2)
        late = await client.events.publish("job:queued", {"key": "late"})
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as worker:
        first = await _started_by(worker, "versioned", early)
        second = await _started_by(worker, "versioned", late)
        assert first.workflow_version == 1
        assert second.workflow_version == 2
        # A start by hand takes the latest at call time.
        manual = await worker.workflows.start("versioned", input={"key": "m"})
        assert manual.workflow_version == 2


# -- exactly-once writes, outside the action's await --------------------------------------------
async def test_completion_writes_commit_with_the_step_and_not_before(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="Out", actor="alice")
    release = asyncio.Event()
    registered = asyncio.Event()

    @rt.workflows.action("slow.write")
    async def slow(ctx: ActionContext) -> dict[str, Any]:
        @ctx.at_completion
        async def write(tx: TransactionContext) -> None:
            await tx.blackboard.put(ws.workspace_id, "out", {"ok": True}, actor="agent")
            await tx.events.publish("agent:wrote", {"key": ctx.input["key"]})

        registered.set()
        await release.wait()  # the model call
        return {"done": True}

    await rt.workflows.register(_definition("slowflow", ActionStep(name="s", action="slow.write")))
    started = await rt.workflows.start("slowflow", input={"key": "k"})
    await asyncio.wait_for(registered.wait(), DEADLINE)
    await asyncio.sleep(0.3)
    assert await rt.blackboard.get(ws.workspace_id, "out") is None  # nothing before completion
    assert await _events(rt, "agent:wrote") == []
    release.set()
    done = await rt.workflows.wait(started.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED
    entry = await rt.blackboard.get(ws.workspace_id, "out")
    assert entry is not None and entry.version == 1
    wrote = await _events(rt, "agent:wrote")
    completed = [
        e
        for e in await _events(rt, "workflow:step:completed")
        if e.payload["instanceId"] == started.instance_id
    ]
    assert len(wrote) == 1 and len(completed) == 1
    assert wrote[0].tx_id == completed[0].tx_id  # one commit (PostgreSQL; 0 on SQLite)


async def test_ctx_tx_in_an_ordinary_action_says_what_to_use(rt: cowork.Runtime) -> None:
    @rt.workflows.action("wrong.tx")
    async def wrong(ctx: ActionContext) -> None:
        await ctx.tx.events.publish("x:y", {})

    await rt.workflows.register(
        _definition("wrongtx", ActionStep(name="w", action="wrong.tx", max_attempts=1))
    )
    started = await rt.workflows.start("wrongtx", input={"key": "k"})
    failed = await rt.workflows.wait(started.instance_id, timeout=DEADLINE)
    assert failed.status is InstanceStatus.FAILED
    assert "WorkflowError" in (failed.last_error or "")
    assert "at_completion" in (failed.last_error or "")
    assert "transactional=True" in (failed.last_error or "")


# -- cancel and timeouts ------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["same-process", "other-process"])
async def test_cancel_reaches_a_running_action_within_a_second(
    database_url: str, where: str
) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as rt:
        ws = await rt.workspaces.create(name="Cancel", actor="alice")
        running = asyncio.Event()
        cancelled_at: list[float] = []

        @rt.workflows.action("long.call")
        async def long_call(ctx: ActionContext) -> None:
            @ctx.at_completion
            async def write(tx: TransactionContext) -> None:
                await tx.blackboard.put(ws.workspace_id, "partial", {"n": 1}, actor="agent")

            running.set()
            try:
                await asyncio.sleep(30)  # a 30 s model call
            except asyncio.CancelledError:
                cancelled_at.append(time.monotonic())
                raise

        await rt.workflows.register(
            _definition("cancelme", ActionStep(name="call", action="long.call"))
        )
        started = await rt.workflows.start("cancelme", input={"key": "c"})
        await asyncio.wait_for(running.wait(), DEADLINE)
        if where == "same-process":
            canceller = rt
            other = None
        else:
            other = await cowork.open(database_url, tenant_id=TENANT, worker=False)
            canceller = other
        try:
            requested = time.monotonic()
            cancelled = await canceller.workflows.cancel(started.instance_id, reason="stop")
            assert cancelled.status is InstanceStatus.CANCELLED
            await eventually(lambda: cancelled_at, timeout=5, what="CancelledError in the action")
            assert cancelled_at[0] - requested < 1.0
        finally:
            if other is not None:
                await other.close()
        await asyncio.sleep(0.3)
        final = await rt.workflows.get(started.instance_id)
        assert final is not None and final.status is InstanceStatus.CANCELLED
        assert await rt.blackboard.get(ws.workspace_id, "partial") is None
        history = await rt.workflows.history(started.instance_id)
        assert [h.kind for h in history] == ["started", "cancelled"]


async def test_a_step_timeout_fails_the_attempt_and_retries(rt: cowork.Runtime) -> None:
    calls: list[int] = []

    @rt.workflows.action("sometimes.slow")
    async def sometimes_slow(ctx: ActionContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            await asyncio.sleep(10)
        return {"attempt": ctx.attempt}

    await rt.workflows.register(
        _definition(
            "timed",
            ActionStep(
                name="t",
                action="sometimes.slow",
                timeout_seconds=0.3,
                max_attempts=2,
                backoff_seconds=0.05,
            ),
        )
    )
    started = await rt.workflows.start("timed", input={"key": "t"})
    done = await rt.workflows.wait(started.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED and done.data == {"attempt": 2}
    assert calls == [1, 2]
    history = await rt.workflows.history(started.instance_id)
    retry = [h for h in history if h.kind == "step_retry"]
    assert len(retry) == 1 and "timed out after 0.3 s" in retry[0].detail["error"]


# -- routing ------------------------------------------------------------------------------------
async def test_a_process_without_the_handler_never_touches_the_steps(database_url: str) -> None:
    """Acceptance 4: a second runtime with worker=True and no handlers runs throughout; ten
    triggered instances all complete, and none of their steps ran or failed there."""
    definition = _definition(
        "routed",
        ActionStep(name="one", action="routed.one"),
        ActionStep(name="two", action="routed.two"),
        trigger="routed:go",
    )
    async with (
        await cowork.open(database_url, tenant_id=TENANT, worker=True) as idle,
        await cowork.open(database_url, tenant_id=TENANT, worker=True) as worker,
    ):
        ran_in: list[str] = []

        async def step(ctx: ActionContext) -> dict[str, Any]:
            ran_in.append(ctx.step_name)
            return {ctx.step_name: True}

        worker.workflows.register_action("routed.one", step)
        worker.workflows.register_action("routed.two", step)
        await idle.workflows.register(definition)
        triggers = [await idle.events.publish("routed:go", {"key": f"k{i}"}) for i in range(10)]
        instances = [await _started_by(worker, "routed", t) for t in triggers]
        for instance in instances:
            done = await worker.workflows.wait(instance.instance_id, timeout=DEADLINE)
            assert done.status is InstanceStatus.COMPLETED, done.last_error
            history = await worker.workflows.history(instance.instance_id)
            workers = {h.detail.get("worker") for h in history if h.kind == "step_completed"}
            assert workers == {worker._core.worker_id}
            assert not [h for h in history if h.kind in ("step_retry", "failed")]
        assert sorted(ran_in) == ["one"] * 10 + ["two"] * 10


async def test_registering_the_same_handler_again_is_harmless(rt: cowork.Runtime) -> None:
    def make() -> Any:
        async def handler(ctx: ActionContext) -> None:
            return None

        return handler

    rt.workflows.register_action("again", make())
    rt.workflows.register_action("again", make())  # same code (an --app setup per tenant)
    rt.for_tenant("other").workflows.register_action("again", make())

    async def different(ctx: ActionContext) -> None:
        return None

    with pytest.raises(cowork.ValidationError, match="already registered"):
        rt.workflows.register_action("again", different)


# -- tx.workflows.start -------------------------------------------------------------------------
async def test_a_start_inside_a_transaction_commits_or_rolls_back_with_it(
    rt: cowork.Runtime,
) -> None:
    await rt.workflows.register(_definition("txstart", WaitStep(name="w", event="never:happens")))
    with pytest.raises(RuntimeError):
        async with rt.transaction() as tx:
            gone = await tx.workflows.start("txstart", input={"key": "rolled-back"})
            raise RuntimeError("roll back")
    assert await rt.workflows.get(gone.instance_id) is None

    async with rt.transaction() as tx:
        ws = await tx.workspaces.create(name="With a flow", actor="alice")
        kept = await tx.workflows.start("txstart", input={"key": ws.workspace_id})
    stored = await rt.workflows.get(kept.instance_id)
    assert stored is not None and stored.correlation_key == f'["{ws.workspace_id}"]'
    waiting = await rt.workflows.wait(
        kept.instance_id, statuses=[InstanceStatus.WAITING], timeout=DEADLINE
    )
    assert waiting.status is InstanceStatus.WAITING


# -- built-ins ----------------------------------------------------------------------------------
async def test_initial_members_satisfy_the_provisioning_member_step(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="Team", actor="alice", members=["bob", "carol"])
    added = [
        e.payload["memberId"]
        for e in await _events(rt, "workspace:member:added")
        if e.payload["workspaceId"] == ws.workspace_id
    ]
    assert added == ["bob", "carol"]
    created = [
        e
        for e in await _events(rt, "workspace:created")
        if e.payload["workspaceId"] == ws.workspace_id
    ]
    instance = await _started_by(rt, "workspace-provisioning", created[0])

    async def at_artifact_step() -> bool:
        current = await rt.workflows.get(instance.instance_id)
        return current is not None and current.step_index == 2

    await eventually(at_artifact_step, timeout=DEADLINE, what="member step passed")
    await rt.blackboard.put(ws.workspace_id, "doc", {"v": 1}, actor="bob")
    done = await rt.workflows.wait(instance.instance_id, timeout=DEADLINE)
    assert done.status is InstanceStatus.COMPLETED


# -- leases while a long step runs ----------------------------------------------------------------
async def test_a_long_step_keeps_its_lease_and_runs_once(database_url: str) -> None:
    """The lease (1 s here) is renewed while a 3 s action runs: another worker offering the
    same action, running throughout, never takes the step over."""
    runs: list[str] = []

    async def long_call(ctx: ActionContext) -> None:
        runs.append(ctx.idempotency_key)
        await asyncio.sleep(3)

    options = {"workflow_lease_seconds": 1.0}
    async with (
        await cowork.open(database_url, tenant_id=TENANT, worker=True, **options) as first,
        await cowork.open(database_url, tenant_id=TENANT, worker=True, **options) as second,
    ):
        first.workflows.register_action("lease.long", long_call)
        second.workflows.register_action("lease.long", long_call)
        await first.workflows.register(
            _definition("leased-long", ActionStep(name="call", action="lease.long"))
        )
        started = await first.workflows.start("leased-long", input={"key": "l"})
        done = await first.workflows.wait(started.instance_id, timeout=DEADLINE)
        assert done.status is InstanceStatus.COMPLETED
    assert len(runs) == 1, f"the step ran {len(runs)} times: its lease was not renewed"


async def test_a_worker_that_loses_its_lease_cancels_its_action_and_commits_nothing(
    database_url: str,
) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=True) as rt:
        ws = await rt.workspaces.create(name="Fenced", actor="alice")
        running = asyncio.Event()
        cancelled = asyncio.Event()

        @rt.workflows.action("fenced.call")
        async def call(ctx: ActionContext) -> dict[str, Any]:
            @ctx.at_completion
            async def write(tx: TransactionContext) -> None:
                await tx.blackboard.put(ws.workspace_id, "fenced", {"n": 1}, actor="agent")

            running.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return {"finished": True}

        await rt.workflows.register(
            _definition("fenced", ActionStep(name="call", action="fenced.call"))
        )
        started = await rt.workflows.start("fenced", input={"key": "f"})
        await asyncio.wait_for(running.wait(), DEADLINE)
        # Another worker takes the lease over (as after a partition that outlasted the lease).
        await _steal_lease(database_url, started.instance_id)
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.sleep(0.3)
        current = await rt.workflows.get(started.instance_id)
        assert current is not None and current.status is InstanceStatus.RUNNING
        assert current.step_index == 0 and current.data == {}
        assert current.lease_owner == "thief"
        assert await rt.blackboard.get(ws.workspace_id, "fenced") is None


async def _steal_lease(url: str, instance_id: str) -> None:
    """Lease the instance to another owner for an hour, behind the runtime's back."""
    if url.startswith("postgresql"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "UPDATE cowork_workflow_instance SET lease_owner = 'thief', "
                "lease_expires_at = now() + interval '1 hour' WHERE instance_id = %s",
                (instance_id,),
            )
        return
    import sqlite3

    def steal() -> None:  # on a thread: the runtime's loop must go on to free the write lock
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10) as conn:
            conn.execute(
                "UPDATE cowork_workflow_instance SET lease_owner = 'thief', "
                "lease_expires_at = '2099-01-01T00:00:00.000000Z' WHERE instance_id = ?",
                (instance_id,),
            )

    await asyncio.to_thread(steal)


# -- steps no worker offers are reported --------------------------------------------------------
async def test_an_idle_worker_logs_once_a_step_that_waits_for_an_action_it_lacks(
    rt: cowork.Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cowork.workflows import executor

    monkeypatch.setattr(executor, "PENDING_WARN_SECONDS", 0.2)
    monkeypatch.setattr(executor, "_PENDING_CHECK_SECONDS", 0.1)
    await rt.workflows.register(
        _definition("unserved", ActionStep(name="call", action="nobody.offers"))
    )
    await rt.workflows.start("unserved", input={"key": "u1"})
    await rt.workflows.start("unserved", input={"key": "u2"})
    caplog.set_level("WARNING", logger="cowork.workflows")
    await asyncio.sleep(2.0)
    lines = [r.getMessage() for r in caplog.records if "nobody.offers" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "2 workflow step(s)" in lines[0] and "for a worker with action" in lines[0]
