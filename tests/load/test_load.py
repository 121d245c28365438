"""Load: 8 processes publishing and consuming for a fixed time.

Four publisher processes and four consumer processes (``tests/load/load_proc.py``) share one
PostgreSQL database (the per-test database on the shared server). Publishers publish
``load:tick`` events from two tasks each and start a workflow instance (two action steps) every
``COWORK_LOAD_WORKFLOW_EVERY`` events; each consumer process runs its own durable consumer
(``c0`` … ``c3``, pattern ``load:*``) and also the workflow executor (``worker=True``), so the
workflows are run by the consumers while they consume.

After a warm-up, the steady phase is measured at its start and end: the resident set size
(``VmRSS`` from ``/proc/<pid>/status``) of every process, the server backends connected to the
database (``pg_stat_activity``) and each process's pool statistics. The test asserts

* zero loss: every acknowledged event id (and every ``load:*`` event in the log) was handled by
  every consumer; no publish failed;
* no duplicate workflow transitions: every instance started is completed, its history has each
  step exactly once (and contiguous sequence numbers), each marker event exactly once;
* memory flat: no process grew by more than ``COWORK_LOAD_RSS_LIMIT_MB`` over the steady phase;
* no connection leak: the backends at the end of the steady phase exceed the count at its start
  by no more than the pools grew (plus 2), and never exceed what the pools allow; no pool holds
  more connections than its maximum, and no pool opened more new connections than its maximum
  during the phase;

and prints a report: events/s, p50/p99 publish latency, p50/p99 publish→consume latency, RSS
start/end per process, backends and pool sizes start/end.

Knobs (environment):

* ``COWORK_LOAD_SECONDS`` (default ``20``): length of the publishing phase;
* ``COWORK_LOAD_RATE`` (default ``0``): events/s per publisher process, ``0`` = as fast as it can;
* ``COWORK_LOAD_WORKFLOW_EVERY`` (default ``25``): a workflow start every N events of a
  publisher's first task (``0`` = no workflows);
* ``COWORK_LOAD_RSS_LIMIT_MB`` (default ``50``): allowed RSS growth per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cowork
from tests.chaos.procs import Proc, stop_all
from tests.load import load_proc

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECONDS = float(os.environ.get("COWORK_LOAD_SECONDS", "20") or "20")
RATE = float(os.environ.get("COWORK_LOAD_RATE", "0") or "0")
WORKFLOW_EVERY = int(os.environ.get("COWORK_LOAD_WORKFLOW_EVERY", "25") or "0")
RSS_LIMIT_MB = float(os.environ.get("COWORK_LOAD_RSS_LIMIT_MB", "50") or "50")
PUBLISHERS = 4
CONSUMERS = 4
CONCURRENCY = 2
PUBLISHER_POOL = 3
CONSUMER_POOL = 4
# Per process, besides its pool: the LISTEN connection and the NOTIFY connection.
BACKEND_BOUND = PUBLISHERS * (PUBLISHER_POOL + 2) + CONSUMERS * (CONSUMER_POOL + 2)
BACKEND_SLACK = 2  # a LISTEN or NOTIFY connection being re-established
WARMUP = min(4.0, SECONDS * 0.2)
DRAIN_TIMEOUT = 120.0
TENANT = "load"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def last_stats(proc: Proc) -> dict[str, Any]:
    lines = proc.find(lambda line: line.startswith("STATS "))
    assert lines, f"{proc.name} printed no STATS line; stderr:\n{proc.stderr_tail()}"
    stats: dict[str, Any] = json.loads(lines[-1][len("STATS ") :])
    return stats


async def backends(conn: psycopg.AsyncConnection[Any], dbname: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [dbname],
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


class Snapshot:
    def __init__(self, procs: list[Proc], count: int) -> None:
        self.at = time.monotonic()
        self.rss = {p.name: p.rss_kb() for p in procs}
        self.pools = {p.name: last_stats(p)["pool"] for p in procs}
        self.backends = count


async def test_eight_processes_lose_nothing_and_stay_flat(pg_url: str, tmp_path: Path) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    common = ["-m", "tests.load.load_proc", "--url", pg_url, "--tenant", TENANT]
    procs: list[Proc] = []
    for i in range(PUBLISHERS):
        procs.append(
            Proc(
                f"p{i}",
                [
                    *common,
                    *(
                        "--role",
                        "publish",
                        "--name",
                        f"p{i}",
                        "--out",
                        str(tmp_path / f"p{i}.json"),
                    ),
                    *("--seconds", str(SECONDS), "--concurrency", str(CONCURRENCY)),
                    *("--rate", str(RATE), "--workflow-every", str(WORKFLOW_EVERY)),
                    *("--pool-max-size", str(PUBLISHER_POOL)),
                ],
                tmp_path,
            )
        )
    for i in range(CONSUMERS):
        procs.append(
            Proc(
                f"c{i}",
                [
                    *common,
                    *(
                        "--role",
                        "consume",
                        "--name",
                        f"c{i}",
                        "--out",
                        str(tmp_path / f"c{i}.json"),
                    ),
                    *("--pool-max-size", str(CONSUMER_POOL)),
                ],
                tmp_path,
            )
        )
    publishers, consumers = procs[:PUBLISHERS], procs[PUBLISHERS:]
    rt: cowork.Runtime | None = None
    admin = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        for proc in procs:
            await proc.start()
        for proc in procs:
            await proc.wait_line("READY", 90)
        for proc in procs:
            os.kill(proc.pid, signal.SIGUSR1)
        t_go = time.monotonic()

        await asyncio.sleep(WARMUP)
        start = Snapshot(procs, await backends(admin, dbname))
        await asyncio.sleep(max(0.0, t_go + SECONDS - 0.5 - time.monotonic()))
        end = Snapshot(procs, await backends(admin, dbname))
        for proc in publishers:
            await proc.wait_line("DONE", 60)
        publish_seconds = time.monotonic() - t_go

        # -- drain: every consumer's checkpoint at the head ----------------------------------
        rt = await cowork.open(pg_url, tenant_id=TENANT, worker=False, required=True)
        names = {p.name for p in consumers}
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            busy = await rt.workflows.counts()  # first: a workflow ending later emits events
            infos = {c.consumer_id: c for c in await rt.consumers.list()}
            lagging = {n: infos[n].lag if n in infos else None for n in names}
            if all(v == 0 for v in lagging.values()) and set(busy) <= {"completed"}:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"not drained after {DRAIN_TIMEOUT}s: {lagging} {busy}")
            await asyncio.sleep(0.25)
        drained_seconds = time.monotonic() - t_go
        for proc in procs:
            code = await proc.terminate()
            assert code == 0, f"{proc.name} exited {code}:\n{proc.stderr_tail()}"

        results = {p.name: json.loads((tmp_path / f"{p.name}.json").read_text()) for p in procs}
        acked: dict[str, float] = {}
        publish_latencies: list[float] = []
        started: dict[str, str] = {}
        errors: list[str] = []
        for p in publishers:
            acked.update(results[p.name]["acked"])
            publish_latencies += results[p.name]["latencies"]
            started.update(results[p.name]["workflows"])
            errors += results[p.name]["errors"]

        # -- zero loss -----------------------------------------------------------------------
        assert not errors, f"{len(errors)} publisher calls failed: {errors[:10]}"
        log = [e async for e in rt.events.iterate()]
        in_log = {e.event_id for e in log}
        assert not set(acked) - in_log, f"acknowledged but not in the log: {len(acked)}"
        load_events = {e.event_id for e in log if e.event_type.startswith("load:")}
        end_to_end: list[float] = []
        by_id = {e.event_id: e for e in log}
        checkpoints = {i.consumer_id: i for i in await rt.consumers.list()}
        for c in consumers:
            seen: dict[str, float] = results[c.name]["seen"]
            missing = (set(acked) | load_events) - set(seen)
            details = [
                (i, by_id[i].event_type, by_id[i].cursor, by_id[i].recorded_at.isoformat())
                for i in sorted(missing)[:5]
                if i in by_id
            ]
            info = checkpoints.get(c.name)
            assert not missing, (
                f"{c.name} never handled {len(missing)}: {details}; its checkpoint "
                f"{None if info is None else (info.last_position, info.parked)}, "
                f"{len(seen)} seen, {results[c.name]['redeliveries']} redelivered"
            )
            end_to_end += [seen[i] - began for i, began in acked.items()]

        # -- workflows: every instance completed, no duplicate transition ---------------------
        for instance_id in started.values():
            instance = await rt.workflows.get(instance_id)
            assert instance is not None and instance.status is cowork.InstanceStatus.COMPLETED
            history = await rt.workflows.history(instance_id)
            kinds = Counter(h.kind for h in history)
            assert kinds == {"started": 1, "step_completed": 2, "completed": 1}, history
            assert [h.step_name for h in history if h.kind == "step_completed"] == list(
                load_proc.STEPS
            )
            assert [h.seq for h in history] == list(range(1, len(history) + 1)), history
        marks = Counter(
            (e.payload["instanceId"], e.payload["step"])
            for e in log
            if e.event_type == "load:wf:mark"
        )
        assert set(marks) == {(i, s) for i in started.values() for s in load_proc.STEPS}
        assert set(marks.values()) <= {1}, [k for k, n in marks.items() if n > 1][:5]
        transitions = Counter(
            (e.payload["instanceId"], e.payload["step"])
            for e in log
            if e.event_type == "workflow:step:completed"
            and e.payload.get("workflowId") == load_proc.WORKFLOW
        )
        assert set(transitions) == set(marks)
        assert set(transitions.values()) <= {1}, [k for k, n in transitions.items() if n > 1][:5]

        # -- report --------------------------------------------------------------------------
        steady = end.at - start.at
        lines = [
            f"load: {PUBLISHERS} publishers x {CONCURRENCY} tasks, {CONSUMERS} consumers, "
            f"{SECONDS:.0f}s (rate {'max' if not RATE else f'{RATE:.0f}/s per publisher'})",
            f"  published {len(acked)} events = {len(acked) / SECONDS:.0f} events/s "
            f"({len(load_events)} load:* events in the log incl. workflow marks); "
            f"consumed {CONSUMERS} x {len(load_events)} = "
            f"{CONSUMERS * len(load_events) / (drained_seconds):.0f} deliveries/s; "
            f"drained {drained_seconds - publish_seconds:.1f}s after publishing ended",
            f"  publish latency p50 {percentile(publish_latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(publish_latencies, 99) * 1000:.1f} ms; publish->consume p50 "
            f"{percentile(end_to_end, 50) * 1000:.1f} ms, p99 "
            f"{percentile(end_to_end, 99) * 1000:.1f} ms, max {max(end_to_end) * 1000:.0f} ms",
            f"  workflows {len(started)} completed, each step once; redeliveries "
            + ", ".join(f"{c.name} {results[c.name]['redeliveries']}" for c in consumers),
            f"  steady phase {steady:.1f}s: backends {start.backends} -> {end.backends} "
            f"(bound {BACKEND_BOUND})",
        ]
        for p in procs:
            s_pool, e_pool = start.pools[p.name], end.pools[p.name]
            rss_s, rss_e = start.rss[p.name] or 0, end.rss[p.name] or 0
            lines.append(
                f"  {p.name}: RSS {rss_s / 1024:.1f} -> {rss_e / 1024:.1f} MB "
                f"({(rss_e - rss_s) / 1024:+.1f}); pool size {s_pool.get('pool_size')} -> "
                f"{e_pool.get('pool_size')} (max {e_pool.get('pool_max')}), connections opened "
                f"{e_pool.get('connections_num', 0) - s_pool.get('connections_num', 0)}, "
                f"waits {e_pool.get('requests_queued', 0) - s_pool.get('requests_queued', 0)}, "
                f"errors {e_pool.get('requests_errors', 0)}"
            )
        print("\n".join(lines))

        # -- memory flat, no connection leak -------------------------------------------------
        for p in procs:
            assert start.rss[p.name] and end.rss[p.name], (p.name, start.rss, end.rss)
            grown = (end.rss[p.name] - start.rss[p.name]) / 1024
            assert grown < RSS_LIMIT_MB, f"{p.name} RSS grew {grown:.1f} MB in {steady:.1f}s"
        # Pools may still grow (up to their maximum) during the phase; any other new backend
        # is a connection that something opened and kept.
        pool_growth = sum(
            max(0, end.pools[p.name]["pool_size"] - start.pools[p.name]["pool_size"]) for p in procs
        )
        assert end.backends - start.backends <= pool_growth + BACKEND_SLACK, (
            f"backends {start.backends} -> {end.backends}, pools grew by {pool_growth}"
        )
        assert end.backends <= BACKEND_BOUND, (end.backends, BACKEND_BOUND)
        for p in procs:
            s_pool, e_pool = start.pools[p.name], end.pools[p.name]
            assert e_pool["pool_size"] <= e_pool["pool_max"], (p.name, e_pool)
            opened = e_pool.get("connections_num", 0) - s_pool.get("connections_num", 0)
            assert opened <= e_pool["pool_max"], f"{p.name} pool churned: {s_pool} -> {e_pool}"
            assert not e_pool.get("requests_errors"), (p.name, e_pool)
    finally:
        await stop_all(procs)
        if rt is not None:
            await rt.close()
        with contextlib.suppress(psycopg.Error):
            await admin.close()
