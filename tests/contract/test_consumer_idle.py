"""A durable consumer at the head of the log waits for commits it wants.

Commits of only skipped event types (other patterns, or types the pre-filter refuses) do not
make it re-read the log, and the checkpoint past such events is written lazily (within
``checkpoint_interval``, or when the holder stops) instead of once per page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import cowork
from cowork.consumers import DurableSubscription
from cowork.consumers import runner as runner_module
from cowork.workflows.manager import WorkflowManager
from tests.support.events import consumer_info, eventually, read_through, subscribe_fast


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1") as runtime:
        yield runtime


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The consumer ids of the log pages consumer runners read, one entry per page.

    Every runner of the runtime is counted, the workflow engine's own consumer too; a test
    looks at the entries of the consumer it watches."""
    counted: list[str] = []
    original = runner_module.ConsumerRunner._process_page

    async def counting(self: runner_module.ConsumerRunner) -> int:
        counted.append(self.consumer_id)
        return await original(self)

    monkeypatch.setattr(runner_module.ConsumerRunner, "_process_page", counting)
    return counted


async def _at(rt: cowork.Runtime, consumer_id: str, position: int) -> bool:
    return (await consumer_info(rt, consumer_id)).last_position == position


async def test_commits_of_skipped_types_do_not_make_it_read(
    rt: cowork.Runtime, reads: list[str]
) -> None:
    handled: list[str] = []
    sub = await subscribe_fast(
        rt, "orders", "order:*", lambda e: handled.append(e.event_type), poll_interval=30.0
    )
    first = await rt.events.publish("order:placed", {"i": 0})
    await eventually(lambda: handled == ["order:placed"], what="the first order")
    await eventually(lambda: _at(rt, "orders", first.position), what="checkpoint at first")
    before = reads.count("orders")
    for i in range(40):
        await rt.events.publish("invoice:sent", {"i": i})
    # A read per skipped commit would be 40. A few may still come from the wake-up of the first
    # order on a loaded machine (a wake that found nothing visible yet re-reads with a short
    # backoff); none of them is caused by the invoices.
    extra = reads.count("orders") - before
    assert extra <= 5, f"the consumer re-read the log for skipped commits ({extra} reads)"
    last = await rt.events.publish("order:shipped", {"i": 1})
    await eventually(lambda: handled == ["order:placed", "order:shipped"], what="next order")
    await eventually(lambda: _at(rt, "orders", last.position), what="checkpoint at last")
    await sub.stop()


async def test_the_checkpoint_past_skipped_events_is_written_within_the_interval(
    rt: cowork.Runtime,
) -> None:
    sub = await subscribe_fast(rt, "picky", "order:*", lambda e: None, checkpoint_interval=0.2)
    await rt.events.publish("order:placed")
    skipped = [await rt.events.publish("invoice:sent", {"i": i}) for i in range(5)]
    await read_through(rt, skipped[-1])
    await sub.wait_until_caught_up(10)  # reads the skipped ones: they wake nobody, the poll does
    await eventually(
        lambda: _at(rt, "picky", skipped[-1].position), timeout=10, what="lazy checkpoint"
    )
    info = await consumer_info(rt, "picky")
    assert info.lag == 0
    await sub.stop()


async def _owing_a_checkpoint(
    rt: cowork.Runtime, consumer_id: str
) -> tuple[DurableSubscription, int]:
    """A consumer at the head of the log that skipped events and has not yet written the
    checkpoint past them (its interval is an hour); returns it and the position it owes."""
    sub = await subscribe_fast(rt, consumer_id, "order:*", lambda e: None, checkpoint_interval=3600)
    placed = await rt.events.publish("order:placed")
    await eventually(lambda: _at(rt, consumer_id, placed.position), what="checkpoint at order")
    skipped = [await rt.events.publish("invoice:sent", {"i": i}) for i in range(3)]
    await read_through(rt, skipped[-1])
    await sub.wait_until_caught_up(10)
    assert (await consumer_info(rt, consumer_id)).last_position == placed.position  # owed
    return sub, skipped[-1].position


async def test_stopping_writes_the_pending_checkpoint(rt: cowork.Runtime) -> None:
    sub, owed = await _owing_a_checkpoint(rt, "late")
    await sub.stop()
    assert (await consumer_info(rt, "late")).last_position == owed


async def test_a_redrive_request_keeps_the_pending_checkpoint(rt: cowork.Runtime) -> None:
    """An operator's re-drive (of nothing parked here) must not drop the checkpoint the
    consumer owes for the events it skipped: it is still written when the consumer stops."""
    sub, owed = await _owing_a_checkpoint(rt, "kept")
    assert await rt.consumers.redrive("kept") == 0
    await sub.stop()
    assert (await consumer_info(rt, "kept")).last_position == owed


async def test_the_workflow_executor_sleeps_through_other_commits(rt: cowork.Runtime) -> None:
    if not rt._core.run_worker:
        pytest.skip("this runtime runs no workflow executor")
    engine = await WorkflowManager.of(rt._core).engine(rt.scope)
    waiter = engine._waiter
    await waiter.wait(0.001)  # clear a pending wake-up
    await rt.events.publish("invoice:sent")
    assert not await waiter.wait(0.05)
    await rt.events.publish("workflow:custom:thing")
    assert await waiter.wait(1.0)
