"""Durable consumers contract: checkpoints, leases, retries, dead letters.

Runs on both backends via ``database_url``. Most tests use ``subscribe_fast`` (test-sized
``ConsumerOptions`` through the runtime's internal consumer manager); the plain
``rt.events.subscribe`` path is covered too. Conditions are polled with a deadline, because on
PostgreSQL an event becomes readable only once no older transaction in the cluster is open.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import cowork
from cowork import EventEnvelope, TransactionContext
from tests.support.events import consumer_info, eventually, read_through, subscribe_fast


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1") as runtime:
        yield runtime


async def _publish(
    rt: cowork.Runtime, n: int, event_type: str = "order:placed", **payload: object
) -> list[EventEnvelope]:
    return [await rt.events.publish(event_type, {"i": i, **payload}) for i in range(n)]


async def _settled(rt: cowork.Runtime, consumer_id: str, head: EventEnvelope) -> None:
    """Wait until the consumer's checkpoint is at ``head`` with no lag."""

    async def at_head() -> bool:
        info = await consumer_info(rt, consumer_id)
        return info.last_position == head.position and info.lag == 0

    await eventually(at_head, what=f"{consumer_id} checkpoint at {head.position}")


# -- catch-up, live, start ---------------------------------------------------------------------


async def test_catches_up_then_follows_live_exactly_once_in_order(rt: cowork.Runtime) -> None:
    before = await _publish(rt, 5)
    await rt.events.publish("invoice:sent")  # does not match the pattern
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    sub = await rt.events.subscribe("order:*", handler, consumer_id="orders")
    assert isinstance(sub, cowork.DurableSubscription)
    await eventually(lambda: len(seen) >= 5, what="catch-up")
    live = await _publish(rt, 5)
    live += await _publish(rt, 2, "order:line:added")
    expected = [e.event_id for e in before + live]
    await eventually(lambda: len(seen) >= len(expected), what="live delivery")
    await sub.wait_until_caught_up(2)
    await _settled(rt, "orders", live[-1])
    assert seen == expected
    assert sub.handled == len(expected) and sub.parked == 0
    info = await consumer_info(rt, "orders")
    assert info.pattern == "order:*" and info.parked == 0
    assert info.lease_owner is not None  # held by this process while running


async def test_start_now_skips_history_and_beginning_does_not(rt: cowork.Runtime) -> None:
    old = await _publish(rt, 3)
    seen_now: list[str] = []
    seen_all: list[str] = []

    async def on_now(event: EventEnvelope) -> None:
        seen_now.append(event.event_id)

    async def on_all(event: EventEnvelope) -> None:
        seen_all.append(event.event_id)

    await read_through(rt, old[-1])  # "now" means after what a reader can see now
    sub_now = await subscribe_fast(rt, "from-now", "order:*", on_now, start="now")
    sub_all = await subscribe_fast(rt, "from-start", "order:*", on_all, start="beginning")
    new = await _publish(rt, 2)
    await eventually(lambda: len(seen_all) >= 5 and len(seen_now) >= 2, what="deliveries")
    await sub_now.wait_until_caught_up(2)
    await sub_all.wait_until_caught_up(2)
    assert seen_now == [e.event_id for e in new]
    assert seen_all == [e.event_id for e in old + new]


async def test_plain_function_handler(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    published = await _publish(rt, 3)
    sub = await rt.events.subscribe("order:*", handler, consumer_id="plain")
    await eventually(lambda: len(seen) >= 3, what="plain handler deliveries")
    await sub.wait_until_caught_up(2)
    assert seen == [e.event_id for e in published]
    await _settled(rt, "plain", published[-1])


# -- checkpoint persistence --------------------------------------------------------------------


async def test_restart_resumes_after_the_checkpoint(database_url: str) -> None:
    first: list[str] = []
    second: list[str] = []

    async def on_first(event: EventEnvelope) -> None:
        first.append(event.event_id)

    async def on_second(event: EventEnvelope) -> None:
        second.append(event.event_id)

    async with await cowork.open(database_url, tenant_id="t1") as rt:
        early = await _publish(rt, 4)
        sub = await subscribe_fast(rt, "billing", "order:*", on_first)
        await eventually(lambda: len(first) >= 4, what="first run")
        await sub.wait_until_caught_up(2)
        await _settled(rt, "billing", early[-1])
    assert first == [e.event_id for e in early]

    async with await cowork.open(database_url, tenant_id="t1") as rt:
        while_down = await _publish(rt, 3)
        sub = await subscribe_fast(rt, "billing", "order:*", on_second)
        await eventually(lambda: len(second) >= 3, what="delivery after restart")
        later = await _publish(rt, 2)
        await eventually(lambda: len(second) >= 5, what="live delivery after restart")
        await sub.wait_until_caught_up(2)
        await _settled(rt, "billing", later[-1])
    assert second == [e.event_id for e in while_down + later]
    assert first == [e.event_id for e in early]


async def test_changed_pattern_needs_an_explicit_reset(rt: cowork.Runtime) -> None:
    orders = await _publish(rt, 2)
    invoices = await _publish(rt, 2, "invoice:sent")
    seen_old: list[str] = []
    seen_new: list[str] = []

    async def on_old(event: EventEnvelope) -> None:
        seen_old.append(event.event_id)

    async def on_new(event: EventEnvelope) -> None:
        seen_new.append(event.event_id)

    sub = await subscribe_fast(rt, "c1", "order:*", on_old)
    await eventually(lambda: len(seen_old) >= 2, what="orders handled")
    await sub.stop()
    assert seen_old == [e.event_id for e in orders]

    with pytest.raises(cowork.ValidationError, match="pattern"):
        await subscribe_fast(rt, "c1", "*", on_new)
    assert seen_new == []
    assert (await consumer_info(rt, "c1")).pattern == "order:*"

    await rt.consumers.reset("c1", pattern="*", to="beginning")
    assert (await consumer_info(rt, "c1")).pattern == "*"
    sub = await subscribe_fast(rt, "c1", "*", on_new)
    await eventually(lambda: len(seen_new) >= 4, what="redelivery from the beginning")
    await sub.wait_until_caught_up(2)
    assert sorted(seen_new) == sorted(e.event_id for e in orders + invoices)
    assert len(seen_new) == 4


async def test_reset_and_redrive_of_an_unknown_consumer_are_not_found(rt: cowork.Runtime) -> None:
    with pytest.raises(cowork.NotFound):
        await rt.consumers.reset("nobody", to="beginning")
    with pytest.raises(cowork.NotFound):
        await rt.consumers.redrive("nobody")


# -- retries, dead letters, redrive ------------------------------------------------------------


async def test_failing_event_is_retried_parked_and_redriven(rt: cowork.Runtime) -> None:
    attempts: Counter[str] = Counter()
    handled: list[str] = []
    fixed = False

    async def handler(event: EventEnvelope) -> None:
        attempts[event.event_id] += 1
        if event.payload.get("poison") and not fixed:
            raise RuntimeError("cannot digest poison")
        handled.append(event.event_id)

    ok1 = await rt.events.publish("order:placed", {"n": 1})
    poison = await rt.events.publish("order:placed", {"poison": True})
    ok2 = await rt.events.publish("order:placed", {"n": 2})
    sub = await subscribe_fast(rt, "picky", "order:*", handler, max_attempts=3)

    async def parked_one() -> list[cowork.ParkedEvent]:
        return await rt.consumers.parked("picky")

    [parked] = await eventually(parked_one, what="the poison event to be parked")
    await eventually(lambda: ok2.event_id in handled, what="later events handled")
    assert handled == [ok1.event_id, ok2.event_id]
    assert attempts[poison.event_id] == 3
    assert parked.event_id == poison.event_id and parked.position == poison.position
    assert parked.event_type == "order:placed" and parked.consumer_id == "picky"
    assert parked.attempts == 3
    assert "cannot digest poison" in parked.last_error
    assert sub.parked == 1
    await _settled(rt, "picky", ok2)  # the checkpoint moved past the parked event
    assert (await consumer_info(rt, "picky")).parked == 1
    assert await rt.consumers.parked() == [parked]

    fixed = True
    assert await rt.consumers.redrive("picky") == 1
    await eventually(lambda: poison.event_id in handled, what="re-driven delivery")
    await eventually(
        lambda: _is_empty(rt.consumers.parked("picky")), what="parked list to empty out"
    )
    assert handled == [ok1.event_id, ok2.event_id, poison.event_id]
    assert attempts[poison.event_id] == 4
    assert attempts[ok1.event_id] == 1 and attempts[ok2.event_id] == 1
    assert (await consumer_info(rt, "picky")).parked == 0


async def _is_empty(result: object) -> bool:
    return not await result  # type: ignore[misc]


async def test_transactional_handler_effects_roll_back_with_failed_attempts(
    rt: cowork.Runtime,
) -> None:
    attempts: Counter[str] = Counter()
    checkpoint_during_retries: list[int] = []

    async def handler(event: EventEnvelope, tx: TransactionContext) -> None:
        attempts[event.event_id] += 1
        await tx.events.publish("audit:written", {"for": event.event_id})
        if event.payload.get("poison"):
            raise RuntimeError("audit failed")

    ok1 = await rt.events.publish("order:placed", {"n": 1})
    poison = await rt.events.publish("order:placed", {"poison": True})
    ok2 = await rt.events.publish("order:placed", {"n": 2})
    # Backoffs of ~0.15 s and ~0.3 s leave room to look at the checkpoint between attempts.
    sub = await subscribe_fast(
        rt,
        "auditor",
        "order:*",
        handler,
        transactional=True,
        max_attempts=3,
        backoff_initial=0.15,
        backoff_max=0.3,
    )
    await eventually(lambda: attempts[poison.event_id] >= 1, what="first failing attempt")
    deadline = time.monotonic() + 3
    while True:
        position = (await consumer_info(rt, "auditor")).last_position
        if await rt.consumers.parked("auditor"):
            break  # parked (and checkpoint moved) possibly after that read: discard it
        checkpoint_during_retries.append(position)
        assert time.monotonic() < deadline, "the failing event was never parked"
        await asyncio.sleep(0.02)
    assert checkpoint_during_retries, "the event was parked before the checkpoint was read"
    assert set(checkpoint_during_retries) == {ok1.position}
    await eventually(lambda: attempts[ok2.event_id] >= 1, what="ok2 handled")
    await sub.wait_until_caught_up(2)
    assert attempts[poison.event_id] == 3

    audit_ok2 = await _wait_for_audit(rt, ok2)
    await _settled(rt, "auditor", audit_ok2)
    audits = [e for e in await read_through(rt, audit_ok2) if e.event_type == "audit:written"]
    assert [e.payload["for"] for e in audits] == [ok1.event_id, ok2.event_id]
    info = await consumer_info(rt, "auditor")
    assert info.parked == 1 and sub.handled == 2


async def _wait_for_audit(rt: cowork.Runtime, order: EventEnvelope) -> EventEnvelope:
    async def find() -> EventEnvelope | None:
        for event in await rt.events.read(limit=1000):
            if event.event_type == "audit:written" and event.payload["for"] == order.event_id:
                return event
        return None

    found: EventEnvelope = await eventually(find, what=f"audit event for {order.event_id}")
    return found


async def test_transactional_handler_commits_effects_with_checkpoint(
    database_url: str,
) -> None:
    async def handler(event: EventEnvelope, tx: TransactionContext) -> None:
        await tx.events.publish("audit:written", {"for": event.event_id})

    async with await cowork.open(database_url, tenant_id="t1") as rt:
        orders = await _publish(rt, 3)
        sub = await rt.events.subscribe(
            "order:*", handler, consumer_id="auditor", transactional=True
        )
        last_audit = await _wait_for_audit(rt, orders[-1])
        await sub.wait_until_caught_up(2)
        info = await consumer_info(rt, "auditor")
        assert info.last_position >= orders[-1].position
    # After a restart nothing is handled twice: effects and checkpoint were committed together.
    async with await cowork.open(database_url, tenant_id="t1") as rt:
        more = await _publish(rt, 1)
        sub = await rt.events.subscribe(
            "order:*", handler, consumer_id="auditor", transactional=True
        )
        newest = await _wait_for_audit(rt, more[0])
        await sub.wait_until_caught_up(2)
        audits = [e for e in await read_through(rt, newest) if e.event_type == "audit:written"]
        assert [e.payload["for"] for e in audits] == [e.event_id for e in orders + more]
        assert last_audit in audits


# -- checkpoint monotonic ----------------------------------------------------------------------


async def test_checkpoint_never_moves_backwards(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        await asyncio.sleep(0.001)
        seen.append(event.event_id)

    sub = await subscribe_fast(rt, "mono", "*", handler, checkpoint_interval=0.01)
    samples: list[int] = []

    async def publisher(k: int) -> None:
        for i in range(15):
            await rt.events.publish("tick:tock", {"k": k, "i": i})

    async def sampler(stop: asyncio.Event) -> None:
        while not stop.is_set():
            samples.append((await consumer_info(rt, "mono")).last_position)
            await asyncio.sleep(0.005)

    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler(stop))
    await asyncio.gather(*(publisher(k) for k in range(4)))
    await eventually(lambda: len(seen) >= 60, what="all 60 events handled")
    await sub.wait_until_caught_up(2)
    log = await rt.events.read(limit=1000)
    await _settled(rt, "mono", log[-1])
    stop.set()
    await sampling
    samples.append((await consumer_info(rt, "mono")).last_position)
    # Compare in commit (log) order: on PostgreSQL positions need not follow commit order.
    order = {e.position: i for i, e in enumerate(log)}
    order[0] = -1
    ranks = [order[p] for p in samples]
    assert ranks == sorted(ranks), f"checkpoint moved backwards: {samples}"
    assert len(set(samples)) > 2  # it was observed moving
    assert sorted(seen) == sorted(e.event_id for e in log) and len(seen) == 60


# -- one active runner per consumer ------------------------------------------------------------


async def test_one_active_runner_and_handover_on_stop(database_url: str) -> None:
    handled: list[tuple[str, str]] = []

    def make_handler(name: str) -> Callable[[EventEnvelope], Awaitable[None]]:
        async def handler(event: EventEnvelope) -> None:
            await asyncio.sleep(0.005)
            handled.append((name, event.event_id))

        return handler

    async with (
        await cowork.open(database_url, tenant_id="t1") as rt_a,
        await cowork.open(database_url, tenant_id="t1") as rt_b,
    ):
        subs = {
            "a": await subscribe_fast(rt_a, "shared", "job:*", make_handler("a")),
            "b": await subscribe_fast(rt_b, "shared", "job:*", make_handler("b")),
        }
        both_active = 0
        stop_sampling = asyncio.Event()

        async def sampler() -> None:
            nonlocal both_active
            while not stop_sampling.is_set():
                if subs["a"].active and subs["b"].active:
                    both_active += 1
                await asyncio.sleep(0.002)

        sampling = asyncio.create_task(sampler())
        first = await _publish(rt_a, 30, "job:run")
        await eventually(lambda: len(handled) >= 10, what="first deliveries")
        [holder] = await eventually(
            lambda: [n for n, s in subs.items() if s.active] or None, what="an active runner"
        )
        other = "b" if holder == "a" else "a"
        assert {n for n, _ in handled} == {holder}
        await subs[holder].stop()  # graceful: finishes the current event, releases the lease
        assert not subs[holder].active
        stopped_at = time.monotonic()
        # Published through the stopped runner's runtime: nothing wakes the other one, so it
        # must find the released lease on its own.
        second = await _publish(rt_a if holder == "a" else rt_b, 5, "job:run")
        expected = [e.event_id for e in first + second]
        await eventually(lambda: len(handled) >= len(expected), what="takeover", timeout=3.0)
        takeover = time.monotonic() - stopped_at
        assert subs[other].active
        stop_sampling.set()
        await sampling

    ids = [event_id for _, event_id in handled]
    assert both_active == 0, "two runners held the consumer at once"
    assert takeover < 2.5, f"takeover took {takeover:.2f}s (lease not released on stop?)"
    assert len(ids) == len(set(ids)), "an event was handled twice in a graceful handover"
    assert ids == expected  # nothing skipped, commit order kept across the handover
    assert any(n == other for n, _ in handled)


async def test_the_handler_kind_is_said_never_guessed(rt: cowork.Runtime) -> None:
    """A handler of (event, tx) runs in the checkpoint's transaction only when the caller says
    transactional=True; without it the subscription is refused with what to do (it would
    fail on every event), and a transactional subscription without a consumer_id too."""

    async def audit(event: EventEnvelope, tx: TransactionContext) -> None:
        await tx.events.publish("audit:written", {"for": event.event_id})

    with pytest.raises(cowork.ValidationError, match=r"transactional=True"):
        rt.events.subscribe("order:*", audit, consumer_id="auditor")  # type: ignore[call-overload]
    with pytest.raises(cowork.ValidationError, match=r"transactional=True"):
        rt.events.subscribe("order:*", audit)  # type: ignore[arg-type]
    with pytest.raises(cowork.ValidationError, match="needs a consumer_id"):
        rt.events.subscribe("order:*", audit, transactional=True)  # type: ignore[call-overload]
    with pytest.raises(cowork.ValidationError, match="True or False"):
        rt.events.subscribe("order:*", audit, consumer_id="a", transactional="yes")  # type: ignore[call-overload]

    async def optional_second(event: EventEnvelope, extra: object = None) -> None:
        return None

    plain = await rt.events.subscribe("order:*", optional_second, consumer_id="plain")
    sub = await rt.events.subscribe("order:*", audit, consumer_id="auditor", transactional=True)
    placed = await rt.events.publish("order:placed")
    await read_through(rt, placed)
    await sub.wait_until_caught_up(10)
    audits = [e for e in await rt.events.read() if e.event_type == "audit:written"]
    assert [e.payload["for"] for e in audits] == [placed.event_id]
    await sub.stop()
    await plain.stop()
