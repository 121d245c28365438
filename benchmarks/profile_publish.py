"""Where the time of the hot paths goes: ``bash benchmarks/run.sh profile [what ...]``.

``what`` is any of ``publish`` (default), ``batch``, ``read``, ``workflow``, or ``all``.
For each, on a fresh database ``cowork_bench_<pid>`` (dropped at the end):

1. wall time and this process's CPU time per operation, ours beside the raw baseline (so the
   client-side CPU overhead is visible apart from round trips and commits);
2. ``cProfile``: the top functions by own time (``tottime``) and by cumulative time;
3. ``pyinstrument`` (wall clock, async-aware) call tree, when it is installed.

Sizes: ``COWORK_PROFILE_OPS`` (default 2,000 single publishes; batches, reads and workflows
scale from it).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import itertools
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

import cowork

from . import ours, raw
from .common import (
    AGGREGATE_TYPE,
    EVENT_TYPE,
    METADATA,
    BenchDatabase,
    find_admin_url,
    payload,
    wait_readable,
)

Op = Callable[[], Awaitable[Any]]


def _section(title: str) -> None:
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


async def _measure(op: Op, n: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per op over ``n`` ops."""
    wall = time.perf_counter()
    cpu = time.process_time()
    for _ in range(n):
        await op()
    return (
        (time.perf_counter() - wall) * 1000 / n,
        (time.process_time() - cpu) * 1000 / n,
    )


async def _cprofile(op: Op, n: int, top: int = 30) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await op()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def _pyinstrument(op: Op, n: int) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument not installed: pip install -e '.[bench]')"
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    profiler.start()
    for _ in range(n):
        await op()
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


async def _report(name: str, ours_op: Op, raw_op: Op | None, n: int, unit: str) -> None:
    _section(f"{name}: {n} operations ({unit})")
    for op in (ours_op, raw_op):
        if op is not None:
            for _ in range(min(50, n)):
                await op()
    wall, cpu = await _measure(ours_op, n)
    print(f"ours: {wall:8.3f} ms wall/op, {cpu:8.3f} ms CPU/op in this process")
    if raw_op is not None:
        raw_wall, raw_cpu = await _measure(raw_op, n)
        print(f"raw : {raw_wall:8.3f} ms wall/op, {raw_cpu:8.3f} ms CPU/op in this process")
        print(f"ours - raw: {wall - raw_wall:+.3f} ms wall/op, {cpu - raw_cpu:+.3f} ms CPU/op")
    print("\n-- cProfile (ours) --")
    print(await _cprofile(ours_op, n))
    print("-- pyinstrument (ours, wall clock) --")
    print(await _pyinstrument(ours_op, n))


async def profile(what: set[str], n: int) -> None:
    db = BenchDatabase(find_admin_url(), suffix="_profile")
    db.create()
    try:
        rt = await ours.open_runtime(db.url, "bench-profile")
        raw.create_raw_tables(db.url)
        conn = await psycopg.AsyncConnection.connect(db.url)
        try:
            counter = itertools.count()
            if "publish" in what:

                async def publish() -> None:
                    await rt.events.publish(
                        EVENT_TYPE,
                        payload(next(counter)),
                        aggregate_type=AGGREGATE_TYPE,
                        aggregate_id="agg-0",
                        metadata=METADATA,
                    )

                async def raw_publish() -> None:
                    await conn.execute(raw.INSERT, raw.raw_row("bench-profile", next(counter), 0))
                    await conn.commit()

                await _report("publish (1 event per transaction)", publish, raw_publish, n, "1")
            if "batch" in what:

                async def batch() -> None:
                    await rt.events.publish_many(
                        [
                            cowork.NewEvent(
                                event_type=EVENT_TYPE,
                                payload=payload(next(counter)),
                                aggregate_type=AGGREGATE_TYPE,
                                aggregate_id="agg-0",
                                metadata=METADATA,
                            )
                            for _ in range(500)
                        ]
                    )

                async def raw_batch() -> None:
                    rows = [raw.raw_row("bench-profile", next(counter), 0) for _ in range(500)]
                    async with conn.transaction(), conn.cursor() as cur:
                        await cur.executemany(raw.INSERT, rows)

                await _report(
                    "publish_many (500 per call)", batch, raw_batch, max(5, n // 100), "500"
                )
            if "read" in what:
                reader = await ours.open_runtime(db.url, "bench-profile-read")
                try:
                    await ours.batch(reader, 20_000)
                    await raw.batch(db.url, "bench-profile-read", 20_000)
                    await wait_readable(db.url, "bench-profile-read")

                    async def read() -> None:
                        async for _ in reader.events.iterate(page_size=500):
                            pass

                    async def raw_read() -> None:
                        await raw.read(db.url, "bench-profile-read")

                    await _report("catch-up read of 20,000 events", read, raw_read, 3, "log")
                    await asyncio.to_thread(raw.analyze, db.url)
                    await _report("the same read after ANALYZE", read, raw_read, 3, "log")
                finally:
                    await reader.close()
        finally:
            await conn.close()
            await rt.close()
        if "workflow" in what:
            await _profile_workflows(db.url, max(50, n // 10))
    finally:
        db.drop()


async def _profile_workflows(url: str, count: int) -> None:
    _section(f"workflows: {count} three-step instances on one worker (whole process)")
    profiler = cProfile.Profile()
    profiler.enable()
    result = await ours.workflows(url, "bench-profile-wf", count)
    profiler.disable()
    print({k: result[k] for k in ("workflows_per_second", "transitions_per_second")})
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())


def main() -> int:
    choices = {"publish", "batch", "read", "workflow"}
    args = set(sys.argv[1:]) or {"publish"}
    if "all" in args:
        args = choices
    unknown = args - choices
    if unknown:
        print(f"unknown: {', '.join(sorted(unknown))}; choose from {sorted(choices)} or all")
        return 2
    n = int(os.environ.get("COWORK_PROFILE_OPS", "2000"))
    asyncio.run(profile(args, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
