"""SQLite: a single publish runs on the event loop's thread when the write lock is free, and
goes to the database thread (which waits for the lock) when another process holds it, so the
event loop is never blocked waiting for a lock."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from pathlib import Path

import cowork
from tests.support.events import read_through


async def test_a_publish_waits_for_a_held_write_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "held.db"
    async with await cowork.open(f"sqlite:///{path}", tenant_id="t1", worker=False) as rt:
        first = await rt.events.publish("lock:before")

        locked = threading.Event()
        release = threading.Event()

        def hold_the_write_lock() -> None:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(5)
            other.execute("ROLLBACK")
            other.close()

        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 5)

        ticks: list[float] = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        publishing = asyncio.create_task(rt.events.publish("lock:during", {"n": 1}))
        await asyncio.sleep(0.3)
        assert not publishing.done(), "the publish did not wait for the held lock"
        release.set()
        during = await asyncio.wait_for(publishing, 5)
        ticker.cancel()
        holder.join()

        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert len(ticks) >= 20 and max(gaps) < 0.2, "the event loop was blocked by the lock"
        assert [e.event_type for e in await read_through(rt, during)] == [
            "lock:before",
            "lock:during",
        ]
        assert during.position > first.position


async def test_inline_publishes_keep_the_busy_timeout_for_transactions(tmp_path: Path) -> None:
    path = tmp_path / "timeout.db"
    async with await cowork.open(f"sqlite:///{path}", tenant_id="t1", worker=False) as rt:
        await rt.events.publish("inline:one")
        conn = rt._core.database._conn  # type: ignore[attr-defined]
        assert conn is not None
        (timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
        assert timeout > 0, "an inline publish left the connection without a busy timeout"
