"""Group commit on PostgreSQL: concurrent workflow starts and step checkpoints share
transactions, and every caller still gets exactly its own outcome."""

from __future__ import annotations

import asyncio
from collections import Counter

import cowork
from cowork import ActionContext, ActionStep, InstanceStatus, WorkflowDefinition

THREE = WorkflowDefinition(
    workflow_id="grouped",
    version=1,
    name="grouped",
    steps=tuple(ActionStep(name=f"s{i}", action="grouped.noop") for i in range(3)),
)


async def _noop(ctx: ActionContext) -> dict[str, str]:
    return {ctx.step_name: ctx.idempotency_key}


async def test_concurrent_starts_share_transactions_and_each_gets_its_instance(
    pg_url: str,
) -> None:
    async with await cowork.open(pg_url, tenant_id="grp", worker=False) as rt:
        await rt.workflows.register(THREE)
        trips = rt._core.trips
        before = (trips.trips, trips.statements)
        started = await asyncio.gather(
            *(rt.workflows.start("grouped", input={"n": n}) for n in range(40))
        )
        sent, statements = trips.trips - before[0], trips.statements - before[1]
        assert statements == 40
        assert sent < statements / 2, f"{sent} transactions for {statements} starts"
        assert [i.state["input"]["n"] for i in started] == list(range(40))
        assert len({i.instance_id for i in started}) == 40
        events = await rt.events.read(limit=1000)
        starts = Counter(
            e.payload["instanceId"] for e in events if e.event_type == "workflow:started"
        )
        assert starts == Counter({i.instance_id: 1 for i in started})
        for instance in started:
            stored = await rt.workflows.get(instance.instance_id)
            assert stored is not None and stored.state["input"] == instance.state["input"]


async def test_one_key_started_twice_in_one_group_is_one_instance(pg_url: str) -> None:
    async with await cowork.open(pg_url, tenant_id="grp", worker=False) as rt:
        await rt.workflows.register(THREE)
        started = await asyncio.gather(
            *(rt.workflows.start("grouped", idempotency_key=f"k{n % 5}") for n in range(20))
        )
        assert len({i.instance_id for i in started}) == 5
        for n, instance in enumerate(started):
            assert instance.instance_id == started[n % 5].instance_id
        assert len(await rt.workflows.list(workflow_id="grouped", limit=100)) == 5


async def test_checkpoints_of_many_lanes_share_transactions(pg_url: str) -> None:
    async with await cowork.open(
        pg_url, tenant_id="grp", worker=True, workflow_concurrency=16
    ) as rt:
        rt.workflows.register_action("grouped.noop", _noop)
        await rt.workflows.register(THREE)
        started = await asyncio.gather(*(rt.workflows.start("grouped") for _ in range(48)))
        for instance in started:
            done = await rt.workflows.wait(instance.instance_id, timeout=60)
            assert done.status is InstanceStatus.COMPLETED, done
            assert done.data == {f"s{i}": f"{instance.instance_id}:s{i}:1" for i in range(3)}, (
                "a step's result is missing or came from another instance"
            )
            history = await rt.workflows.history(instance.instance_id)
            completed = [h.step_name for h in history if h.kind == "step_completed"]
            assert completed == ["s0", "s1", "s2"], history
        trips = rt._core.trips
        # 48 starts + 144 checkpoints went through the group committer.
        assert trips.statements >= 48 + 144
        assert trips.trips < trips.statements, "no two statements ever shared a transaction"
