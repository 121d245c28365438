"""Durable consumers across real processes: crash before checkpoint, one active
runner among several processes with lease takeover, and cross-process LISTEN/NOTIFY wake-ups
that survive a dropped LISTEN connection.

Each consumer runs in ``tests/support/consumer_proc.py`` (a subprocess of this test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cowork
from tests.support.lineproc import LineProcess, ProcessGroup

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "support" / "consumer_proc.py"
Cursor = tuple[int, int]


def _proc_args(url: str, tenant: str, consumer: str, **options: Any) -> list[str]:
    args = ["--url", url, "--tenant", tenant, "--consumer", consumer]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return args


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start consumer processes; whatever is still running at the end is killed."""
    group = ProcessGroup(tmp_path)

    async def start(name: str, args: list[str]) -> LineProcess:
        return await group.start(name, [str(SCRIPT), *args])

    try:
        yield start
    finally:
        await group.kill_all()


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    # Row-level security: the explicit cross-tenant scope (no-op for a superuser).
    await conn.execute("SELECT set_config('cowork.tenant_id', '*', false)")
    try:
        yield conn
    finally:
        await conn.close()


async def _checkpoint(
    admin: psycopg.AsyncConnection[Any], tenant: str, consumer: str
) -> dict[str, Any]:
    cur = await admin.execute(
        "SELECT last_tx_id, last_position, lease_owner, lease_expires_at "
        "FROM cowork_event_consumer_checkpoint WHERE tenant_id = %s AND consumer_id = %s",
        [tenant, consumer],
    )
    row = await cur.fetchone()
    assert row is not None, f"no checkpoint row for {consumer!r}"
    return {
        "cursor": (row[0], row[1]),
        "lease_owner": row[2],
        "lease_expires_at": row[3],
    }


def _owner_pid(lease_owner: str | None) -> int | None:
    """``host:pid:random`` -> pid."""
    if not lease_owner:
        return None
    return int(lease_owner.split(":")[-2])


async def _wait_owner(
    admin: psycopg.AsyncConnection[Any],
    tenant: str,
    consumer: str,
    among: set[int],
    timeout: float,
) -> int:
    deadline = time.monotonic() + timeout
    while True:
        pid = _owner_pid((await _checkpoint(admin, tenant, consumer))["lease_owner"])
        if pid in among:
            return pid
        assert time.monotonic() < deadline, f"no process of {among} took the lease in {timeout}s"
        await asyncio.sleep(0.02)


# -- a. crash before the checkpoint --------------------------------------------------------------
@pytest.mark.parametrize(
    "checkpoint_interval",
    [
        pytest.param(0.0, id="checkpoint-every-event"),
        pytest.param(30.0, id="checkpoint-per-page"),
    ],
)
async def test_crash_before_checkpoint_redelivers_from_the_checkpoint(
    pg_url: str,
    admin: psycopg.AsyncConnection[Any],
    spawn: Callable[..., Any],
    tmp_path: Path,
    checkpoint_interval: float,
) -> None:
    tenant, consumer, total, kill_after = "t-crash", "crash-consumer", 40, 15
    async with await cowork.open(pg_url, tenant_id=tenant) as rt:
        published: list[cowork.EventEnvelope] = []
        for batch in range(4):  # four transactions: four transaction ids in the cursors
            published += await rt.events.publish_many(
                [
                    cowork.NewEvent(event_type="job:queued", payload={"n": batch * 10 + i})
                    for i in range(10)
                ]
            )
    ids = [e.event_id for e in published]
    cursor_of = {e.event_id: e.cursor for e in published}
    assert len(ids) == total
    out = tmp_path / "handled.txt"
    options = {
        "out_file": out,
        "lease_ttl": 1.0,
        "poll": 0.2,
        "checkpoint_interval": checkpoint_interval,
    }

    first = await spawn(
        "first", _proc_args(pg_url, tenant, consumer, kill_after=kill_after, **options)
    )
    code = await first.wait_exit(30)
    assert code == -signal.SIGKILL, f"exit {code}; stderr:\n{first.stderr_tail()}"
    first_run = out.read_text().split()
    assert first_run == ids[:kill_after], "the first run handles the log in order up to its crash"
    killed_on = ids[kill_after - 1]

    checkpoint: Cursor = (await _checkpoint(admin, tenant, consumer))["cursor"]
    assert checkpoint < cursor_of[killed_on], (
        f"checkpoint {checkpoint} covers event {kill_after}, whose handler never returned"
    )
    if checkpoint_interval == 0.0:
        assert checkpoint > (0, 0), "expected checkpoints saved before the crash"

    expected_again = [i for i in ids if cursor_of[i] > checkpoint]
    second = await spawn("second", _proc_args(pg_url, tenant, consumer, **options))
    await second.ready()
    deadline = time.monotonic() + 20
    while len(out.read_text().split()) < len(first_run) + len(expected_again):
        assert time.monotonic() < deadline, f"restart stalled; stderr:\n{second.stderr_tail()}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # anything extra (wrongly) delivered shows up too
    assert await second.terminate() == 0, second.stderr_tail()

    second_run = out.read_text().split()[len(first_run) :]
    assert killed_on in second_run, "the event being handled at the crash is delivered again"
    assert second_run == expected_again, "the restart resumes exactly after the checkpoint"
    assert set(first_run) | set(second_run) == set(ids), "no event lost"
    final = await _checkpoint(admin, tenant, consumer)
    assert final["cursor"] == max(cursor_of.values())
    assert final["lease_owner"] is None, "a clean stop releases the lease"


# -- b. one active runner among three processes; takeover when it dies ---------------------------
async def test_three_processes_one_active_takeover_on_sigkill(
    pg_url: str, admin: psycopg.AsyncConnection[Any], spawn: Callable[..., Any]
) -> None:
    tenant, consumer, ttl = "t-lease", "lease-consumer", 2.0
    await admin.execute(
        "CREATE TABLE test_handler_log (pid integer NOT NULL, event_id text NOT NULL, "
        "position bigint NOT NULL, started double precision NOT NULL, "
        "ended double precision NOT NULL)"
    )
    options = {"table": "test_handler_log", "lease_ttl": ttl, "poll": 0.5, "handler_sleep": 0.01}
    procs = [
        await spawn(f"worker{i}", _proc_args(pg_url, tenant, consumer, **options)) for i in range(3)
    ]
    await asyncio.gather(*(p.ready() for p in procs))
    by_pid = {p.pid: p for p in procs}

    published: list[str] = []
    stop_publishing = asyncio.Event()

    async def publish_continuously(rt: cowork.Runtime) -> None:
        n = 0
        while not stop_publishing.is_set():
            n += 1
            envelope = await rt.events.publish("job:queued", {"n": n})
            published.append(envelope.event_id)
            await asyncio.sleep(0.015)

    async def handled_count(after: float = 0.0, pid: int | None = None) -> int:
        cur = await admin.execute(
            "SELECT count(*) FROM test_handler_log WHERE started > %s "
            "AND (%s::integer IS NULL OR pid = %s::integer)",
            [after, pid, pid],
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    takeovers: list[float] = []
    alive = set(by_pid)
    async with await cowork.open(pg_url, tenant_id=tenant) as rt:
        publisher = asyncio.create_task(publish_continuously(rt))
        try:
            for round_ in range(2):
                active = await _wait_owner(admin, tenant, consumer, alive, timeout=10)
                deadline = time.monotonic() + 10
                while await handled_count(pid=active) < 20:
                    assert time.monotonic() < deadline, by_pid[active].stderr_tail()
                    await asyncio.sleep(0.05)
                if round_ == 0:  # a live holder keeps its lease past the ttl (heartbeats)
                    await asyncio.sleep(ttl * 1.5)
                killed_at = time.time()
                os.kill(active, signal.SIGKILL)
                await by_pid[active].wait_exit(10)
                alive.discard(active)
                # Another process takes over within the lease ttl plus a margin.
                successor = await _wait_owner(admin, tenant, consumer, alive, timeout=ttl + 3)
                deadline = time.monotonic() + ttl + 3
                while await handled_count(after=killed_at, pid=successor) == 0:
                    assert time.monotonic() < deadline, by_pid[successor].stderr_tail()
                    await asyncio.sleep(0.02)
                takeovers.append(time.time() - killed_at)
            await asyncio.sleep(0.5)
        finally:
            stop_publishing.set()
            await publisher

        deadline = time.monotonic() + 20
        while True:
            cur = await admin.execute("SELECT DISTINCT event_id FROM test_handler_log")
            handled_ids = {r[0] for r in await cur.fetchall()}
            if set(published) <= handled_ids:
                break
            assert time.monotonic() < deadline, (
                f"{len(set(published) - handled_ids)} of {len(published)} events never handled"
            )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        for pid in alive:
            assert await by_pid[pid].terminate() == 0, by_pid[pid].stderr_tail()

    assert all(t < ttl + 2.0 for t in takeovers), f"takeover too slow: {takeovers}"
    cur = await admin.execute(
        "SELECT pid, event_id, started, ended FROM test_handler_log ORDER BY started, ended"
    )
    executions = await cur.fetchall()
    assert {r[0] for r in executions} <= set(by_pid)
    for before, after in pairwise(executions):
        assert after[2] >= before[3], (
            f"overlapping executions: pid {before[0]} ran {before[1]} until {before[3]:.6f}, "
            f"pid {after[0]} started {after[1]} at {after[2]:.6f}"
        )
    holders = [pid for pid, *_ in executions]
    switches = [(a, b) for a, b in pairwise(holders) if a != b]
    assert len(switches) == 2, (
        f"the active process changed {len(switches)} times, not only on the two kills: "
        f"{switches[:10]}"
    )
    assert set(published) <= {r[1] for r in executions}, "every published event handled"
    final = await _checkpoint(admin, tenant, consumer)
    cur = await admin.execute(
        "SELECT tx_id, position FROM cowork_event_log WHERE tenant_id = %s "
        "ORDER BY tx_id DESC, position DESC LIMIT 1",
        [tenant],
    )
    last = await cur.fetchone()
    assert last is not None and final["cursor"] == (last[0], last[1]), "nothing skipped"
    print(f"\n{len(published)} events, {len(executions)} executions, takeovers {takeovers}")


# -- c. cross-process wake-up, and re-LISTEN after the connection is terminated ------------------
async def _publish_and_time(
    rt: cowork.Runtime, proc: LineProcess, label: str, count: int
) -> list[float]:
    """Publish ``count`` events one by one; publish-to-handled latency of each (seconds)."""
    latencies = []
    for i in range(count):
        mark = len(proc.lines)
        started = time.time()
        envelope = await rt.events.publish("wake:ping", {"phase": label, "i": i})
        line = await proc.wait_line(
            lambda line, eid=envelope.event_id: line.startswith(f"HANDLED {eid} "),
            timeout=15,
            start=mark,
        )
        latencies.append(float(line.split()[3]) - started)
        await asyncio.sleep(0.05)
    return latencies


async def _listen_backend(admin: psycopg.AsyncConnection[Any], pid: int) -> tuple[Any, ...]:
    cur = await admin.execute(
        "SELECT pid, application_name, query FROM pg_stat_activity "
        "WHERE pid = %s AND query LIKE 'LISTEN%%'",
        [pid],
    )
    row = await cur.fetchone()
    assert row is not None, f"backend {pid} is not a LISTEN session"
    return tuple(row)


async def test_cross_process_wakeup_and_relisten_after_terminate(
    pg_url: str, admin: psycopg.AsyncConnection[Any], spawn: Callable[..., Any]
) -> None:
    tenant, consumer, poll = "t-wake", "wake-consumer", 5.0
    proc = await spawn(
        "waker", _proc_args(pg_url, tenant, consumer, poll=poll, lease_ttl=10, echo=True)
    )
    await proc.ready()
    listen_pid = int((await proc.wait_line(lambda s: s.startswith("LISTEN "), 10)).split()[1])
    assert (await _listen_backend(admin, listen_pid))[1] == "cowork"
    await _wait_owner(admin, tenant, consumer, {proc.pid}, timeout=10)

    async with await cowork.open(pg_url, tenant_id=tenant) as rt:
        assert await rt._core.database.wakeups.listener_backend_pid() != listen_pid
        live = await _publish_and_time(rt, proc, "live", 8)
        assert statistics.median(live) < 0.5, f"wake-up latencies {live} (poll is {poll}s)"

        # Drop the consumer's LISTEN connection, and publish at once (nobody hears the NOTIFY).
        mark = len(proc.lines)
        cur = await admin.execute("SELECT pg_terminate_backend(%s)", [listen_pid])
        assert (await cur.fetchone()) == (True,)
        dropped_at = time.time()
        during = [
            (await rt.events.publish("wake:ping", {"phase": "dropped", "i": i})).event_id
            for i in range(5)
        ]
        # The process re-LISTENs on a new connection ...
        line = await proc.wait_line(lambda s: s.startswith("LISTEN "), 10, start=mark)
        new_pid = int(line.split()[1])
        assert new_pid != listen_pid
        await _listen_backend(admin, new_pid)
        # ... and reads what was published meanwhile, without waiting for its poll.
        delays = []
        for eid in during:
            handled = await proc.wait_line(
                lambda s, eid=eid: s.startswith(f"HANDLED {eid} "), 15, start=mark
            )
            delays.append(float(handled.split()[3]) - dropped_at)
        assert max(delays) < 3.0, f"events published while LISTEN was down came after {delays}"

        # Events published after the reconnect are woken by NOTIFY again.
        after = await _publish_and_time(rt, proc, "after", 5)
        assert statistics.median(after) < 0.5, f"latencies after re-LISTEN {after}"
        assert max(after) < poll / 2, f"latencies after re-LISTEN {after}"

    assert await proc.terminate() == 0, proc.stderr_tail()
    print(f"\nlatencies: live {live}, while dropped {delays}, after re-LISTEN {after}")
