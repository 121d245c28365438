"""Closing a runtime first lets its running durable consumers handle what is already committed.

``rt.close()`` (and the end of ``async with``) reads each tenant's log head, waits until every
durable consumer running in this process has handled the events up to it, then stops them;
the wait is bounded by ``stop_grace_seconds``. A consumer whose lease another process holds,
or a runtime without a worker, does not wait. Both backends, via ``database_url``.
"""

from __future__ import annotations

import asyncio
import time

import cowork
from cowork import EventEnvelope
from tests.support.events import consumer_info, subscribe_fast

N = 50


async def _checkpoint(database_url: str, consumer_id: str) -> cowork.ConsumerInfo:
    async with await cowork.open(database_url, tenant_id="t1", worker=False) as rt:
        return await consumer_info(rt, consumer_id)


async def test_close_delivers_every_event_published_just_before(database_url: str) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    rt = await cowork.open(database_url, tenant_id="t1")
    await rt.events.subscribe("order:*", handler, consumer_id="closer")
    published = [await rt.events.publish("order:placed", {"i": i}) for i in range(N)]
    await rt.close()

    assert seen == [e.event_id for e in published]
    info = await _checkpoint(database_url, "closer")
    assert (info.last_position, info.lag) == (published[-1].position, 0)


async def test_close_at_the_end_of_a_transaction_block(database_url: str) -> None:
    """The README's first example: publish in a transaction, leave ``async with`` at once."""
    seen: list[int] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.payload["i"])

    async with await cowork.open(database_url, tenant_id="t1") as rt:
        await rt.events.subscribe("notes:*", handler, consumer_id="notes")
        async with rt.transaction() as tx:
            for i in range(N):
                await tx.events.publish("notes:written", {"i": i})
        # Not ours: the checkpoint still has to move past it before the close.
        last = await rt.events.publish("other:thing", {})

    assert seen == list(range(N))
    info = await _checkpoint(database_url, "notes")
    assert (info.last_position, info.lag) == (last.position, 0)


async def test_close_waits_no_longer_than_the_grace_and_the_rest_comes_later(
    database_url: str,
) -> None:
    first: list[int] = []

    async def slow(event: EventEnvelope) -> None:
        await asyncio.sleep(0.1)
        first.append(event.payload["i"])

    rt = await cowork.open(database_url, tenant_id="t1", stop_grace_seconds=0.5)
    await rt.events.subscribe("order:*", slow, consumer_id="slow")
    for i in range(N):  # 5 s of handling, far more than the grace
        await rt.events.publish("order:placed", {"i": i})
    started = time.monotonic()
    await rt.close()
    assert time.monotonic() - started < 2.0
    assert 0 < len(first) < N

    rest: list[int] = []

    async def quick(event: EventEnvelope) -> None:
        rest.append(event.payload["i"])

    async with await cowork.open(database_url, tenant_id="t1") as again:
        await again.events.subscribe("order:*", quick, consumer_id="slow")
    # At least once: what the first process had not checkpointed comes again, nothing is lost.
    assert set(first) | set(rest) == set(range(N))
    assert rest == sorted(rest) and rest[-1] == N - 1


async def test_close_does_not_wait_for_a_consumer_another_runtime_holds(
    database_url: str,
) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    async with await cowork.open(database_url, tenant_id="t1") as holder:
        held = await subscribe_fast(holder, "shared", "order:*", handler)
        await held.wait_until_caught_up(5)
        assert held.active
        other = await cowork.open(database_url, tenant_id="t1", stop_grace_seconds=5)
        standby = await subscribe_fast(other, "shared", "order:*", handler)
        for i in range(N):
            await other.events.publish("order:placed", {"i": i})
        started = time.monotonic()
        await other.close()  # its runner never got the lease: the holder delivers
        assert time.monotonic() - started < 2.0
        assert not standby.active
