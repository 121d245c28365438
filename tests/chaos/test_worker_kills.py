"""Chaos: workflow worker processes SIGKILLed at random during a long run.

Two ``cowork worker`` processes (``python -m cowork --database-url URL worker --tenant T --app
tests.chaos.kill_app:setup``) run the three-action-step workflow of :mod:`tests.chaos.kill_app`
while this test starts ``CHAOS_INSTANCES`` instances through the public API and, as the work
progresses, SIGKILLs a random worker (at least five times), starting a replacement each time.
A durable consumer (``chaos-audit``, in the workers) records every ``chaos:*`` event it handles,
so it too is killed and taken over.

At the end:

* every instance is ``completed``, its history has ``started`` once, each step's
  ``step_completed`` exactly once and in order, and ``completed`` once;
* the marker events (published by the action through ``ctx.tx``) show each (instance, step)
  exactly once, and ``workflow:completed`` appears once per instance;
* the audit consumer handled every ``chaos:*`` event, and every durable consumer of the tenant
  (the audit consumer and the engine's ``cowork.workflows``) has its checkpoint at the head of
  the log: lag 0, nothing parked.

It prints a report: kills (and how far the run was at each), the steps that a kill rolled back
and another worker re-ran, throughput, consumer state.

Knobs (environment):

* ``COWORK_CHAOS_SCALE`` (default ``1``): multiplies the instance count (500) and the kill count
  (6, never fewer than 5);
* ``COWORK_CHAOS_SEED``: seed of the random victim choice (printed; default: the clock).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

import cowork
from tests.chaos import kill_app
from tests.chaos.procs import Proc, stop_all
from tests.support.events import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCALE = max(0.1, float(os.environ.get("COWORK_CHAOS_SCALE", "1") or "1"))
TOTAL = max(500, round(500 * SCALE))
KILLS = max(5, round(6 * SCALE))
WORKERS = 2
TENANT = "chaos-kill"
RUN_TIMEOUT = 150.0 * SCALE
SETTLE_TIMEOUT = 60.0
EXEC_TABLE = "chaos_kill_exec"
AUDIT_TABLE = "chaos_kill_audit"


class Fleet:
    """The worker processes: the live ones, and every one ever started."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.live: list[Proc] = []
        self.all: list[Proc] = []

    async def spawn(self) -> Proc:
        proc = Proc(
            f"worker-{len(self.all)}",
            [
                "-m",
                "cowork",
                "--database-url",
                self.url,
                "worker",
                "--tenant",
                TENANT,
                "--app",
                "tests.chaos.kill_app:setup",
                "--log-level",
                "WARNING",
            ],
            self.log_dir,
            env={
                # A killed worker's claims are taken over when their lease expires: keep it
                # short so that the run fits CI (ignored by a version without leases).
                "COWORK_WORKFLOW_LEASE_SECONDS": "5",
                "CHAOS_SIDE_URL": self.url,
                "CHAOS_EXEC_TABLE": EXEC_TABLE,
                "CHAOS_AUDIT_TABLE": AUDIT_TABLE,
            },
        )
        await proc.start()
        self.live.append(proc)
        self.all.append(proc)
        return proc

    def tails(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}):\n{p.stderr_tail(15)}" for p in self.all)


async def completed_count(rt: cowork.Runtime) -> int:
    return (await rt.workflows.counts()).get("completed", 0)


async def test_worker_kills_complete_every_workflow_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("COWORK_CHAOS_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(
            f"CREATE TABLE {EXEC_TABLE} (instance_id text, step text, pid int, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
        await conn.execute(f"CREATE TABLE {AUDIT_TABLE} (event_id text, pid int)")

    rt = await cowork.open(pg_url, tenant_id=TENANT, worker=False, required=True)
    fleet = Fleet(pg_url, tmp_path)
    started_ids: dict[int, str] = {}
    kills: list[tuple[float, int, int, str]] = []
    starters: asyncio.Future[list[None]] | None = None
    try:
        await rt.workflows.register(kill_app.DEFINITION)
        for _ in range(WORKERS):
            await fleet.spawn()
        for proc in fleet.live:
            await proc.wait_line("CHAOS-READY", 60)
        t0 = time.monotonic()

        async def starter(offset: int, stride: int) -> None:
            for n in range(offset, TOTAL, stride):
                instance = await rt.workflows.start(
                    kill_app.WORKFLOW, input={"n": n}, idempotency_key=f"kill-{n}"
                )
                started_ids[n] = instance.instance_id

        starters = asyncio.gather(*(starter(k, 4) for k in range(4)))

        # Kill as the run makes progress (step executions, counted on the side), so that the
        # kills are spread over it and each lands while work remains.
        side = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
        executions = 3 * TOTAL
        thresholds = [executions * (k + 1) // (KILLS + 1) for k in range(KILLS)]
        last_kill = 0.0
        try:
            while len(kills) < KILLS:
                if time.monotonic() - t0 > RUN_TIMEOUT:
                    raise AssertionError(
                        f"only {len(kills)} kills after {RUN_TIMEOUT}s; completed "
                        f"{await completed_count(rt)}/{TOTAL}\n{fleet.tails()}"
                    )
                row = await (await side.execute(f"SELECT count(*) FROM {EXEC_TABLE}")).fetchone()
                ran = 0 if row is None else row[0]
                if ran >= thresholds[len(kills)] and time.monotonic() - last_kill > 0.5:
                    victim = rng.choice(fleet.live)
                    await victim.kill()
                    fleet.live.remove(victim)
                    last_kill = time.monotonic()
                    kills.append((last_kill - t0, await completed_count(rt), ran, victim.name))
                    await fleet.spawn()
                await asyncio.sleep(0.05)
        finally:
            await side.close()
        await starters
        assert len(started_ids) == TOTAL

        deadline = time.monotonic() + RUN_TIMEOUT
        while await completed_count(rt) < TOTAL:
            counts = await rt.workflows.counts()
            assert not counts.get("failed"), f"instances failed: {counts}\n{fleet.tails()}"
            if time.monotonic() > deadline:
                raise AssertionError(f"not all instances completed: {counts}\n{fleet.tails()}")
            await asyncio.sleep(0.1)
        run_seconds = time.monotonic() - t0
        for at, done_then, _, _ in kills:
            assert done_then < TOTAL, f"a kill at {at:.1f}s came after the run ended"

        # -- every instance completed exactly once --------------------------------------------
        counts = await rt.workflows.counts()
        assert counts == {"completed": TOTAL}, counts
        instances = await rt.workflows.list(workflow_id=kill_app.WORKFLOW, limit=TOTAL + 100)
        assert {i.instance_id for i in instances} == set(started_ids.values())
        gate = asyncio.Semaphore(8)

        async def check_history(instance_id: str) -> None:
            async with gate:
                history = await rt.workflows.history(instance_id)
            kinds = Counter(h.kind for h in history)
            steps = [h.step_name for h in history if h.kind == "step_completed"]
            assert kinds == {"started": 1, "step_completed": 3, "completed": 1}, (
                instance_id,
                history,
            )
            assert steps == list(kill_app.STEPS), (instance_id, steps)
            assert [h.seq for h in history] == list(range(1, len(history) + 1)), history

        await asyncio.gather(*(check_history(i) for i in started_ids.values()))

        # The log is read below the server-wide snapshot horizon (docs/architecture.md): an
        # event committed a moment ago may become readable a moment later. Wait for the last
        # workflow:completed events, then every earlier event is readable too.
        expected = {(i, s) for i in started_ids.values() for s in kill_app.STEPS}

        async def readable() -> list[cowork.EventEnvelope] | None:
            events = [e async for e in rt.events.iterate()]
            ended = {
                e.payload["instanceId"] for e in events if e.event_type == "workflow:completed"
            }
            return events if ended >= set(started_ids.values()) else None

        events = await eventually(readable, timeout=SETTLE_TIMEOUT, interval=0.2, what="the log")
        marks = Counter(
            (e.payload["instanceId"], e.payload["step"])
            for e in events
            if e.event_type == "chaos:mark"
        )
        missing_marks = expected - set(marks)
        assert not missing_marks, f"{len(missing_marks)} marks missing: {sorted(missing_marks)[:5]}"
        assert set(marks) == expected, (len(marks), len(expected))
        duplicated = [k for k, n in marks.items() if n != 1]
        assert not duplicated, f"(instance, step) marked more than once: {duplicated[:10]}"
        ended = Counter(
            e.payload["instanceId"] for e in events if e.event_type == "workflow:completed"
        )
        assert set(ended) == set(started_ids.values())
        assert set(ended.values()) == {1}, [k for k, n in ended.items() if n != 1][:10]
        transitions = Counter(
            (e.payload["instanceId"], e.payload["step"])
            for e in events
            if e.event_type == "workflow:step:completed"
        )
        assert set(transitions) == expected
        assert set(transitions.values()) == {1}, [k for k, n in transitions.items() if n != 1][:10]

        # -- durable consumers handled everything, checkpoints at the head --------------------
        # The head is the last event in commit order, which is not always the highest
        # position: a transaction that took its id early (a workflow transition updates its
        # instance first) may append after a later one has drawn a lower position.
        async def log_head() -> int:
            events = [e async for e in rt.events.iterate()]
            return events[-1].position

        async def consumers_at_head() -> list[cowork.ConsumerInfo] | None:
            infos = await rt.consumers.list()
            head = await log_head()
            ids = {c.consumer_id for c in infos}
            if {kill_app.AUDIT_CONSUMER, "cowork.workflows"} - ids:
                return None
            ok = all(c.lag == 0 and c.last_position == head for c in infos)
            return infos if ok else None

        deadline = time.monotonic() + SETTLE_TIMEOUT
        while (infos := await consumers_at_head()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumers not at the head (position {await log_head()}) after "
                    f"{SETTLE_TIMEOUT}s: {await rt.consumers.list()}\n{fleet.tails()}"
                )
            await asyncio.sleep(0.2)
        assert all(c.parked == 0 for c in infos), infos
        chaos_events = {e.event_id for e in events if e.event_type.startswith("chaos:")}
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            audit_rows = await (
                await conn.execute(f"SELECT event_id FROM {AUDIT_TABLE}")
            ).fetchall()
            exec_rows = await (await conn.execute(f"SELECT count(*) FROM {EXEC_TABLE}")).fetchone()
        audited = Counter(r[0] for r in audit_rows)
        missing = chaos_events - set(audited)
        assert not missing, f"{len(missing)} events never handled by the audit consumer"
        assert exec_rows is not None
        reruns = exec_rows[0] - len(expected)
        assert reruns >= 0

        print(
            f"worker kills chaos (seed {seed}): {TOTAL} instances x {len(kill_app.STEPS)} steps "
            f"in {run_seconds:.1f}s ({TOTAL * len(kill_app.STEPS) / run_seconds:.0f} steps/s) "
            f"by {len(fleet.all)} worker processes",
            f"  {len(kills)} SIGKILLs: "
            + ", ".join(
                f"{name} at {at:.1f}s ({ran} steps run, {d}/{TOTAL} instances done)"
                for at, d, ran, name in kills
            ),
            f"  steps re-run after a kill rolled them back: {reruns}; every (instance, step) "
            f"committed exactly once; {len(ended)} workflow:completed events",
            f"  audit consumer handled {len(chaos_events)} chaos events "
            f"({sum(audited.values()) - len(audited)} redeliveries); consumers: "
            + ", ".join(f"{c.consumer_id} lag {c.lag} parked {c.parked}" for c in infos),
            sep="\n",
        )

        for proc in list(fleet.live):
            code = await proc.terminate()
            assert code == 0, f"{proc.name} exited {code} on SIGTERM:\n{proc.stderr_tail()}"
    finally:
        if starters is not None and not starters.done():
            starters.cancel()
        await stop_all(fleet.all)
        await rt.close()
