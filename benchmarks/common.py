"""What every benchmark shares: sizes, the throwaway database, timing, RSS and results."""

from __future__ import annotations

import asyncio
import getpass
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

EVENT_TYPE = "bench:published"
AGGREGATE_TYPE = "bench"
_FILLER = "cowork benchmark payload text " * 2


# -- sizes ------------------------------------------------------------------------------------
def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does. ``COWORK_BENCH_SCALE`` multiplies every size
    (0.1 for a quick smoke run); single variables override one size each."""

    scale: float
    seconds: float  # total timed seconds per side of each throughput comparison
    rounds: int  # count-based benchmarks (batch, read) alternate raw and ours this many times
    slice_seconds: float  # throughput benchmarks alternate sides in slices this long
    batch_events: int  # events written by the batch benchmarks (and then read back)
    latency_events: int  # events published one by one to the consumer in another process
    latency_interval: float  # seconds between two of those publishes
    workflows: int  # three-step workflow instances (ours, and dbos)
    long_step_workflows: int  # one-step workflows whose step sleeps 1 s (ours, and dbos)
    replay_events: int  # events replayed for the memory figure

    @classmethod
    def from_env(cls) -> Sizes:
        scale = _env_float("COWORK_BENCH_SCALE", 1.0)
        if scale <= 0:
            raise SystemExit("COWORK_BENCH_SCALE must be positive")
        batch = _env_int("COWORK_BENCH_BATCH_EVENTS", int(50_000 * scale))
        return cls(
            scale=scale,
            seconds=_env_float("COWORK_BENCH_SECONDS", max(1.0, round(8.0 * scale, 2))),
            rounds=max(1, _env_int("COWORK_BENCH_ROUNDS", 3)),
            slice_seconds=_env_float("COWORK_BENCH_SLICE_SECONDS", 0.5),
            batch_events=max(500, math.ceil(batch / 500) * 500),
            latency_events=max(20, _env_int("COWORK_BENCH_LATENCY_EVENTS", int(500 * scale))),
            latency_interval=_env_float("COWORK_BENCH_LATENCY_INTERVAL", 0.01),
            workflows=max(20, _env_int("COWORK_BENCH_WORKFLOWS", int(500 * scale))),
            long_step_workflows=max(
                64, _env_int("COWORK_BENCH_LONG_STEP_WORKFLOWS", int(640 * scale))
            ),
            replay_events=max(
                1_000, _env_int("COWORK_BENCH_REPLAY_EVENTS", int(1_000_000 * scale))
            ),
        )


# -- the database -----------------------------------------------------------------------------
def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def find_admin_url() -> str:
    """``COWORK_BENCH_DATABASE_URL`` (any database of the server), else the local server on
    127.0.0.1:5432 as ``$PGUSER``, the current user or ``postgres``."""
    explicit = os.environ.get("COWORK_BENCH_DATABASE_URL", "").strip()
    candidates = [explicit] if explicit else []
    if not explicit:
        users = [os.environ.get("PGUSER"), getpass.getuser(), "postgres"]
        for user in dict.fromkeys(u for u in users if u):
            candidates.append(f"postgresql://{user}@127.0.0.1:5432/postgres")
    problems = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error as exc:
            problems.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    raise SystemExit(
        "benchmarks need PostgreSQL: set COWORK_BENCH_DATABASE_URL or run a server on "
        f"127.0.0.1:5432 ({'; '.join(problems)})"
    )


class BenchDatabase:
    """A fresh database ``cowork_bench_<pid>`` on the server, dropped at the end."""

    def __init__(self, admin_url: str, *, suffix: str = "") -> None:
        self.admin_url = admin_url
        self.name = f"cowork_bench_{os.getpid()}{suffix}"
        self.url = with_database(admin_url, self.name)

    def create(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def server_facts(self) -> dict[str, Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            facts: dict[str, Any] = {}
            for name in (
                "server_version",
                "synchronous_commit",
                "fsync",
                "shared_buffers",
                "max_connections",
            ):
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                facts[name] = row[0] if row else None
            found = conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            facts["connected_as_superuser"] = bool(found and found[0])
        return facts


def server_activity(admin_url: str, own_database: str) -> dict[str, Any]:
    """What else runs on the server and the machine (other sessions share both)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE backend_xid IS NOT NULL), "
            "count(DISTINCT datname) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM %s "
            "AND pid <> pg_backend_pid()",
            (own_database,),
        ).fetchone()
    load1, load5, _ = os.getloadavg()
    return {
        "other_client_backends": row[0] if row else None,
        "other_backends_holding_an_xid": row[1] if row else None,
        "other_databases_in_use": row[2] if row else None,
        "loadavg_1m": round(load1, 2),
        "loadavg_5m": round(load5, 2),
    }


def settle(admin_url: str) -> float:
    """Start a section from the same server state as every other: write out what earlier
    sections left dirty (``CHECKPOINT``), so that no section pays for the one before it.
    Returns the seconds the checkpoint took."""
    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    return round(time.perf_counter() - started, 3)


def wal_counters(admin_url: str) -> dict[str, float]:
    """The server's WAL counters (``pg_stat_wal``): records, full-page images, bytes, and
    how often the WAL was written and flushed."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"
        ).fetchone()
    keys = ("wal_records", "wal_fpi", "wal_bytes", "wal_write", "wal_sync")
    return dict(zip(keys, (float(v) for v in row), strict=True)) if row else {}


def horizon_lag(
    url: str, samples: int = 100, pause: float = 0.01, tenant_id: str = "bench-probe"
) -> dict[str, Any]:
    """How long a just-committed transaction stays above a tenant's commit-order horizon
    (``cowork_event_horizon``): the wait that other transactions impose on that tenant's
    gap-free readers (only the tenant's own and cross-tenant writers count). Milliseconds."""
    delays: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(samples):
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            xid = int(row[0])
            started = time.perf_counter()
            while time.perf_counter() - started < 5.0:
                row = conn.execute("SELECT cowork_event_horizon(%s)", (tenant_id,)).fetchone()
                if row is not None and int(row[0]) > xid:
                    break
                time.sleep(0.0005)
            delays.append((time.perf_counter() - started) * 1000)
            time.sleep(pause)
    return {
        "samples": samples,
        "p50_ms": round(percentile(delays, 50), 3),
        "p90_ms": round(percentile(delays, 90), 3),
        "p99_ms": round(percentile(delays, 99), 3),
        "max_ms": round(max(delays), 3),
    }


async def wait_readable(url: str, tenant_id: str, timeout: float = 120.0) -> float:
    """Wait until every event of ``tenant_id`` lies below the tenant's commit-order horizon, so
    that a catch-up read can see them all; returns the seconds waited."""
    started = time.monotonic()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT set_config('cowork.tenant_id', %s, false)", (tenant_id,))
        while True:
            cur = await conn.execute(
                "SELECT coalesce(max(tx_id), 0) < cowork_event_horizon(%s) "
                "FROM cowork_event_log WHERE tenant_id = %s",
                (tenant_id, tenant_id),
            )
            row = await cur.fetchone()
            if row and row[0]:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"events of {tenant_id} not readable after {timeout}s")
            await asyncio.sleep(0.05)


# -- events -----------------------------------------------------------------------------------
def payload(n: int, writer: int = 0) -> dict[str, Any]:
    """The payload of the benchmark event (about 120 bytes of JSON)."""
    return {"n": n, "writer": writer, "kind": "benchmark", "text": _FILLER}


METADATA: dict[str, Any] = {"source": "benchmark"}


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- measuring --------------------------------------------------------------------------------
def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


Op = Callable[[], Awaitable[object]]
SliceRunner = Callable[[float], Awaitable[tuple[int, float]]]


@dataclass
class Rate:
    ops: int
    seconds: float
    writers: int
    items_per_op: int = 1
    slices: list[float] = field(default_factory=list)  # per-slice rates, when interleaved

    @property
    def per_second(self) -> float:
        return self.ops * self.items_per_op / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ops": self.ops,
            "items": self.ops * self.items_per_op,
            "seconds": round(self.seconds, 4),
            "writers": self.writers,
            "per_second": round(self.per_second, 2),
        }
        if self.slices:
            data["slices"] = len(self.slices)
            data["slice_per_second_min_median_max"] = [
                round(min(self.slices), 1),
                round(percentile(self.slices, 50), 1),
                round(max(self.slices), 1),
            ]
        return data


def combine(rates: Sequence[Rate]) -> Rate:
    """Several runs of one side as one: total work over total time."""
    return Rate(
        sum(r.ops for r in rates),
        sum(r.seconds for r in rates),
        rates[0].writers,
        rates[0].items_per_op,
        [r.per_second for r in rates],
    )


def async_writers(ops: Sequence[Op]) -> SliceRunner:
    """A slice runner: ``len(ops)`` concurrent loops, each calling its op until the slice ends."""

    async def run_slice(seconds: float) -> tuple[int, float]:
        counts = [0] * len(ops)
        start = time.perf_counter()
        deadline = start + seconds

        async def loop(i: int) -> None:
            op = ops[i]
            n = 0
            while time.perf_counter() < deadline:
                await op()
                n += 1
            counts[i] = n

        await asyncio.gather(*(loop(i) for i in range(len(ops))))
        return sum(counts), time.perf_counter() - start

    return run_slice


async def warm_up(ops: Sequence[Op], times: int = 5) -> None:
    """Open connections, prepare statements, fill caches before timing."""
    for op in ops:
        for _ in range(times):
            await op()


@dataclass
class Side:
    """One contender of an interleaved comparison."""

    name: str
    run_slice: SliceRunner
    writers: int = 1


async def interleave(
    sides: Sequence[Side], seconds: float, slice_seconds: float
) -> dict[str, Rate]:
    """Time every side for ``seconds`` in total, in alternating slices of ``slice_seconds``
    (the order rotates each slice), so that load from outside the benchmark, which drifts,
    falls on every side alike. Returns total ops over total time per side."""
    slices = max(1, round(seconds / slice_seconds))
    per_slice = seconds / slices
    results: dict[str, list[tuple[int, float]]] = {side.name: [] for side in sides}
    for i in range(slices):
        k = i % len(sides)
        for side in [*sides[k:], *sides[:k]]:
            results[side.name].append(await side.run_slice(per_slice))
    rates = {}
    for side in sides:
        done = results[side.name]
        rates[side.name] = Rate(
            sum(n for n, _ in done),
            sum(t for _, t in done),
            side.writers,
            1,
            [n / t for n, t in done if t > 0],
        )
    return rates


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = math.floor(k)
    hi = math.ceil(k)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- results ----------------------------------------------------------------------------------
@dataclass
class Figure:
    """One row of the table: our figure beside its baseline and the target it must meet.

    ``kind`` says how ``passed`` is decided: ``min_ratio`` (ours / baseline >= threshold),
    ``max_value`` (ours <= threshold, e.g. a latency or a memory growth) or ``info``.
    """

    key: str
    label: str
    unit: str
    ours: float | None
    baseline: float | None
    baseline_label: str
    kind: str
    threshold: float | None
    target: str
    higher_is_better: bool = True
    section: str = "mission"
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.error is not None or self.ours is None or self.threshold is None:
            return None if self.kind == "info" else (False if self.error else None)
        if self.kind == "min_ratio":
            ratio = self.ratio
            return None if ratio is None else ratio >= self.threshold
        if self.kind == "max_value":
            return self.ours <= self.threshold
        return None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        data["passed"] = self.passed
        for name in ("ours", "baseline", "threshold"):
            if isinstance(data[name], float):
                data[name] = round(data[name], 4)
        return data
