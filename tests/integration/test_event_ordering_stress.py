"""Gap-free, commit-ordered event log under concurrent writers.

The run: at least 8 concurrent publishers, transactions held open for random times and
committed in shuffled order, about 10% rolled back, at least 10,000 events, one live durable
consumer: every committed event delivered, no rolled-back one, the checkpoint never decreases.
Long-open writers that must not matter run throughout: another tenant's publishers, write
transactions in another database of the server, and raw writers outside any cowork scope.

``COWORK_STRESS_EVENTS`` scales the number of committed events (default 10,000) for longer runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import psycopg
import pytest

import cowork
from cowork import NewEvent
from tests.support.postgres import DatabaseFactory

pytestmark = [pytest.mark.postgres]

TENANT = "t-stress"
CONSUMER = "stress-consumer"
PUBLISHERS = 10
TARGET_EVENTS = int(os.environ.get("COWORK_STRESS_EVENTS", "10000"))
ROLLBACK_RATE = 0.10
Cursor = tuple[int, int]


class _Rollback(Exception):
    """Raised inside a publishing transaction to roll it back."""


@dataclass
class _Ledger:
    committed: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)
    # (tx_id of the transaction, in the order the commits returned): shows the shuffle happened
    commit_tx_order: list[int] = field(default_factory=list)
    transactions: int = 0
    rollbacks: int = 0


@dataclass
class _Delivered:
    ids: list[str] = field(default_factory=list)
    cursors: list[Cursor] = field(default_factory=list)


async def _admin(url: str) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    # Row-level security: the explicit cross-tenant scope (no-op for a superuser).
    await conn.execute("SELECT set_config('cowork.tenant_id', '*', false)")
    return conn


@pytest.fixture
def other_db_url(pg_factory: DatabaseFactory) -> Iterator[str]:
    url = pg_factory.create(migrated=False)
    yield url
    pg_factory.drop(url)


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await _admin(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _publisher(
    rt: cowork.Runtime, index: int, ledger: _Ledger, stop: asyncio.Event, rng: random.Random
) -> None:
    seq = 0
    while not stop.is_set():
        chunks: list[list[NewEvent]] = []
        for _ in range(rng.randint(1, 3)):
            chunk = []
            for _ in range(rng.randint(1, 8)):
                seq += 1
                chunk.append(
                    NewEvent(
                        event_type=f"stress:p{index}:tick",
                        payload={"publisher": index, "seq": seq},
                        event_id=f"p{index}-{seq}",
                    )
                )
            chunks.append(chunk)
        ids = [e.event_id for chunk in chunks for e in chunk if e.event_id is not None]
        rollback = rng.random() < ROLLBACK_RATE
        tx_id = 0
        try:
            async with rt.transaction() as tx:
                for chunk in chunks:
                    envelopes = await tx.events.publish_many(chunk)
                    tx_id = envelopes[0].tx_id
                    # Hold the transaction open for a random time (interleaves positions and
                    # transaction ids of concurrent publishers, and shuffles the commit order).
                    await asyncio.sleep(rng.uniform(0.0, 0.03))
                if rng.random() < 0.03:  # now and then a long one holds the horizon back
                    await asyncio.sleep(rng.uniform(0.1, 0.4))
                if rollback:
                    raise _Rollback
        except _Rollback:
            ledger.rolled_back.update(ids)
            ledger.rollbacks += 1
        else:
            ledger.committed.update(ids)
            ledger.commit_tx_order.append(tx_id)
        ledger.transactions += 1
        if len(ledger.committed) >= TARGET_EVENTS:
            stop.set()


async def _foreign_tenant_publisher(
    rt: cowork.Runtime, stop: asyncio.Event, rng: random.Random
) -> int:
    """Another tenant's transactions, held open for long: they must not delay or reorder ours."""
    count = 0
    while not stop.is_set():
        try:
            async with rt.transaction() as tx:
                await tx.events.publish("other:tick", {"n": count})
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                if rng.random() < 0.1:
                    raise _Rollback
            count += 1
        except _Rollback:
            pass
    return count


async def _raw_writer(url: str, table: str, stop: asyncio.Event, rng: random.Random) -> int:
    """Write transactions outside any cowork scope (another database, or ours unscoped), held
    open for long."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    count = 0
    try:
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (x int)")
        while not stop.is_set():
            await conn.execute("BEGIN")
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            await conn.execute("COMMIT")
            count += 1
    finally:
        await conn.close()
    return count


async def _sample_checkpoint(
    url: str,
    delivered: _Delivered,
    samples: list[tuple[Cursor, int]],
    stop: asyncio.Event,
) -> None:
    """Poll the checkpoint every few ms; it must never decrease, nor pass an undelivered event."""
    conn = await _admin(url)
    try:
        previous: Cursor = (0, 0)
        while not stop.is_set():
            cur = await conn.execute(
                "SELECT last_tx_id, last_position FROM cowork_event_consumer_checkpoint "
                "WHERE tenant_id = %s AND consumer_id = %s",
                [TENANT, CONSUMER],
            )
            row = await cur.fetchone()
            # How many events the handler had recorded when the row was read: the runner writes
            # the checkpoint only after handling, so everything up to it is already recorded.
            recorded = len(delivered.ids)
            if row is not None:
                checkpoint: Cursor = (row[0], row[1])
                assert checkpoint >= previous, f"checkpoint went back: {previous} -> {checkpoint}"
                if checkpoint != (0, 0):
                    assert recorded > 0 and checkpoint <= delivered.cursors[recorded - 1], (
                        f"checkpoint {checkpoint} is past the last handled event "
                        f"{delivered.cursors[recorded - 1] if recorded else None}"
                    )
                if checkpoint != previous:
                    samples.append((checkpoint, recorded))
                previous = checkpoint
            await asyncio.sleep(0.003)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_concurrent_publishers_one_live_consumer_gap_free_and_ordered(
    pg_url: str, other_db_url: str, admin: psycopg.AsyncConnection[Any]
) -> None:
    rng = random.Random(int(os.environ.get("COWORK_STRESS_SEED", str(time.time_ns()))))
    publisher_rt = await cowork.open(pg_url, tenant_id=TENANT, pool_max_size=PUBLISHERS + 4)
    consumer_rt = await cowork.open(pg_url, tenant_id=TENANT)
    ledger = _Ledger()
    delivered = _Delivered()
    samples: list[tuple[Cursor, int]] = []
    sampler_stop = asyncio.Event()
    sampler: asyncio.Task[None] | None = None
    try:

        async def handler(event: cowork.EventEnvelope) -> None:
            delivered.ids.append(event.event_id)
            delivered.cursors.append(event.cursor)

        sub = await consumer_rt.events.subscribe("stress:*", handler, consumer_id=CONSUMER)
        deadline = time.monotonic() + 10
        while not sub.active:  # live: it holds its lease before the first event is published
            assert time.monotonic() < deadline, "the consumer never took its lease"
            await asyncio.sleep(0.01)
        sampler = asyncio.create_task(_sample_checkpoint(pg_url, delivered, samples, sampler_stop))

        started = time.monotonic()
        stop = asyncio.Event()
        foreign_rt = publisher_rt.for_tenant("t-stress-other")
        foreign = [
            asyncio.create_task(_foreign_tenant_publisher(foreign_rt, stop, random.Random(i)))
            for i in range(2)
        ] + [
            asyncio.create_task(_raw_writer(other_db_url, "elsewhere", stop, random.Random(7))),
            asyncio.create_task(_raw_writer(pg_url, "unscoped", stop, random.Random(8))),
        ]
        publishers = [
            asyncio.create_task(
                _publisher(publisher_rt, i, ledger, stop, random.Random(rng.random()))
            )
            for i in range(PUBLISHERS)
        ]
        await asyncio.gather(*publishers)
        published_in = time.monotonic() - started
        foreign_done = await asyncio.gather(*foreign)
        assert all(n > 0 for n in foreign_done), foreign_done  # they ran alongside

        deadline = time.monotonic() + max(30.0, TARGET_EVENTS / 300)
        while not ledger.committed <= set(delivered.ids):
            if sampler.done():
                await sampler  # it failed: raise its assertion
            missing = len(ledger.committed - set(delivered.ids))
            assert time.monotonic() < deadline, (
                f"{missing} of {len(ledger.committed)} committed events never delivered"
            )
            await asyncio.sleep(0.05)
        await sub.wait_until_caught_up(timeout=10)
        await asyncio.sleep(0.3)  # let the sampler see the final checkpoint
        sampler_stop.set()
        await sampler  # re-raises a checkpoint assertion
    finally:
        sampler_stop.set()
        if sampler is not None and not sampler.done():
            sampler.cancel()
        await consumer_rt.close()
        await publisher_rt.close()

    # The run exercised what it claims to.
    assert len(ledger.committed) >= TARGET_EVENTS
    assert ledger.transactions > 0
    rollback_share = ledger.rollbacks / ledger.transactions
    assert 0.05 <= rollback_share <= 0.15, rollback_share
    inversions = sum(1 for a, b in pairwise(ledger.commit_tx_order) if b < a)
    assert inversions >= len(ledger.commit_tx_order) // 20, (
        f"commits were not shuffled: {inversions} inversions in {len(ledger.commit_tx_order)}"
    )

    # Every committed event delivered, no rolled-back one, each once, in commit order.
    delivered_set = set(delivered.ids)
    assert ledger.committed <= delivered_set
    assert not delivered_set & ledger.rolled_back
    assert delivered_set == ledger.committed
    assert len(delivered.ids) == len(delivered_set), "duplicates in a crash-free run"
    for i, (before, after) in enumerate(pairwise(delivered.cursors)):
        assert before < after, f"delivery {i + 1} out of commit order: {before} then {after}"
    positions = [c[1] for c in delivered.cursors]
    assert positions != sorted(positions), "no interleaving: the test did not stress ordering"

    # The log agrees: rolled-back events are absent, the cursors delivered are the stored ones.
    cur = await admin.execute(
        "SELECT event_id, tx_id, position FROM cowork_event_log WHERE tenant_id = %s", [TENANT]
    )
    stored = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    assert set(stored) == ledger.committed
    assert all(stored[e] == c for e, c in zip(delivered.ids, delivered.cursors, strict=True))

    # The checkpoint only moved forward, was seen moving, and ends at the last event.
    assert len(samples) >= 3, samples
    cur = await admin.execute(
        "SELECT last_tx_id, last_position FROM cowork_event_consumer_checkpoint "
        "WHERE tenant_id = %s AND consumer_id = %s",
        [TENANT, CONSUMER],
    )
    final = await cur.fetchone()
    assert final is not None and (final[0], final[1]) == max(stored.values())
    print(
        f"\n{len(ledger.committed)} events committed, {len(ledger.rolled_back)} rolled back, "
        f"{ledger.transactions} transactions, {inversions} commit inversions, published in "
        f"{published_in:.1f}s, {len(samples)} checkpoint moves"
    )


# -- why the xmin horizon is needed ------------------------------------------------------------
async def _read_until(
    rt: cowork.Runtime, expected: list[str], after: cowork.EventEnvelope | None = None
) -> list[cowork.EventEnvelope]:
    """Read until ``expected`` shows up: the horizon is cluster-wide, so a transaction of another
    test (another database on the same server) may hold it back for a moment."""
    deadline = time.monotonic() + 10
    while True:
        events = await rt.events.read(after=after)
        if [e.event_id for e in events] == expected or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.01)


async def _held_transaction(
    rt: cowork.Runtime, event_id: str, published: asyncio.Event, release: asyncio.Event
) -> cowork.EventEnvelope:
    async with rt.transaction() as tx:
        envelope = await tx.events.publish("gap:a", {"n": 1}, event_id=event_id)
        published.set()
        await release.wait()
    return envelope


async def test_reader_never_skips_an_event_that_commits_late(
    pg_url: str, admin: psycopg.AsyncConnection[Any]
) -> None:
    """A holds a lower position uncommitted while B (higher position) commits. A position-ordered
    reader would see B now and A never (its cursor is already past A): the lost-event trap. The
    log must hide B until A ends, then deliver A then B."""
    async with await cowork.open(pg_url, tenant_id=TENANT) as rt:
        first = await rt.events.publish("gap:first")
        seen = await _read_until(rt, [first.event_id])
        assert [e.event_id for e in seen] == [first.event_id]

        published, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_held_transaction(rt, "event-a", published, release))
        try:
            await asyncio.wait_for(published.wait(), 10)
            b = await rt.events.publish("gap:b", {"n": 2}, event_id="event-b")
            cur = await admin.execute(
                "SELECT event_id, position FROM cowork_event_log WHERE tenant_id = %s "
                "AND event_id IN ('event-a', 'event-b')",
                [TENANT],
            )
            # Only B is committed, yet A was appended first and holds the lower position.
            committed_now = {r[0]: r[1] for r in await cur.fetchall()}
            assert set(committed_now) == {"event-b"}
            # The naive technique, a position-ordered read, sees B past the last cursor now.
            cur = await admin.execute(
                "SELECT event_id FROM cowork_event_log WHERE tenant_id = %s AND position > %s "
                "ORDER BY position",
                [TENANT, first.position],
            )
            assert [r[0] for r in await cur.fetchall()] == ["event-b"]

            # The log does not return B while A is open: neither from the last cursor ...
            assert await rt.events.read(after=seen[-1]) == []
            assert await rt.events.read(after=first.position) == []
            # ... nor from the beginning; and reading again changes nothing.
            assert [e.event_id for e in await rt.events.read()] == [first.event_id]
            await asyncio.sleep(0.2)
            assert await rt.events.read(after=seen[-1]) == []
        finally:
            release.set()
            a = await holder

        assert a.position < b.position
        after_commit = await _read_until(rt, ["event-a", "event-b"], after=seen[-1])
        assert [e.event_id for e in after_commit] == ["event-a", "event-b"]
        assert after_commit[0].cursor < after_commit[1].cursor
        everything = await rt.events.read()
        assert [e.event_id for e in everything] == [first.event_id, "event-a", "event-b"]
        # Continuing from A finds B; from B nothing.
        assert [e.event_id for e in await rt.events.read(after=after_commit[0])] == ["event-b"]
        assert await rt.events.read(after=after_commit[1]) == []
