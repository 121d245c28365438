"""Workflow workers across real processes on PostgreSQL: many instances in
flight, a worker SIGKILLed in the middle of a step, takeover, exactly-once steps.

Each worker is ``tests/support/workflow_worker.py`` (a subprocess of this test): an embedded
worker whose action records every execution twice, once through the step's transaction (a
``test:action:ran`` event, committed only with the step) and once through a separate autocommit
connection (a row in a test table with start and end times, kept even when the step rolls back).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cowork
from tests.support.lineproc import LineProcess, ProcessGroup
from tests.support.workflow_worker import DEFINITION, STEPS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "support" / "workflow_worker.py"
TENANT = "t-workers"
TABLE = "test_step_log"
TOTAL = 200
HANG_AFTER = 40


Spawn = Callable[..., Awaitable[LineProcess]]


@pytest.fixture
async def spawn(pg_url: str, tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start worker processes on ``pg_url``; whatever still runs at the end is killed."""
    group = ProcessGroup(tmp_path)

    async def start(name: str, *extra: str) -> LineProcess:
        args = ["--url", pg_url, "--tenant", TENANT, "--table", TABLE, *extra]
        return await group.start(name, [str(SCRIPT), *args])

    try:
        yield start
    finally:
        await group.kill_all()


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


Execution = tuple[int, str, str, int, int, float, float | None]


async def _executions(admin: psycopg.AsyncConnection[Any]) -> list[Execution]:
    cur = await admin.execute(
        f"SELECT id, instance_id, step, pid, attempt, started, ended FROM {TABLE} ORDER BY id"
    )
    return [tuple(r) for r in await cur.fetchall()]


async def _count(admin: psycopg.AsyncConnection[Any], where: str, *params: Any) -> int:
    cur = await admin.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}", params)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_200_instances_across_worker_processes_with_a_sigkill_mid_step(
    pg_url: str, admin: psycopg.AsyncConnection[Any], spawn: Spawn
) -> None:
    began = time.monotonic()
    await admin.execute(
        f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, instance_id text NOT NULL, "
        "step text NOT NULL, pid integer NOT NULL, attempt integer NOT NULL, "
        "started double precision NOT NULL, ended double precision, idem text NOT NULL)"
    )
    async with await cowork.open(pg_url, tenant_id=TENANT, worker=False) as rt:
        assert await rt.workflows.register(DEFINITION) is True
        instances = [
            await rt.workflows.start(
                DEFINITION.workflow_id, input={"n": n}, idempotency_key=f"n{n}"
            )
            for n in range(TOTAL)
        ]
        ids = {i.instance_id for i in instances}
        assert len(ids) == TOTAL
        assert await rt.workflows.counts() == {"running": TOTAL}

        # Worker A hangs inside its HANG_AFTER-th step (its event not committed).
        # A runs one step at a time, so what it committed and the one execution it leaves
        # unfinished are known exactly; B and C run four at once (the default).
        a = await spawn("worker-a", "--hang-after", str(HANG_AFTER))
        b = await spawn("worker-b", "--concurrency", "4")
        await asyncio.gather(
            a.wait_prefix("READY ", 30),
            b.wait_prefix("READY ", 30),
        )
        _, hung_instance, hung_step, _ = (await a.wait_prefix("HANGING ", 30)).split()
        hung_at = time.time()
        # B keeps working while A holds its instance (SKIP LOCKED, not a queue behind A).
        deadline = time.monotonic() + 15
        while await _count(admin, "pid = %s AND started > %s", b.pid, hung_at) < 10:
            assert time.monotonic() < deadline, f"B stalled while A hung:\n{b.stderr_tail()}"
            await asyncio.sleep(0.05)
        assert (
            await _count(
                admin,
                "instance_id = %s AND step = %s AND pid <> %s",
                hung_instance,
                hung_step,
                a.pid,
            )
            == 0
        ), "another worker ran the step that A was still running"

        killed_at = time.time()
        os.kill(a.pid, signal.SIGKILL)
        assert await a.wait_exit(10) == -signal.SIGKILL
        c = await spawn("worker-c", "--concurrency", "4")
        await c.wait_prefix("READY ", 30)

        deadline = time.monotonic() + 40
        while (counts := await rt.workflows.counts()) != {"completed": TOTAL}:
            assert time.monotonic() < deadline, (
                f"not all completed: {counts}\nB:\n{b.stderr_tail()}\nC:\n{c.stderr_tail()}"
            )
            await asyncio.sleep(0.1)
        finished = time.monotonic()

        assert await b.terminate() == 0, b.stderr_tail()
        assert await c.terminate() == 0, c.stderr_tail()

        # Every history: started, each step exactly once and in order, completed.
        expected = [
            ("started", None),
            *(("step_completed", s) for s in STEPS),
            ("completed", None),
        ]
        for instance in instances:
            history = await rt.workflows.history(instance.instance_id)
            assert [(h.kind, h.step_name) for h in history] == expected, (
                instance.instance_id,
                [(h.kind, h.step_name, h.detail) for h in history],
            )
            assert [h.seq for h in history] == list(range(1, len(expected) + 1))

        # Exactly once through the transaction: one committed event per (instance, step).
        ran = [
            e async for e in rt.events.iterate(page_size=2000) if e.event_type == "test:action:ran"
        ]
        per_step = Counter((e.payload["instanceId"], e.payload["step"]) for e in ran)
        assert set(per_step) == {(i, s) for i in ids for s in STEPS}
        duplicated = {k: n for k, n in per_step.items() if n != 1}
        assert not duplicated, f"steps committed more than once: {duplicated}"
        committed_by = Counter(e.payload["pid"] for e in ran)
        hung_event = next(
            e
            for e in ran
            if (e.payload["instanceId"], e.payload["step"]) == (hung_instance, hung_step)
        )
        assert hung_event.payload["pid"] != a.pid, "the killed step's event was committed"
        assert committed_by[a.pid] == HANG_AFTER - 1, committed_by
        assert committed_by[b.pid] > 0 and committed_by[c.pid] > 0, committed_by
        assert set(committed_by) == {a.pid, b.pid, c.pid}

        # The instance data agrees with the committed events.
        by_pair = {(e.payload["instanceId"], e.payload["step"]): e.payload["pid"] for e in ran}
        for instance in await rt.workflows.list(workflow_id=DEFINITION.workflow_id, limit=TOTAL):
            assert instance.data == {f"{s}.pid": by_pair[(instance.instance_id, s)] for s in STEPS}

    # No two executions of one (instance, step) ever overlapped, across processes.
    executions = await _executions(admin)
    unfinished = [e for e in executions if e[6] is None]
    assert [(e[1], e[2], e[3]) for e in unfinished] == [(hung_instance, hung_step, a.pid)], (
        "only the step A was killed in should lack an end time"
    )
    kill_time = {a.pid: killed_at}
    grouped: dict[tuple[str, str], list[Execution]] = defaultdict(list)
    for execution in executions:
        grouped[(execution[1], execution[2])].append(execution)
    assert set(grouped) == {(i, s) for i in ids for s in STEPS}
    for pair, runs in grouped.items():
        runs.sort(key=lambda e: e[5])
        for earlier, later in pairwise(runs):
            earlier_end = earlier[6] if earlier[6] is not None else kill_time[earlier[3]]
            assert later[5] >= earlier_end, (
                f"{pair}: pid {later[3]} started at {later[5]:.6f} while pid {earlier[3]} ran "
                f"it from {earlier[5]:.6f} to {earlier_end:.6f}"
            )
    rerun = grouped[(hung_instance, hung_step)]
    assert len(rerun) == 2 and rerun[1][3] in (b.pid, c.pid), rerun
    idem = await admin.execute(
        f"SELECT DISTINCT idem FROM {TABLE} WHERE instance_id = %s AND step = %s",
        (hung_instance, hung_step),
    )
    assert len(await idem.fetchall()) == 1, "the re-run got another idempotency key"
    assert rerun[1][5] >= killed_at, "the killed step was taken over before the kill"
    finished_runs = [e for e in executions if e[6] is not None]
    assert len(finished_runs) == TOTAL * len(STEPS), (
        f"{len(finished_runs)} finished executions for {TOTAL * len(STEPS)} steps: some step ran "
        "to its end more than once"
    )
    print(
        f"\n{TOTAL} instances, {len(executions)} executions, committed by pid "
        f"{dict(committed_by)}, all completed {finished - began:.1f}s after the start"
    )
