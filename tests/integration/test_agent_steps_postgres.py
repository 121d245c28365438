"""Agent-sized workflow steps on PostgreSQL: no transaction or connection held across
a model call, steps that overlap far beyond the pool size, a crash mid-step re-runs only that
step, and a worker whose clock runs ahead never takes a live lease.
"""

from __future__ import annotations

import asyncio
import glob
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cowork
from cowork import ActionContext, ActionStep, InstanceStatus, TransactionContext
from tests.support.lineproc import LineProcess, ProcessGroup
from tests.support.postgres import db_required
from tests.support.workflow_worker import DEFINITION, STEPS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "support" / "workflow_worker.py"
TABLE = "test_step_log"
TENANT = "t1"


def _definition(workflow_id: str, *steps: Any) -> cowork.WorkflowDefinition:
    return cowork.WorkflowDefinition(
        workflow_id=workflow_id, version=1, name=workflow_id, correlation=("key",), steps=steps
    )


# -- 1. nothing held while an action awaits ----------------------------------------------------
async def test_an_awaiting_step_holds_no_transaction_and_delays_no_consumer(pg_url: str) -> None:
    """A step that registered its transactional part and then awaits 10 s: another tenant's
    (and its own tenant's) durable consumer sees events within 100 ms meanwhile, and no
    connection of the pool stays checked out, nor any transaction open, while it awaits."""
    async with await cowork.open(pg_url, tenant_id="agents", worker=True, pool_max_size=4) as rt:
        other = rt.for_tenant("bystander")
        ws = await rt.workspaces.create(name="Model output", actor="agent")
        awaiting = asyncio.Event()
        release = asyncio.Event()

        @rt.workflows.action("think")
        async def think(ctx: ActionContext) -> dict[str, Any]:
            @ctx.at_completion
            async def write(tx: TransactionContext) -> None:
                await tx.blackboard.put(ws.workspace_id, "answer", {"a": 42}, actor="agent")

            awaiting.set()
            await asyncio.wait_for(release.wait(), 30)  # the model call
            return {"thought": True}

        latencies: dict[str, list[float]] = {"agents": [], "bystander": []}
        sent: dict[str, float] = {}

        async def consume(event: cowork.EventEnvelope) -> None:
            latencies[event.tenant_id].append(time.perf_counter() - sent[event.event_id])

        await rt.events.subscribe("ping:*", consume, consumer_id="pinger")
        await other.events.subscribe("ping:*", consume, consumer_id="pinger")
        await rt.workflows.register(_definition("thinker", ActionStep(name="t", action="think")))
        started = await rt.workflows.start("thinker", input={"key": "q1"})
        await asyncio.wait_for(awaiting.wait(), 10)

        pool_busy: list[int] = []
        open_transactions: list[int] = []
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as probe:

            async def sample_transactions() -> None:
                cur = await probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid() "
                    "AND clock_timestamp() - state_change > interval '0.5 seconds'"
                )
                row = await cur.fetchone()
                open_transactions.append(int(row[0]) if row else -1)

            # Quiet phase: nothing else runs, so a connection checked out now would be the
            # action's (the watcher's check twice a second is the only other user).
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                stats = rt._core.database.pool_stats
                pool_busy.append(stats.get("pool_size", 0) - stats.get("pool_available", 0))
                await sample_transactions()
                await asyncio.sleep(0.02)
            # Busy phase: both tenants' consumers keep delivering while the action awaits.
            deadline = time.monotonic() + 8
            n = 0
            while time.monotonic() < deadline:
                for view in (rt, other):
                    event_id = f"ping-{view.tenant_id}-{n}"
                    sent[event_id] = time.perf_counter()
                    await view.events.publish("ping:sent", {"n": n}, event_id=event_id)
                await sample_transactions()
                n += 1
                await asyncio.sleep(0.1)
        release.set()
        done = await rt.workflows.wait(started.instance_id, timeout=10)
        assert done.status is InstanceStatus.COMPLETED
        assert (await rt.blackboard.get(ws.workspace_id, "answer")) is not None

        await asyncio.sleep(0.5)
        for tenant, values in latencies.items():
            assert len(values) >= 40, (tenant, len(values))
            ordered = sorted(values)
            p95 = ordered[int(len(ordered) * 0.95)]
            summary = (
                f"{tenant}: p95 {p95 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
                f"median {statistics.median(values) * 1000:.1f} ms"
            )
            # A transaction held across the 10 s await would delay them by seconds; an fsync
            # stall on a slow disk may cost one of them a few hundred milliseconds.
            assert p95 < 0.100, summary
            assert ordered[-1] < 1.0, summary
        # The action held no connection: nearly every quiet sample sees none checked out.
        assert sum(1 for b in pool_busy if b == 0) >= len(pool_busy) * 0.9, pool_busy
        # ... and no transaction sat open waiting for it (a held one would, for 10 s).
        assert max(open_transactions) == 0, open_transactions


# -- 2. steps overlap far beyond the pool ------------------------------------------------------
async def test_200_two_second_steps_overlap_with_a_pool_of_four(pg_url: str) -> None:
    async with await cowork.open(
        pg_url, tenant_id="agents", worker=True, pool_max_size=4, workflow_concurrency=32
    ) as rt:
        running = 0
        peak = 0

        @rt.workflows.action("nap")
        async def nap(ctx: ActionContext) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(2)
            finally:
                running -= 1

        await rt.workflows.register(_definition("napper", ActionStep(name="nap", action="nap")))
        began = time.monotonic()
        for n in range(200):
            await rt.workflows.start("napper", input={"key": f"n{n}"})
        deadline = began + 60
        while (counts := await rt.workflows.counts()).get("completed", 0) < 200:
            assert time.monotonic() < deadline, counts
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - began
    assert elapsed < 30, f"200 two-second steps took {elapsed:.1f} s"
    assert peak > 4, f"at most {peak} steps overlapped: they waited for the pool"
    print(f"\n200 x 2 s steps, pool 4, concurrency 32: {elapsed:.1f} s, peak overlap {peak}")


# -- workers in their own processes (3. is in tests/contract/test_step_crash.py) ---------------
Spawn = Callable[..., Awaitable[LineProcess]]


@pytest.fixture
async def spawn(pg_url: str, tmp_path: Path) -> AsyncIterator[Spawn]:
    group = ProcessGroup(tmp_path)

    async def start(name: str, *extra: str, env: dict[str, str] | None = None) -> LineProcess:
        args = ["--url", pg_url, "--tenant", TENANT, "--table", TABLE, *extra]
        return await group.start(name, [str(WORKER), *args], env=env)

    try:
        yield start
    finally:
        await group.kill_all()


def _libfaketime() -> str | None:
    """libfaketime from Debian's faketime package (what `faketime -f +120s cmd` preloads; the
    preload is used directly so that the worker is our child, not faketime's)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")) + sorted(
        glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    )
    return found[0] if found and shutil.which("faketime") else None


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    await conn.execute(
        f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, instance_id text NOT NULL, "
        "step text NOT NULL, pid integer NOT NULL, attempt integer NOT NULL, "
        "started double precision NOT NULL, ended double precision, idem text NOT NULL)"
    )
    try:
        yield conn
    finally:
        await conn.close()


async def _runs(admin: psycopg.AsyncConnection[Any]) -> list[tuple[str, int, str, float | None]]:
    cur = await admin.execute(f"SELECT step, pid, idem, ended FROM {TABLE} ORDER BY id")
    return [tuple(r) for r in await cur.fetchall()]  # type: ignore[misc]


# -- 7. a host clock running ahead never steals a live lease -------------------------------------
async def test_a_worker_with_a_clock_120_s_ahead_never_takes_a_live_lease(
    pg_url: str, admin: psycopg.AsyncConnection[Any], spawn: Spawn
) -> None:
    library = _libfaketime()
    if library is None:
        if db_required():
            pytest.fail("faketime is required under CI=true (apt-get install faketime)")
        pytest.skip("faketime is not installed")
    async with await cowork.open(pg_url, tenant_id=TENANT, worker=False) as rt:
        await rt.workflows.register(DEFINITION)
        healthy = await spawn("healthy", "--sleep", "2.5")
        await healthy.wait_prefix("READY ", 30)
        started = await rt.workflows.start(DEFINITION.workflow_id, input={"n": 7})

        async def first_step_running() -> bool:
            cur = await admin.execute(f"SELECT count(*) FROM {TABLE}")
            row = await cur.fetchone()
            return bool(row and row[0])

        deadline = time.monotonic() + 20
        while not await first_step_running():
            assert time.monotonic() < deadline, healthy.stderr_tail()
            await asyncio.sleep(0.05)
        ahead = await spawn(
            "ahead",
            "--sleep",
            "2.5",
            env={"LD_PRELOAD": library, "FAKETIME": "+120s", "DONT_FAKE_MONOTONIC": "1"},
        )
        await ahead.wait_prefix("READY ", 30)
        clock = await _host_clock_of(ahead)
        done = await rt.workflows.wait(started.instance_id, timeout=60)
        assert done.status is InstanceStatus.COMPLETED, done.last_error
        assert await ahead.terminate() == 0, ahead.stderr_tail()
        assert await healthy.terminate() == 0, healthy.stderr_tail()

    runs = await _runs(admin)
    assert [(step, pid) for step, pid, _, _ in runs] == [(step, healthy.pid) for step in STEPS], (
        f"the worker whose clock ran {clock:.0f} s ahead ran a step: {runs}"
    )
    assert clock > 100, f"faketime did not move the worker's clock ({clock:.1f} s)"


async def _host_clock_of(proc: LineProcess) -> float:
    """How far ahead the process's clock runs: its READY line ends with its ``time.time()``."""
    line = await proc.wait_prefix("READY ", 5)
    parts = line.split()
    return float(parts[3]) - time.time() if len(parts) > 3 else 0.0


# -- an event that commits while a step enters its wait is not missed ----------------------------
async def test_an_event_committed_while_a_step_enters_its_wait_advances_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor's checkpoint scans the log for the wait's event, then commits the wait.
    An event that commits between the scan and that commit must still advance the instance:
    the engine's consumer, handling it, waits for the checkpoint's row lock and re-reads."""
    from cowork.workflows import machine

    scanned = asyncio.Event()
    resume = asyncio.Event()
    original = machine.read_events
    pause_once = [True]

    async def slow_scan(*args: Any, **kwargs: Any) -> Any:
        page = await original(*args, **kwargs)
        if pause_once[0]:
            pause_once[0] = False
            scanned.set()
            await resume.wait()  # the event commits now, after this scan's snapshot
        return page

    monkeypatch.setattr(machine, "read_events", slow_scan)
    async with await cowork.open(pg_url, tenant_id="agents", worker=True) as rt:

        @rt.workflows.action("prepare")
        async def prepare(ctx: ActionContext) -> None:
            return None  # no writes: the checkpoint holds no xid while it scans

        await rt.workflows.register(
            _definition(
                "racer",
                ActionStep(name="prepare", action="prepare"),
                cowork.WaitStep(name="approved", event="race:approved"),
            )
        )
        started = await rt.workflows.start("racer", input={"key": "r1"})
        await asyncio.wait_for(scanned.wait(), 10)
        await rt.events.publish("race:approved", {"key": "r1"})
        await asyncio.sleep(0.5)  # the engine's consumer reaches the event meanwhile
        resume.set()
        done = await rt.workflows.wait(started.instance_id, timeout=15)
        assert done.status is InstanceStatus.COMPLETED, done
