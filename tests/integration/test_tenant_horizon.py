"""The commit-order horizon is scoped to the writers that matter.

A reader of tenant T waits only for open transactions that can still append T's events: T's own
writers and cross-tenant ('*') ones. A write transaction in another database, another tenant's
open transaction, or a raw transaction outside any cowork scope never delays T's delivery; a
runtime reads its own committed writes at once; and what does hold T back is named by
``rt.health()`` and ``cowork status``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cowork
from tests.support.lineproc import LineProcess
from tests.support.postgres import DatabaseFactory

pytestmark = [pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
CONSUMER_SCRIPT = ROOT / "tests" / "support" / "consumer_proc.py"
HOLD_SECONDS = 10.0


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


class OpenWriter:
    """A write transaction held open on its own connection until :meth:`end`."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.xid = 0

    @classmethod
    async def foreign_database(cls, url: str) -> OpenWriter:
        """A transaction in another database of the same server that has written."""
        writer = cls(await _connect(url))
        await writer.conn.execute("CREATE TABLE IF NOT EXISTS horizon_other (x int)")
        await writer.conn.execute("BEGIN")
        await writer.conn.execute("INSERT INTO horizon_other VALUES (1)")
        writer.xid = await writer._xid()
        return writer

    @classmethod
    async def in_scope(cls, url: str, scope: str, *, publish: bool = True) -> OpenWriter:
        """A transaction of ``scope`` (a tenant, or '*') on our database that has written
        (an event of that tenant when ``publish``)."""
        writer = cls(await _connect(url))
        await writer.conn.execute("BEGIN")
        await writer.conn.execute("SELECT cowork_enter_tenant(%s)", (scope,))
        if publish and scope != "*":
            await writer.conn.execute(
                "INSERT INTO cowork_event_log (tenant_id, event_id, event_type, payload, "
                "occurred_at) VALUES (%s, %s, 'held:open', '{}', now())",
                (scope, f"held-{os.urandom(6).hex()}"),
            )
        else:
            await writer.conn.execute("SELECT pg_current_xact_id()")
        writer.xid = await writer._xid()
        return writer

    @classmethod
    async def unscoped(cls, url: str) -> OpenWriter:
        """A raw transaction on our database outside any cowork scope that has written."""
        writer = cls(await _connect(url))
        await writer.conn.execute("CREATE TABLE IF NOT EXISTS horizon_raw (x int)")
        await writer.conn.execute("BEGIN")
        await writer.conn.execute("INSERT INTO horizon_raw VALUES (1)")
        writer.xid = await writer._xid()
        return writer

    async def _xid(self) -> int:
        cur = await self.conn.execute("SELECT pg_current_xact_id()::text::bigint")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid

    async def end(self, *, commit: bool = True) -> None:
        if not self.conn.closed:
            await self.conn.execute("COMMIT" if commit else "ROLLBACK")
            await self.conn.close()


@pytest.fixture
async def writers() -> AsyncIterator[list[OpenWriter]]:
    """Open writers a test starts; every one still open is rolled back at the end."""
    started: list[OpenWriter] = []
    try:
        yield started
    finally:
        for writer in started:
            if not writer.conn.closed:
                await writer.end(commit=False)


@pytest.fixture
def other_db_url(pg_factory: DatabaseFactory) -> Any:
    url = pg_factory.create(migrated=False)
    yield url
    pg_factory.drop(url)


async def _horizon(url: str, tenant: str) -> tuple[int, int]:
    """(tenant horizon, snapshot xmax) seen by a fresh statement."""
    async with await _connect(url) as conn:
        cur = await conn.execute(
            "SELECT cowork_event_horizon(%s), "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
            (tenant,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# -- the horizon function itself ------------------------------------------------------------------


async def test_horizon_ignores_other_databases_tenants_and_unscoped_writers(
    pg_url: str, other_db_url: str, writers: list[OpenWriter]
) -> None:
    writers.append(await OpenWriter.foreign_database(other_db_url))
    writers.append(await OpenWriter.in_scope(pg_url, "tenant-b"))
    writers.append(await OpenWriter.unscoped(pg_url))
    # A transaction that ends after these began moves xmax past their xids.
    async with await cowork.open(pg_url, tenant_id="tenant-a", worker=False) as rt:
        await rt.events.publish("probe:sent", {})
    horizon_a, xmax = await _horizon(pg_url, "tenant-a")
    assert horizon_a == xmax > max(w.xid for w in writers)
    # Tenant b's own open writer holds b's horizon at its xid, and only b's.
    horizon_b, _ = await _horizon(pg_url, "tenant-b")
    assert horizon_b == writers[1].xid


async def test_cross_tenant_writer_holds_every_tenant(
    pg_url: str, writers: list[OpenWriter]
) -> None:
    star = await OpenWriter.in_scope(pg_url, "*")
    writers.append(star)
    async with await cowork.open(pg_url, tenant_id="tenant-a", worker=False) as rt:
        await rt.events.publish("probe:sent", {})
    for tenant in ("tenant-a", "tenant-z"):
        horizon, xmax = await _horizon(pg_url, tenant)
        assert horizon == star.xid < xmax


async def test_entering_a_scope_after_writing_is_refused(pg_url: str) -> None:
    async with await _connect(pg_url) as conn:
        await conn.execute("CREATE TABLE scratch (x int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO scratch VALUES (1)")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="before the transaction"):
            await conn.execute("SELECT cowork_enter_tenant('tenant-a')")
        await conn.execute("ROLLBACK")


async def test_a_writer_that_got_its_xid_before_publishing_still_comes_first(
    pg_url: str,
) -> None:
    """The case an xid horizon keyed by event-writers alone would get wrong: transaction A of
    the tenant writes a workspace (and so holds an xid) before B publishes and commits; A then
    publishes and commits. A reader must not pass B's event while A is open, and must then
    deliver A's event before B's (nothing skipped)."""
    async with await cowork.open(pg_url, tenant_id="t", worker=False) as rt:
        started = asyncio.Event()
        release = asyncio.Event()

        async def writer_a() -> str:
            async with rt.transaction() as tx:
                await tx.workspaces.create(name="early", actor="a")
                started.set()
                await release.wait()
                envelope = await tx.events.publish("a:late", {})
            return envelope.event_id

        task = asyncio.create_task(writer_a())
        await started.wait()
        head = await rt.events.read(limit=1000)
        b = await rt.events.publish("b:early", {})
        assert b.tx_id > 0
        after = await rt.events.read(after=head[-1] if head else None, limit=1000)
        assert [e.event_type for e in after] == []  # held back by A, not skipped past
        release.set()
        a_id = await task
        after = await rt.events.read(after=head[-1] if head else None, limit=1000)
        types = [e.event_type for e in after if e.event_type in ("a:late", "b:early")]
        assert types == ["a:late", "b:early"]
        assert after[[e.event_id for e in after].index(a_id)].tx_id < b.tx_id


# -- read-your-writes ----------------------------------------------------------------------------


async def test_publish_then_read_sees_the_event_while_foreign_transactions_are_open(
    pg_url: str, other_db_url: str, writers: list[OpenWriter]
) -> None:
    writers.append(await OpenWriter.foreign_database(other_db_url))
    writers.append(await OpenWriter.in_scope(pg_url, "tenant-b"))
    writers.append(await OpenWriter.unscoped(pg_url))
    async with await cowork.open(pg_url, tenant_id="tenant-a", worker=True) as rt:
        seen: asyncio.Queue[cowork.EventEnvelope] = asyncio.Queue()

        async def handler(event: cowork.EventEnvelope) -> None:
            await seen.put(event)

        await rt.events.subscribe("ryw:*", handler, consumer_id="ryw")
        for n in range(5):
            envelope = await rt.events.publish("ryw:written", {"n": n})
            page = await rt.events.read(limit=1000)
            assert page and page[-1].event_id == envelope.event_id
            iterated = [e.event_id async for e in rt.events.iterate()]
            assert iterated[-1] == envelope.event_id
            # The same process's durable consumer gets it long before the writers end.
            delivered = await asyncio.wait_for(seen.get(), 5.0)
            assert delivered.event_id == envelope.event_id
        assert all(not w.conn.closed for w in writers)  # they were open throughout


# -- what holds a tenant back, and only that tenant ------------------------------------------


async def test_same_tenant_writer_delays_only_its_tenant_and_is_named(
    pg_url: str, writers: list[OpenWriter]
) -> None:
    async with await cowork.open(pg_url, tenant_id="tenant-a", worker=True) as rt:
        rt_b = rt.for_tenant("tenant-b")
        got: dict[str, asyncio.Queue[cowork.EventEnvelope]] = {
            "tenant-a": asyncio.Queue(),
            "tenant-b": asyncio.Queue(),
        }

        def handler_for(tenant: str) -> Callable[[cowork.EventEnvelope], Any]:
            async def handler(event: cowork.EventEnvelope) -> None:
                await got[tenant].put(event)

            return handler

        await rt.events.subscribe("work:*", handler_for("tenant-a"), consumer_id="c")
        await rt_b.events.subscribe("work:*", handler_for("tenant-b"), consumer_id="c")

        held = await OpenWriter.in_scope(pg_url, "tenant-a")
        writers.append(held)
        a_event = await rt.events.publish("work:done", {})
        b_event = await rt_b.events.publish("work:done", {})
        delivered_b = await asyncio.wait_for(got["tenant-b"].get(), 5.0)
        assert delivered_b.event_id == b_event.event_id
        assert (await rt_b.health()).horizon_held_by == ()

        # Tenant a waits for its own open writer, and after 5 s it is named.
        await asyncio.sleep(5.5)
        assert got["tenant-a"].empty()
        health = await rt.health()
        assert health.healthy
        assert [h.pid for h in health.horizon_held_by] == [held.pid]
        holder = health.horizon_held_by[0]
        assert holder.xid == held.xid and holder.scope == "tenant-a"
        assert holder.age_seconds is not None and holder.age_seconds >= 5.0
        status = await _cowork_json(pg_url, "tenant-a", "status")
        assert [h["pid"] for h in status["horizon_held_by"]] == [held.pid]
        assert f"pid {held.pid}" in status["horizon_held_by"][0]["summary"]
        status_b = await _cowork_json(pg_url, "tenant-b", "status")
        assert status_b["horizon_held_by"] == []

        # When it commits, a's consumer gets its event; in the log the held transaction's
        # event comes first (it began first): nothing was skipped.
        await held.end(commit=True)
        delivered_a = await asyncio.wait_for(got["tenant-a"].get(), 10.0)
        assert delivered_a.event_id == a_event.event_id
        log = [e.event_type for e in await rt.events.read(limit=1000)]
        assert log.index("held:open") < log.index("work:done")


async def _cowork_json(url: str, tenant: str, *args: str) -> Any:
    env = {**os.environ, "COWORK_DATABASE_URL": url, "COWORK_TENANT_ID": tenant}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cowork",
        "--json",
        *args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


# -- delivery to another process while foreign writers stay open ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("foreign", ["other-database", "other-tenant"])
async def test_consumer_in_another_process_is_not_delayed_by_a_foreign_writer(
    foreign: str,
    pg_url: str,
    other_db_url: str,
    writers: list[OpenWriter],
    tmp_path: Path,
) -> None:
    """Acceptance 1 and 2: a write transaction held 10 s in another database, or another
    tenant's open transaction that has published; events published meanwhile reach a durable
    consumer in another process with p99 under 100 ms."""
    proc = await LineProcess(
        "consumer",
        [
            str(CONSUMER_SCRIPT),
            "--url",
            pg_url,
            "--tenant",
            "tenant-a",
            "--consumer",
            "latency",
            "--pattern",
            "lat:*",
            "--echo",
            "--poll",
            "5",
        ],
        tmp_path,
    ).start()
    try:
        await proc.ready()
        async with await cowork.open(pg_url, tenant_id="tenant-a", worker=False) as rt:
            if foreign == "other-database":
                writers.append(await OpenWriter.foreign_database(other_db_url))
            else:
                async with await cowork.open(pg_url, tenant_id="tenant-b", worker=False) as rt_b:
                    writers.append(await OpenWriter.in_scope(pg_url, "tenant-b"))
                    # and another tenant's rt.transaction() that published and stays open
                    held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    opened = asyncio.Event()

                    async def hold() -> None:
                        async with rt_b.transaction() as tx:
                            await tx.events.publish("b:held", {})
                            opened.set()
                            await held

                    holder = asyncio.create_task(hold())
                    await opened.wait()
                    try:
                        latencies = await _publish_and_measure(rt, proc)
                    finally:
                        held.set_result(None)
                        await holder
                    _assert_latency(latencies)
                    return
            latencies = await _publish_and_measure(rt, proc)
            assert not writers[0].conn.closed
        _assert_latency(latencies)
    finally:
        await proc.terminate()


async def _publish_and_measure(rt: cowork.Runtime, proc: LineProcess) -> list[float]:
    """Publish for HOLD_SECONDS, one event every 50 ms; latency from the call to publish to
    the handler in the other process."""
    sent: dict[str, float] = {}
    deadline = time.monotonic() + HOLD_SECONDS
    n = 0
    while time.monotonic() < deadline:
        started = time.time()
        envelope = await rt.events.publish("lat:ping", {"n": n})
        sent[envelope.event_id] = started
        n += 1
        await asyncio.sleep(0.05)
    received: dict[str, float] = {}
    index = 0
    end = time.monotonic() + 20
    while len(received) < len(sent) and time.monotonic() < end:
        line = await proc.wait_line(lambda s: s.startswith("HANDLED "), 20, start=index)
        index = proc.lines.index(line, index) + 1
        _, event_id, _position, at = line.split()
        received[event_id] = float(at)
    assert set(received) == set(sent)
    return sorted(received[i] - sent[i] for i in sent)


def _assert_latency(latencies: list[float]) -> None:
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert len(latencies) >= 100
    assert p99 < 0.100, (
        f"p99 {p99 * 1000:.1f} ms, median {statistics.median(latencies) * 1000:.1f} ms"
    )


async def test_a_transaction_declared_without_appends_holds_no_reader_and_cannot_append(
    pg_url: str,
) -> None:
    """Checkpoints, leases and heartbeats write with ``appends=False``: they hold nobody's
    horizon, so the log refuses an event from such a transaction (readers could not see it
    coming)."""
    from cowork.errors import CoworkError
    from cowork.events.envelope import NewEvent
    from cowork.events.log import append_events, prepare_event

    async with await cowork.open(pg_url, tenant_id="tenant-a", worker=False) as rt:
        db = rt._core.database
        entered = asyncio.Event()
        release = asyncio.Event()

        async def checkpoint_like() -> None:
            async with db.transaction(tenant_id="tenant-a", appends=False) as tx:
                await tx.execute(
                    "consumer_register",
                    {
                        "tenant_id": "tenant-a",
                        "consumer_id": "quiet",
                        "owner": "x",
                        "pattern": "*",
                        "after_tx": 0,
                        "after_position": 0,
                    },
                )
                entered.set()
                await release.wait()

        holder = asyncio.create_task(checkpoint_like())
        await entered.wait()
        try:
            envelope = await rt.events.publish("quiet:probe", {})
            horizon, _ = await _horizon(pg_url, "tenant-a")
            assert horizon > envelope.tx_id  # the open checkpoint-like writer holds nothing
        finally:
            release.set()
            await holder

        with pytest.raises(CoworkError):
            async with db.transaction(tenant_id="tenant-a", appends=False) as tx:
                await append_events(tx, "tenant-a", [prepare_event(NewEvent(event_type="x:y"))])


# -- a tight reader against committing churn ------------------------------------------------------
CHURN_SECONDS = float(os.environ.get("COWORK_CHURN_SECONDS", "15"))


@pytest.mark.slow
async def test_a_tight_reader_never_passes_a_committing_writer(pg_url: str) -> None:
    """Single publishes, multi-event transactions and workflow starts commit all the time while
    a reader re-reads the log every millisecond; every committed event must be read, once. This
    catches a horizon that mistakes a committing writer for a foreign one (0002 matched locks
    by virtual transaction id, which pg_lock_status() may report as "n/0" for some of a
    committing backend's locks: about one event in 10,000 was passed)."""
    import random

    from cowork.events.log import read_events

    async with await cowork.open(pg_url, tenant_id="churn", worker=False, pool_max_size=20) as rt:
        await rt.workflows.register(
            cowork.WorkflowDefinition(
                workflow_id="churn",
                version=1,
                name="churn",
                correlation=("k",),
                steps=(cowork.WaitStep(name="w", event="never:comes"),),
            )
        )
        stop = asyncio.Event()
        rng = random.Random(7)

        async def alone() -> None:
            while not stop.is_set():
                await rt.events.publish("churn:alone", {})

        async def in_transaction() -> None:
            while not stop.is_set():
                async with rt.transaction() as tx:
                    if rng.random() < 0.3:
                        await tx.workspaces.create(name="w", actor="churner")
                    await tx.events.publish_many(
                        [cowork.NewEvent(event_type="churn:tx") for _ in range(rng.randint(1, 3))]
                    )
                    await asyncio.sleep(rng.uniform(0, 0.01))

        async def starts() -> None:
            n = 0
            while not stop.is_set():
                await rt.workflows.start("churn", input={"k": f"k{n}"})
                n += 1

        seen: list[str] = []

        async def read_page(cursor: tuple[int, int]) -> list[cowork.EventEnvelope]:
            async with rt._core.database.transaction(tenant_id="churn", read_only=True) as tx:
                return await read_events(tx, "churn", cursor, 500)

        written = asyncio.Event()  # every writer has returned: all is committed

        async def reader() -> None:
            cursor = (0, 0)
            while True:
                last = written.is_set()  # before the read: an empty page after it is the end
                page = await read_page(cursor)
                seen.extend(e.event_id for e in page)
                if page:
                    cursor = page[-1].cursor
                elif last:
                    return
                await asyncio.sleep(0.001)

        tasks = [asyncio.create_task(alone()) for _ in range(3)]
        tasks += [asyncio.create_task(in_transaction()) for _ in range(4)]
        tasks.append(asyncio.create_task(starts()))
        reading = asyncio.create_task(reader())
        await asyncio.sleep(CHURN_SECONDS)
        stop.set()
        await asyncio.gather(*tasks)
        written.set()
        await reading
        in_log = [e async for e in rt.events.iterate(page_size=5000)]
    missing = {e.event_id for e in in_log} - set(seen)
    assert len(in_log) > 5_000, len(in_log)  # it churned
    assert len(seen) == len(set(seen)), "an event was read twice"
    passed = sorted((e.cursor, e.event_type) for e in in_log if e.event_id in missing)
    assert not missing, (
        f"{len(missing)} of {len(in_log)} committed events were passed over: {passed[:10]}"
    )
