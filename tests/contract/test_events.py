"""Event log and in-process bus contract: both backends via ``database_url``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

import cowork
from cowork import EventEnvelope, NewEvent
from cowork.events.sanitize import MASK_EMAIL, REDACTED
from tests.support.events import read_through


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1") as runtime:
        yield runtime


async def _assert_only_sentinel(rt: cowork.Runtime) -> None:
    """Nothing but a sentinel published afterwards is in the log (so nothing was stored)."""
    sentinel = await rt.events.publish("test:sentinel")
    assert await read_through(rt, sentinel) == [sentinel]


def _aware_utc(value: datetime) -> bool:
    offset = value.utcoffset()
    return offset is not None and offset == timedelta(0)


# -- publish and read --------------------------------------------------------------------------


async def test_publish_returns_a_complete_envelope_and_read_returns_it(rt: cowork.Runtime) -> None:
    occurred = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    payload = {
        "name": "Plan",
        "api_key": "sk-live-1234567890",
        "contact": "write to bob@example.com please",
        "count": 3,
        "empty_list": [],
        "empty_obj": {},
        "one": ["a"],
        "nested": {"l": [], "d": {}, "x": ["a"], "deep": [[], {}, ["a"]]},
    }
    metadata = {"apiKey": "mk-abcdef", "by": "alice@example.com", "tags": [], "extra": {}}
    env = await rt.events.publish(
        "workspace:created",
        payload,
        aggregate_type="workspace",
        aggregate_id="ws-1",
        metadata=metadata,
        correlation_id="corr-1",
        causation_id="cause-1",
        occurred_at=occurred,
    )
    assert isinstance(env, EventEnvelope)
    assert isinstance(env.event_id, str) and env.event_id
    assert env.tenant_id == "t1"
    assert isinstance(env.position, int) and env.position > 0
    assert env.event_type == "workspace:created"
    assert (env.aggregate_type, env.aggregate_id) == ("workspace", "ws-1")
    assert (env.correlation_id, env.causation_id) == ("corr-1", "cause-1")
    assert env.occurred_at == occurred and _aware_utc(env.occurred_at)
    assert _aware_utc(env.recorded_at)
    assert abs(env.recorded_at - datetime.now(UTC)) < timedelta(minutes=1)

    expected_payload = {
        **payload,
        "api_key": REDACTED,
        "contact": f"write to {MASK_EMAIL} please",
    }
    assert env.payload == expected_payload
    assert env.metadata == {**metadata, "apiKey": REDACTED, "by": MASK_EMAIL}

    [stored] = await read_through(rt, env)
    assert stored == env
    assert stored.payload == expected_payload
    assert "sk-live" not in repr(stored) and "bob@" not in repr(stored)
    # Empty and one-element containers keep their exact JSON type.
    assert type(stored.payload["empty_list"]) is list and stored.payload["empty_list"] == []
    assert type(stored.payload["empty_obj"]) is dict and stored.payload["empty_obj"] == {}
    assert stored.payload["one"] == ["a"]
    assert stored.payload["nested"] == {"l": [], "d": {}, "x": ["a"], "deep": [[], {}, ["a"]]}
    assert _aware_utc(stored.occurred_at) and _aware_utc(stored.recorded_at)
    assert stored.recorded_at == env.recorded_at


async def test_defaults_fill_ids_and_times(rt: cowork.Runtime) -> None:
    a = await rt.events.publish("job:done")
    b = await rt.events.publish("job:done", {})
    assert a.event_id != b.event_id
    assert a.payload == {} and a.metadata == {}
    assert a.aggregate_type is None and a.correlation_id is None
    assert _aware_utc(a.occurred_at)
    assert b.position > a.position
    assert await read_through(rt, b) == [a, b]


async def test_concurrent_publish_with_one_event_id_stores_one_event(rt: cowork.Runtime) -> None:
    results = await asyncio.gather(
        *(rt.events.publish("job:started", {"n": i}, event_id="same") for i in range(50))
    )
    stored = await read_through(rt, results[0])
    assert len(stored) == 1, [e.payload for e in stored]
    [original] = stored
    assert original.payload in [{"n": i} for i in range(50)]
    assert len(results) == 50
    assert {e.position for e in results} == {original.position}
    assert all(e == original for e in results)


async def test_repeated_event_id_returns_the_original(rt: cowork.Runtime) -> None:
    first = await rt.events.publish("job:started", {"v": 1}, event_id="e1")
    again = await rt.events.publish("job:finished", {"v": 2}, event_id="e1", metadata={"x": 1})
    assert again == first
    assert again.payload == {"v": 1} and again.event_type == "job:started"
    assert await read_through(rt, first) == [first]


async def test_publish_many_keeps_order_and_answers_known_ids_with_originals(
    rt: cowork.Runtime,
) -> None:
    earlier = await rt.events.publish("item:added", {"i": "old"}, event_id="e-2")
    batch = [
        NewEvent(event_type="item:added", payload={"i": 0}, event_id="e-0"),
        NewEvent(event_type="item:added", payload={"i": 1}, event_id="e-1"),
        NewEvent(event_type="item:added", payload={"i": 2}, event_id="e-2"),  # stored before
        NewEvent(event_type="item:added", payload={"i": 3}, event_id="e-3"),
        NewEvent(event_type="item:added", payload={"i": "dup"}, event_id="e-1"),  # in batch
        NewEvent(event_type="item:added", payload={"i": 4}),
    ]
    result = await rt.events.publish_many(batch)
    assert len(result) == 6
    assert result[2] == earlier
    assert result[4] == result[1] and result[4].payload == {"i": 1}
    new = [result[0], result[1], result[3], result[5]]
    assert [e.payload["i"] for e in new] == [0, 1, 3, 4]
    positions = [e.position for e in new]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert positions[0] > earlier.position
    assert await read_through(rt, new[-1]) == [earlier, *new]


async def test_publish_many_validates_items_and_accepts_an_empty_batch(
    rt: cowork.Runtime,
) -> None:
    assert await rt.events.publish_many([]) == []
    good = NewEvent(event_type="item:added", payload={"i": 1})
    with pytest.raises(cowork.ValidationError):
        await rt.events.publish_many([good, {"event_type": "item:added"}])  # type: ignore[list-item]
    with pytest.raises(cowork.ValidationError):
        await rt.events.publish_many(good)  # type: ignore[arg-type]
    with pytest.raises(cowork.InvalidEventType):
        await rt.events.publish_many([good, NewEvent(event_type="Bad:Type")])
    await _assert_only_sentinel(rt)


@pytest.mark.parametrize("event_type", ["", "Workspace:Created", "a::b", "x" * 300])
async def test_invalid_event_types_are_rejected(rt: cowork.Runtime, event_type: str) -> None:
    with pytest.raises(cowork.InvalidEventType):
        await rt.events.publish(event_type, {"a": 1})
    await _assert_only_sentinel(rt)


@pytest.mark.parametrize(
    "payload",
    [
        {f"k{i}": "x" * 1024 for i in range(100)},  # ~100 KiB as JSON, over the 64 KiB cap
        {"thing": object()},
        {"raw": b"\x00\x01"},
    ],
    ids=["oversize", "object", "bytes"],
)
async def test_unrepresentable_or_oversize_payloads_are_rejected(
    rt: cowork.Runtime, payload: dict[str, object]
) -> None:
    with pytest.raises(cowork.PayloadRejected):
        await rt.events.publish("blob:stored", payload)
    with pytest.raises(cowork.PayloadRejected):
        await rt.events.publish("blob:stored", {"ok": 1}, metadata=payload)
    await _assert_only_sentinel(rt)


async def test_read_pages_cover_every_event_once_in_order(rt: cowork.Runtime) -> None:
    published = [await rt.events.publish("tick:tock", {"i": i}) for i in range(23)]
    assert await read_through(rt, published[-1]) == published

    by_envelope: list[EventEnvelope] = []
    after_env: EventEnvelope | None = None
    while page := await rt.events.read(after=after_env, limit=5):
        assert len(page) <= 5
        by_envelope.extend(page)
        after_env = page[-1]
    assert by_envelope == published

    by_position: list[EventEnvelope] = []
    after_pos = 0
    while page := await rt.events.read(after=after_pos, limit=7):
        by_position.extend(page)
        after_pos = page[-1].position
    assert by_position == published

    assert await rt.events.read(after=published[-1]) == []
    assert await rt.events.read(after=published[9].position, limit=3) == published[10:13]
    assert [e async for e in rt.events.iterate(page_size=4)] == published


async def test_read_rejects_unknown_positions_and_bad_limits(rt: cowork.Runtime) -> None:
    env = await rt.events.publish("tick:tock")
    with pytest.raises(cowork.NotFound):
        await rt.events.read(after=env.position + 1000)
    for limit in (0, -1, 20_000):
        with pytest.raises(cowork.ValidationError):
            await rt.events.read(limit=limit)
    with pytest.raises(cowork.ValidationError):
        await rt.events.read(after=-1)


# -- transactions ------------------------------------------------------------------------------


async def test_transaction_commits_events_together_and_dispatches_after_commit(
    rt: cowork.Runtime,
) -> None:
    seen: list[EventEnvelope] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event)

    sub = rt.events.subscribe("order:*", handler)
    async with rt.transaction() as tx:
        a = await tx.events.publish("order:placed", {"n": 1})
        b = await tx.events.publish("order:paid", {"n": 1})
        await asyncio.sleep(0.05)  # give a (wrong) early dispatch the chance to run
        assert seen == []
    await sub.drain()
    assert seen == [a, b]
    assert await read_through(rt, b) == [a, b]


async def test_transaction_rolls_back_every_event_on_error(rt: cowork.Runtime) -> None:
    seen: list[EventEnvelope] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event)

    sub = rt.events.subscribe("*", handler)
    with pytest.raises(RuntimeError, match="abort"):
        async with rt.transaction() as tx:
            await tx.events.publish("order:placed", {"n": 1})
            await tx.events.publish("order:paid", {"n": 1})
            raise RuntimeError("abort")
    sentinel = await rt.events.publish("order:sentinel")
    await sub.drain()
    assert seen == [sentinel]
    assert await read_through(rt, sentinel) == [sentinel]


# -- in-process subscribers --------------------------------------------------------------------


async def test_failing_subscriber_affects_neither_publisher_nor_others(rt: cowork.Runtime) -> None:
    calls = 0
    seen: list[str] = []

    async def broken(event: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("subscriber bug")

    async def healthy(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    bad = rt.events.subscribe("*", broken)
    good = rt.events.subscribe("*", healthy)
    published = [await rt.events.publish("job:done", {"i": i}) for i in range(3)]
    await bad.drain()
    await good.drain()
    assert calls == 3  # the failing subscriber keeps receiving events
    assert seen == [e.event_id for e in published]


async def test_slow_subscribers_do_not_delay_publish(rt: cowork.Runtime) -> None:
    async_gate = asyncio.Event()
    thread_gate = threading.Event()
    fast_seen: list[str] = []

    async def slow_async(event: EventEnvelope) -> None:
        await asyncio.wait_for(async_gate.wait(), 2)

    def slow_sync(event: EventEnvelope) -> None:
        thread_gate.wait(2)

    async def fast(event: EventEnvelope) -> None:
        fast_seen.append(event.event_id)

    rt.events.subscribe("*", slow_async)
    rt.events.subscribe("*", slow_sync)
    good = rt.events.subscribe("*", fast)
    try:
        started = time.monotonic()
        published = [await rt.events.publish("job:done", {"i": i}) for i in range(3)]
        elapsed = time.monotonic() - started
        assert elapsed < 0.75, f"publish waited for slow subscribers ({elapsed:.2f}s)"
        await good.drain()
        assert fast_seen == [e.event_id for e in published]
    finally:
        async_gate.set()
        thread_gate.set()


async def test_patterns_select_events(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_type)

    sub = rt.events.subscribe("workspace:*", handler)
    for event_type in (
        "workspace:created",
        "workspaces:x",
        "workspace",
        "workspace:member:added",
        "blackboard:entry:created",
    ):
        await rt.events.publish(event_type)
    await sub.drain()
    assert seen == ["workspace:created", "workspace:member:added"]


async def test_plain_function_subscriber_is_called(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    sub = rt.events.subscribe("job:*", handler)
    env = await rt.events.publish("job:done")
    await sub.drain()
    assert seen == [env.event_id]


async def test_subscribers_see_only_their_tenant(rt: cowork.Runtime) -> None:
    other = rt.for_tenant("t2")
    seen_t1: list[EventEnvelope] = []
    seen_t2: list[EventEnvelope] = []

    async def on_t1(event: EventEnvelope) -> None:
        seen_t1.append(event)

    async def on_t2(event: EventEnvelope) -> None:
        seen_t2.append(event)

    sub1 = rt.events.subscribe("*", on_t1)
    sub2 = other.events.subscribe("*", on_t2)
    b = await other.events.publish("job:done", {"tenant": "t2"})
    a = await rt.events.publish("job:done", {"tenant": "t1"})
    await sub1.drain()
    await sub2.drain()
    assert seen_t1 == [a]
    assert seen_t2 == [b]
    assert b.tenant_id == "t2"


async def test_idempotent_republish_is_not_dispatched_again(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    sub = rt.events.subscribe("*", handler)
    first = await rt.events.publish("job:done", {"v": 1}, event_id="once")
    await rt.events.publish("job:done", {"v": 2}, event_id="once")
    await rt.events.publish_many([NewEvent(event_type="job:done", event_id="once")])
    second = await rt.events.publish("job:done", {"v": 3}, event_id="twice")
    await sub.drain()
    assert seen == [first.event_id, second.event_id]


async def test_stopped_subscriber_receives_nothing(rt: cowork.Runtime) -> None:
    seen: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append(event.event_id)

    sub = rt.events.subscribe("*", handler)
    first = await rt.events.publish("job:done")
    await sub.drain()
    await sub.stop()
    await rt.events.publish("job:done")
    await asyncio.sleep(0.02)
    assert seen == [first.event_id]


# -- tenancy of the log ------------------------------------------------------------------------


async def test_log_is_tenant_scoped(rt: cowork.Runtime) -> None:
    other = rt.for_tenant("t2")
    mine = await rt.events.publish("job:done", {"who": "t1"}, event_id="shared-id")
    theirs = await other.events.publish("job:done", {"who": "t2"}, event_id="shared-id")
    # The idempotency key is per tenant: the same id in another tenant is another event.
    assert theirs.position != mine.position
    assert theirs.payload == {"who": "t2"} and theirs.tenant_id == "t2"
    assert await read_through(rt, mine) == [mine]
    assert await read_through(other, theirs) == [theirs]
    with pytest.raises(cowork.NotFound):
        await rt.events.read(after=theirs.position)
