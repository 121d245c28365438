"""``python -m benchmarks``: the whole suite (``bash benchmarks/run.sh`` sets up and runs it).

Every figure is measured beside its baseline in this run, on one fresh PostgreSQL database
(``cowork_bench_<pid>``, dropped at the end) and, for SQLite, in one temporary directory.
Throughput comparisons alternate the sides in short slices (``COWORK_BENCH_SLICE_SECONDS``)
for ``COWORK_BENCH_SECONDS`` per side, so that load from outside the benchmark falls on every
side alike; count-based ones (batch, read) alternate for ``COWORK_BENCH_ROUNDS`` rounds. Each
figure is total work over total time.
Prints the table and writes ``bench.json`` (``COWORK_BENCH_JSON`` to write elsewhere).
Exits 0 when the suite ran (targets met or not) unless ``COWORK_BENCH_STRICT=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cowork.redaction import redact_url

from . import ours, raw, report
from .cluster import start_private_cluster
from .common import (
    BenchDatabase,
    Figure,
    Rate,
    Side,
    Sizes,
    async_writers,
    combine,
    find_admin_url,
    horizon_lag,
    interleave,
    server_activity,
    settle,
    wait_readable,
    wal_counters,
    warm_up,
)
from .peers import EventsourcingRecorder, dbos_workflows, peer_version

TENANT_PUBLISH = "bench-publish"
TENANT_RAW_PUBLISH = "bench-raw-publish"
TENANT_BATCH = "bench-batch"
TENANT_LATENCY = "bench-latency"
TENANT_WORKFLOWS = "bench-workflows"
TENANT_REPLAY = "bench-replay"
TENANT_LONG_STEPS = "bench-long-steps"
LONG_STEP_SECONDS = 1.0
LONG_STEP_CONCURRENCY = 64


def _say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class Suite:
    def __init__(self, sizes: Sizes, db: BenchDatabase) -> None:
        self.sizes = sizes
        self.db = db
        self.url = db.url
        self.data: dict[str, Any] = {"raw": {}, "ours": {}, "peers": {}}
        self.errors: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.environment: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def section(self, name: str) -> AsyncIterator[None]:
        _say(f"{name} ...")
        with contextlib.suppress(Exception):
            self.environment[name] = server_activity(self.db.admin_url, self.db.name)
        with contextlib.suppress(Exception):
            self.environment[name]["checkpoint_seconds"] = await asyncio.to_thread(
                settle, self.db.admin_url
            )
        wal_before: dict[str, float] = {}
        with contextlib.suppress(Exception):
            wal_before = await asyncio.to_thread(wal_counters, self.db.admin_url)
        started = time.perf_counter()
        cpu_started = time.process_time()
        try:
            yield
        except Exception as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            _say(f"{name} FAILED: {exc}")
            traceback.print_exc(file=sys.stderr)
        finally:
            self.timings[name] = round(time.perf_counter() - started, 2)
            cpu = time.process_time() - cpu_started
            self.environment.setdefault(name, {})["client_cpu_seconds"] = round(cpu, 2)
            _say(f"{name}: client CPU {cpu:.1f} s")
            with contextlib.suppress(Exception):
                wal_after = await asyncio.to_thread(wal_counters, self.db.admin_url)
                self.environment.setdefault(name, {})["wal"] = {
                    key: wal_after[key] - wal_before[key] for key in wal_after
                }
                wal = self.environment[name]["wal"]
                _say(
                    f"{name} WAL: {wal['wal_records']:,.0f} records, {wal['wal_fpi']:,.0f} "
                    f"full-page images, {wal['wal_bytes'] / 2**20:,.1f} MiB, "
                    f"{wal['wal_sync']:,.0f} flushes"
                )
            _say(f"{name} done in {self.timings[name]:.1f}s")

    def _store(self, side: str, key: str, rate: Rate) -> None:
        self.data[side][key] = rate.as_dict()

    async def setup(self) -> None:
        rt = await ours.open_runtime(self.url, "bench-setup")  # applies the migrations
        await rt.close()
        self.data["raw_table"] = raw.create_raw_tables(self.url)
        self.data["server"] = self.db.server_facts()
        self.data["horizon_lag_at_start"] = await asyncio.to_thread(horizon_lag, self.url)
        lag = self.data["horizon_lag_at_start"]
        _say(
            f"commit-order horizon lag on this server: p50 {lag['p50_ms']:.1f} ms, "
            f"p90 {lag['p90_ms']:.1f} ms, max {lag['max_ms']:.1f} ms"
        )
        if lag["p90_ms"] > 10:
            _say(
                "WARNING: other transactions on this PostgreSQL server hold the commit-order "
                "horizon back; consumer latency and catch-up reads wait for them. "
                "COWORK_BENCH_CLUSTER=private measures on a private cluster instead."
            )

    async def publish(self) -> None:
        """One event per transaction: raw (explicit commit, and autocommit), ours and the
        eventsourcing recorder, 1 writer then 8, interleaved in short slices."""
        s = self.sizes
        es: EventsourcingRecorder | None = None
        try:
            es = EventsourcingRecorder(self.url)
        except Exception as exc:
            self.errors["eventsourcing"] = f"{type(exc).__name__}: {exc}"
        rt = await ours.open_runtime(self.url, TENANT_PUBLISH)
        conns: list[Any] = []
        try:
            for writers in (1, 8):
                raw_conns = [await raw.connect(self.url) for _ in range(writers)]
                conns += raw_conns
                raw_ops = raw.publish_ops(raw_conns, TENANT_RAW_PUBLISH)
                ours_ops = ours.publish_ops(rt, writers)
                sides = [
                    Side("raw", async_writers(raw_ops), writers),
                    Side("ours", async_writers(ours_ops), writers),
                ]
                await warm_up(raw_ops)
                await warm_up(ours_ops)
                if writers == 1:
                    auto = [await raw.connect(self.url, autocommit=True)]
                    conns += auto
                    auto_ops = raw.publish_ops(auto, TENANT_RAW_PUBLISH, autocommit=True)
                    await warm_up(auto_ops)
                    sides.append(Side("raw_autocommit", async_writers(auto_ops), writers))
                if es is not None:
                    await asyncio.to_thread(es.warm_up, writers)
                    sides.append(Side("eventsourcing", es.slice_runner(writers), writers))
                rates = await interleave(sides, s.seconds, s.slice_seconds)
                for name, rate in rates.items():
                    _say(f"  {name} {writers} writer(s): {rate.per_second:,.0f}/s")
                self._store("raw", f"publish_{writers}", rates["raw"])
                self._store("ours", f"publish_{writers}", rates["ours"])
                if "raw_autocommit" in rates:
                    self._store("raw", "publish_1_autocommit", rates["raw_autocommit"])
                if "eventsourcing" in rates:
                    self._store("peers", f"eventsourcing_append_{writers}", rates["eventsourcing"])
        finally:
            await rt.close()
            for conn in conns:
                await conn.close()
            if es is not None:
                es.close()

    async def batch_and_read(self) -> None:
        """Count-based: raw and ours alternate for ``rounds`` rounds; totals over totals."""
        s = self.sizes
        per_round = max(500, s.batch_events // s.rounds // 500 * 500)
        batches: dict[str, list[Rate]] = {"raw": [], "ours": []}
        reads: dict[str, list[Rate]] = {"raw": [], "ours": []}
        rt = await ours.open_runtime(self.url, TENANT_BATCH)
        try:
            for r in range(s.rounds):
                for side in ("raw", "ours") if r % 2 == 0 else ("ours", "raw"):
                    if side == "raw":
                        rate = await raw.batch(self.url, TENANT_BATCH, per_round)
                    else:
                        rate = await ours.batch(rt, per_round)
                    batches[side].append(rate)
                    _say(f"  round {r + 1} batch {side}: {rate.per_second:,.0f} events/s")
            waited = await wait_readable(self.url, TENANT_BATCH)
            self.data["ours"]["read_waited_for_horizon_seconds"] = round(waited, 3)
            for r in range(s.rounds):
                for side in ("raw", "ours") if r % 2 == 0 else ("ours", "raw"):
                    if side == "raw":
                        rate = await raw.read(self.url, TENANT_BATCH)
                    else:
                        rate = await ours.read(rt)
                    reads[side].append(rate)
                    _say(f"  round {r + 1} read {side}: {rate.per_second:,.0f} rows/s ({rate.ops})")
            # The same reads once the planner has statistics for the new rows (autovacuum's
            # ANALYZE may not have run yet above: that is the state a burst of writes leaves).
            await asyncio.to_thread(raw.analyze, self.url)
            for side in ("raw", "ours"):
                if side == "raw":
                    rate = await raw.read(self.url, TENANT_BATCH)
                else:
                    rate = await ours.read(rt)
                self._store(side, "read_after_analyze", rate)
                _say(f"  read {side} after ANALYZE: {rate.per_second:,.0f} rows/s")
        finally:
            await rt.close()
        for side in ("raw", "ours"):
            self._store(side, "batch_500", combine(batches[side]))
            self._store(side, "read", combine(reads[side]))
        raw_rows, ours_rows = reads["raw"][0].ops, reads["ours"][0].ops
        # Our log may also hold the runtime's own events (e.g. built-in workflow registrations).
        if not raw_rows <= ours_rows <= raw_rows + 20:
            raise RuntimeError(f"read different row counts: raw {raw_rows}, ours {ours_rows}")

    async def eventsourcing_batch_and_read(self) -> None:
        es = EventsourcingRecorder(self.url)
        try:
            rate = await asyncio.to_thread(es.batch, self.sizes.batch_events)
            self.data["peers"]["eventsourcing_batch_500"] = rate.as_dict()
            read = await asyncio.to_thread(es.read)
            self.data["peers"]["eventsourcing_read"] = read.as_dict()
        finally:
            es.close()

    async def latency(self) -> None:
        s = self.sizes
        self.data["horizon_lag_before_latency"] = await asyncio.to_thread(horizon_lag, self.url, 50)
        for mode in ("raw", "ours"):
            result = await ours.latency(
                self.url,
                f"{TENANT_LATENCY}-{mode}",
                mode=mode,
                count=s.latency_events,
                interval=s.latency_interval,
            )
            self.data[mode]["consumer_latency"] = result
            _say(f"  {mode}: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
        # The same measurement while a write transaction stays open in another database of
        # the server (a migration, a batch job, another application): it must not matter.
        other = BenchDatabase(self.db.admin_url, suffix="_other")
        await asyncio.to_thread(other.create)
        try:
            async with await psycopg.AsyncConnection.connect(other.url, autocommit=True) as held:
                await held.execute("CREATE TABLE held_open (x int)")
                await held.execute("BEGIN")
                await held.execute("INSERT INTO held_open VALUES (1)")
                result = await ours.latency(
                    self.url,
                    f"{TENANT_LATENCY}-foreign-open",
                    mode="ours",
                    count=s.latency_events,
                    interval=s.latency_interval,
                )
                await held.execute("ROLLBACK")
            self.data["ours"]["consumer_latency_foreign_open"] = result
            _say(
                f"  ours, another database's write transaction open throughout: "
                f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
            )
        finally:
            await asyncio.to_thread(other.drop)

    async def workflows(self) -> None:
        """Raw single-row transactions just before and just after our workflow run (the two
        halves together are the baseline), so drifting outside load hits both alike."""
        s = self.sizes
        conn = await raw.connect(self.url)
        try:
            ops = raw.single_row_ops(conn)
            await warm_up(ops)
            runner = async_writers(ops)
            before = await runner(s.seconds / 2)
            result = await ours.workflows(self.url, TENANT_WORKFLOWS, s.workflows)
            after = await runner(s.seconds / 2)
        finally:
            await conn.close()
        baseline = combine([Rate(before[0], before[1], 1), Rate(after[0], after[1], 1)])
        self._store("raw", "single_row_tx", baseline)
        self.data["ours"]["workflows"] = result
        _say(f"  raw single-row transactions: {baseline.per_second:,.0f}/s")
        _say(
            f"  ours: {result['transitions_per_second']:,.0f} transitions/s, "
            f"{result['workflows_per_second']:,.0f} workflows/s"
        )

    async def dbos(self) -> None:
        result = await dbos_workflows(self.url, self.sizes.workflows)
        self.data["peers"]["dbos"] = result
        _say(
            f"  dbos: {result['sequential_workflows_per_second']:,.0f} (sequential), "
            f"{result['concurrent_workflows_per_second']:,.0f} (concurrent) workflows/s"
        )

    async def long_steps(self) -> None:
        """Agent-sized steps: one-step workflows whose step sleeps 1 s, 64 at once, ours
        beside dbos doing the same (a DBOS queue with concurrency 64)."""
        count = self.sizes.long_step_workflows
        ours_result = await ours.long_steps(
            self.url, TENANT_LONG_STEPS, count, LONG_STEP_SECONDS, LONG_STEP_CONCURRENCY
        )
        self.data["ours"]["long_steps"] = ours_result
        _say(f"  ours: {ours_result['workflows_per_second']:,.1f} workflows/s")
        dbos_result = await dbos_workflows(
            self.url,
            count,
            "--step-seconds",
            str(LONG_STEP_SECONDS),
            "--concurrency",
            str(LONG_STEP_CONCURRENCY),
        )
        self.data["peers"]["dbos_long_steps"] = dbos_result
        _say(f"  dbos: {dbos_result['workflows_per_second']:,.1f} workflows/s")

    async def sqlite(self) -> None:
        s = self.sizes
        with tempfile.TemporaryDirectory(prefix="cowork-bench-sqlite-") as tmp:
            ours_path = Path(tmp) / "ours.db"
            url = f"sqlite:///{ours_path}"  # an absolute path gives sqlite:////...
            rt = await ours.open_runtime(url, TENANT_PUBLISH)
            raw_db = raw.RawSqlite(
                str(Path(tmp) / "raw.db"), raw.sqlite_schema(str(ours_path)), TENANT_PUBLISH
            )
            try:
                ours_ops = ours.publish_ops(rt, 1)
                await warm_up(ours_ops)
                for _ in range(5):
                    raw_db.op()
                rates = await interleave(
                    [Side("raw", raw_db.run_slice), Side("ours", async_writers(ours_ops))],
                    s.seconds,
                    s.slice_seconds,
                )
            finally:
                await rt.close()
                raw_db.close()
        for side, rate in rates.items():
            self._store(side, "sqlite_publish", rate)
            _say(f"  sqlite {side}: {rate.per_second:,.0f}/s")

    async def replay(self) -> None:
        n = self.sizes.replay_events
        loaded = await asyncio.to_thread(ours.load_replay, self.url, TENANT_REPLAY, n)
        self.data["replay_load"] = loaded
        _say(f"  loaded {n:,} events in {loaded['total_seconds']:.1f}s")
        await wait_readable(self.url, TENANT_REPLAY)
        for mode in ("raw", "ours"):
            result = await ours.replay(self.url, TENANT_REPLAY, mode)
            # Our log may also hold the runtime's own events (built-in workflow registrations).
            if not n <= result["events"] <= n + 20:
                raise RuntimeError(f"{mode} replay read {result['events']} of {n} events")
            self.data[mode]["replay"] = result
            _say(
                f"  {mode}: {result['events_per_second']:,.0f} events/s, "
                f"RSS growth {result['growth_mib']:+.1f} MiB"
            )

    # -- figures --------------------------------------------------------------------------------
    def _get(self, side: str, key: str, *path: str) -> Any:
        value: Any = self.data[side].get(key)
        for part in path:
            if value is None:
                return None
            value = value.get(part)
        return value

    def figures(self) -> list[Figure]:
        d = self._get
        err = self.errors
        n = self.sizes.replay_events
        figures = [
            Figure(
                key="publish_1",
                label="publish, 1 event/tx, 1 writer",
                unit="events/s",
                ours=d("ours", "publish_1", "per_second"),
                baseline=d("raw", "publish_1", "per_second"),
                baseline_label="raw INSERT;COMMIT",
                kind="min_ratio",
                threshold=0.75,
                target=">= 0.75x raw",
                error=err.get("publish"),
            ),
            Figure(
                key="publish_1_vs_autocommit",
                label="publish, 1 event/tx, 1 writer",
                unit="events/s",
                ours=d("ours", "publish_1", "per_second"),
                baseline=d("raw", "publish_1_autocommit", "per_second"),
                baseline_label="raw autocommit INSERT",
                kind="info",
                threshold=None,
                target="(1 round trip, info)",
                error=err.get("publish"),
            ),
            Figure(
                key="batch_500",
                label="publish_many, 500 events/tx",
                unit="events/s",
                ours=d("ours", "batch_500", "per_second"),
                baseline=d("raw", "batch_500", "per_second"),
                baseline_label="raw executemany",
                kind="min_ratio",
                threshold=0.6,
                target=">= 0.6x raw",
                error=err.get("batch_and_read"),
            ),
            Figure(
                key="read",
                label="catch-up read into envelopes",
                unit="events/s",
                ours=d("ours", "read", "per_second"),
                baseline=d("raw", "read", "per_second"),
                baseline_label="raw paged SELECT",
                kind="min_ratio",
                threshold=0.5,
                target=">= 0.5x raw",
                error=err.get("batch_and_read"),
            ),
            Figure(
                key="read_after_analyze",
                label="catch-up read, after ANALYZE",
                unit="events/s",
                ours=d("ours", "read_after_analyze", "per_second"),
                baseline=d("raw", "read_after_analyze", "per_second"),
                baseline_label="raw paged SELECT",
                kind="info",
                threshold=None,
                target="(fresh stats, info)",
                error=err.get("batch_and_read"),
            ),
            Figure(
                key="consumer_p50",
                label="publish -> consumer (other process) p50",
                unit="ms",
                ours=d("ours", "consumer_latency", "p50_ms"),
                baseline=d("raw", "consumer_latency", "p50_ms"),
                baseline_label="raw NOTIFY+SELECT",
                kind="max_value",
                threshold=5.0,
                target="<= 5 ms",
                higher_is_better=False,
                error=err.get("latency"),
            ),
            Figure(
                key="consumer_p99",
                label="publish -> consumer (other process) p99",
                unit="ms",
                ours=d("ours", "consumer_latency", "p99_ms"),
                baseline=d("raw", "consumer_latency", "p99_ms"),
                baseline_label="raw NOTIFY+SELECT",
                kind="max_value",
                threshold=25.0,
                target="<= 25 ms",
                higher_is_better=False,
                error=err.get("latency"),
            ),
            Figure(
                key="consumer_p99_foreign_open",
                label="publish -> consumer p99, another database's write tx open",
                unit="ms",
                ours=d("ours", "consumer_latency_foreign_open", "p99_ms"),
                baseline=d("ours", "consumer_latency", "p99_ms"),
                baseline_label="ours, nothing open",
                kind="max_value",
                threshold=25.0,
                target="<= 25 ms",
                higher_is_better=False,
                error=err.get("latency"),
            ),
            Figure(
                key="workflow_transitions",
                label="workflow transitions, 1 worker",
                unit="/s",
                ours=d("ours", "workflows", "transitions_per_second"),
                baseline=d("raw", "single_row_tx", "per_second"),
                baseline_label="raw 1-row UPDATE;COMMIT",
                kind="min_ratio",
                threshold=0.3,
                target=">= 0.3x raw",
                error=err.get("workflows"),
            ),
            Figure(
                key="sqlite_publish",
                label="SQLite publish, 1 event/tx",
                unit="events/s",
                ours=d("ours", "sqlite_publish", "per_second"),
                baseline=d("raw", "sqlite_publish", "per_second"),
                baseline_label="raw sqlite3 insert+commit",
                kind="min_ratio",
                threshold=0.5,
                target=">= 0.5x raw",
                error=err.get("sqlite"),
            ),
            Figure(
                key="replay_rss_growth",
                label=f"replay {n:,} events: RSS growth",
                unit="MiB",
                ours=d("ours", "replay", "growth_mib"),
                baseline=d("raw", "replay", "growth_mib"),
                baseline_label="raw paged SELECT",
                kind="max_value",
                threshold=50.0,
                target="< 50 MiB",
                higher_is_better=False,
                error=err.get("replay"),
            ),
            Figure(
                key="publish_8_vs_raw",
                label="publish, 1 event/tx, 8 writers",
                unit="events/s",
                ours=d("ours", "publish_8", "per_second"),
                baseline=d("raw", "publish_8", "per_second"),
                baseline_label="raw 8 writers",
                kind="min_ratio",
                threshold=0.6,
                target=">= 0.6x raw",
                section="issue7",
                error=err.get("publish"),
            ),
        ]
        es_error = err.get("eventsourcing")
        es_v = peer_version("eventsourcing")
        es_label = f"eventsourcing {es_v}" if es_v else "eventsourcing"
        figures += [
            Figure(
                key="publish_8_vs_eventsourcing",
                label="publish, 1 event/tx, 8 writers",
                unit="events/s",
                ours=d("ours", "publish_8", "per_second"),
                baseline=d("peers", "eventsourcing_append_8", "per_second"),
                baseline_label=es_label,
                kind="min_ratio",
                threshold=3.0,
                target=">= 3x peer",
                section="issue7",
                error=es_error or err.get("publish"),
            ),
            Figure(
                key="publish_1_vs_eventsourcing",
                label="publish, 1 event/tx, 1 writer",
                unit="events/s",
                ours=d("ours", "publish_1", "per_second"),
                baseline=d("peers", "eventsourcing_append_1", "per_second"),
                baseline_label=es_label,
                kind="info",
                threshold=None,
                target="(peer, info)",
                section="issue7",
                error=es_error or err.get("publish"),
            ),
            Figure(
                key="batch_500_vs_eventsourcing",
                label="publish_many, 500 events/tx",
                unit="events/s",
                ours=d("ours", "batch_500", "per_second"),
                baseline=d("peers", "eventsourcing_batch_500", "per_second"),
                baseline_label=es_label,
                kind="info",
                threshold=None,
                target="(peer, info)",
                section="issue7",
                error=err.get("eventsourcing_batch_and_read") or err.get("batch_and_read"),
            ),
            Figure(
                key="read_vs_eventsourcing",
                label="catch-up read",
                unit="events/s",
                ours=d("ours", "read", "per_second"),
                baseline=d("peers", "eventsourcing_read", "per_second"),
                baseline_label=es_label,
                kind="info",
                threshold=None,
                target="(peer, info)",
                section="issue7",
                error=err.get("eventsourcing_batch_and_read") or err.get("batch_and_read"),
            ),
        ]
        dbos = self.data["peers"].get("dbos") or {}
        dbos_best = max(
            (
                dbos.get("sequential_workflows_per_second") or 0.0,
                dbos.get("concurrent_workflows_per_second") or 0.0,
            ),
            default=0.0,
        )
        dbos_v = peer_version("dbos")
        figures.append(
            Figure(
                key="workflows_vs_dbos",
                label="three-step workflows, 1 worker",
                unit="workflows/s",
                ours=d("ours", "workflows", "workflows_per_second"),
                baseline=dbos_best or None,
                baseline_label=f"dbos {dbos_v}" if dbos_v else "dbos",
                kind="min_ratio",
                threshold=3.0,
                target=">= 3x peer",
                section="issue7",
                detail={"peer_mode": "the faster of sequential and concurrent"},
                error=err.get("dbos") or err.get("workflows"),
            )
        )
        figures.append(
            Figure(
                key="long_steps_vs_dbos",
                label=f"1 s steps, {LONG_STEP_CONCURRENCY} at once",
                unit="workflows/s",
                ours=d("ours", "long_steps", "workflows_per_second"),
                baseline=(self.data["peers"].get("dbos_long_steps") or {}).get(
                    "workflows_per_second"
                ),
                baseline_label=f"dbos {dbos_v} (queue)" if dbos_v else "dbos (queue)",
                kind="min_ratio",
                threshold=1.0,
                target=">= 1x peer",
                section="issue7",
                error=err.get("long_steps"),
            )
        )
        return figures


async def run(sizes: Sizes) -> int:
    cluster_kind = os.environ.get("COWORK_BENCH_CLUSTER", "shared").strip().lower() or "shared"
    if cluster_kind not in {"shared", "private"}:
        raise SystemExit("COWORK_BENCH_CLUSTER must be 'shared' (default) or 'private'")
    cluster = start_private_cluster() if cluster_kind == "private" else None
    try:
        return await _run(sizes, cluster.url if cluster else find_admin_url(), cluster_kind)
    finally:
        if cluster is not None:
            cluster.stop()


async def _run(sizes: Sizes, admin_url: str, cluster_kind: str) -> int:
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    db = BenchDatabase(admin_url)
    db.create()
    _say(f"database {db.name} created; sizes {sizes}")
    suite = Suite(sizes, db)
    try:
        await suite.setup()
        steps = (
            ("publish", suite.publish),
            ("batch_and_read", suite.batch_and_read),
            ("eventsourcing_batch_and_read", suite.eventsourcing_batch_and_read),
            ("latency", suite.latency),
            ("workflows", suite.workflows),
            ("dbos", suite.dbos),
            ("long_steps", suite.long_steps),
            ("sqlite", suite.sqlite),
            ("replay", suite.replay),
        )
        only = {x.strip() for x in os.environ.get("COWORK_BENCH_ONLY", "").split(",") if x.strip()}
        for name, step in steps:
            if only and name not in only:
                continue
            async with suite.section(name):
                await step()
    finally:
        db.drop()
        _say(f"database {db.name} dropped")
    figures = suite.figures()
    total = time.perf_counter() - started
    text = report.table(figures)
    print(text)
    summary = report.summary(figures)
    lag = suite.data.get("horizon_lag_before_latency") or suite.data.get("horizon_lag_at_start")
    where = (
        f"private cluster on {redact_url(admin_url)}"
        if cluster_kind == "private"
        else f"shared server {redact_url(admin_url)}"
    )
    print(f"\nPostgreSQL: {where}.", end="")
    if lag:
        print(
            f" Commit-order horizon lag (other transactions on the server): p50 "
            f"{lag['p50_ms']:.1f} ms, p90 {lag['p90_ms']:.1f} ms, max {lag['max_ms']:.1f} ms.",
            end="",
        )
    print(
        f"\n{summary['passed']}/{summary['judged']} targets met"
        + (f"; not met: {', '.join(summary['failed'])}" if summary["failed"] else "")
        + f". Whole run: {total:.0f} s (scale {sizes.scale})."
    )
    out = Path(os.environ.get("COWORK_BENCH_JSON") or ours.ROOT / "bench.json")
    report.write_json(
        out,
        {
            "started_at": started_at.isoformat(),
            "seconds": round(total, 2),
            "command": "bash benchmarks/run.sh",
            "sizes": sizes.__dict__,
            "machine": report.machine(),
            "database": {
                "name": db.name,
                "cluster": cluster_kind,
                "url": redact_url(admin_url),
                **suite.data.pop("server", {}),
            },
            "figures": [f.as_dict() for f in figures],
            "summary": summary,
            "table": text,
            "measurements": suite.data,
            "errors": suite.errors,
            "section_seconds": suite.timings,
            "environment_at_section_start": suite.environment,
        },
    )
    print(f"wrote {out}")
    strict = os.environ.get("COWORK_BENCH_STRICT", "").lower() in {"1", "true", "yes"}
    if suite.errors:
        return 1 if strict else 0
    return 1 if strict and not summary["all_passed"] else 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(run(Sizes.from_env()))


if __name__ == "__main__":
    sys.exit(main())
