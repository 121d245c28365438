"""One worker runs up to ``workflow_concurrency`` workflow steps at once on PostgreSQL; each
step still runs once, and a stop lets running steps finish within the grace period."""

from __future__ import annotations

import asyncio

import cowork
from cowork import ActionContext, ActionStep, InstanceStatus, WorkflowDefinition
from tests.support.events import eventually

SLOW = WorkflowDefinition(
    workflow_id="slow",
    version=1,
    name="slow",
    correlation=("key",),
    steps=(ActionStep(name="work", action="slow.work", max_attempts=1),),
)


class _Overlap:
    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.runs: list[str] = []

    async def action(self, ctx: ActionContext) -> dict[str, int]:
        self.now += 1
        self.most = max(self.most, self.now)
        self.runs.append(ctx.instance.instance_id)
        try:
            await asyncio.sleep(0.3)
        finally:
            self.now -= 1
        return {"done": 1}


async def _run_six(url: str, concurrency: int) -> _Overlap:
    overlap = _Overlap()
    async with await cowork.open(
        url, tenant_id="conc", worker=True, workflow_concurrency=concurrency
    ) as rt:
        rt.workflows.register_action("slow.work", overlap.action)
        await rt.workflows.register(SLOW)
        started = [await rt.workflows.start("slow", input={"key": f"k{i}"}) for i in range(6)]
        for instance in started:
            done = await rt.workflows.wait(instance.instance_id, timeout=20)
            assert done.status is InstanceStatus.COMPLETED
            assert done.data == {"done": 1}
        assert sorted(overlap.runs) == sorted(i.instance_id for i in started)  # once each
    return overlap


async def test_steps_of_different_instances_run_at_once(pg_url: str) -> None:
    overlap = await _run_six(pg_url, 4)
    assert overlap.most >= 2, "no two steps ever ran at the same time"
    assert overlap.most <= 4


async def test_a_concurrency_of_one_runs_one_step_at_a_time(pg_url: str) -> None:
    overlap = await _run_six(pg_url, 1)
    assert overlap.most == 1


async def test_a_stop_lets_running_steps_finish(pg_url: str) -> None:
    overlap = _Overlap()
    rt = await cowork.open(pg_url, tenant_id="conc", worker=True, workflow_concurrency=4)
    try:
        rt.workflows.register_action("slow.work", overlap.action)
        await rt.workflows.register(SLOW)
        started = [await rt.workflows.start("slow", input={"key": f"s{i}"}) for i in range(3)]
        await eventually(lambda: len(overlap.runs) == 3, what="three steps running")
    finally:
        await rt.close()  # within the grace period the running steps complete
    async with await cowork.open(pg_url, tenant_id="conc", worker=False) as check:
        for instance in started:
            got = await check.workflows.get(instance.instance_id)
            assert got is not None and got.status is InstanceStatus.COMPLETED
            assert got.lease_owner is None
