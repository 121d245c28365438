"""Peers on the same PostgreSQL: the ``eventsourcing`` library's application recorder and
``dbos`` workflows. Installed only by the ``bench`` extra; a peer that cannot run here is
recorded with the reason, never with made-up numbers."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote, urlsplit

from .common import Rate, SliceRunner, payload
from .ours import ROOT

ES_TABLE = "es_stored_events"
ES_TOPIC = "bench:published"


class EventsourcingRecorder:
    """``eventsourcing.postgres.PostgresApplicationRecorder`` on the benchmark database."""

    def __init__(self, url: str, pool_size: int = 8) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        parts = urlsplit(url)
        self.version = version("eventsourcing")
        self.datastore = PostgresDatastore(
            dbname=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            pool_size=pool_size,
        )
        self.recorder = PostgresApplicationRecorder(self.datastore, events_table_name=ES_TABLE)
        self.recorder.create_table()

    def close(self) -> None:
        self.datastore.close()

    @staticmethod
    def _stored(n: int, writer: int) -> Any:
        from eventsourcing.persistence import StoredEvent

        state = json.dumps(payload(n, writer), separators=(",", ":")).encode()
        return StoredEvent(
            originator_id=uuid.uuid4(), originator_version=1, topic=ES_TOPIC, state=state
        )

    def warm_up(self, writers: int) -> None:
        for i in range(5 * writers):  # open the pool's connections, prepare statements
            self.recorder.insert_events([self._stored(i, 0)])

    def append_slice(self, seconds: float, writers: int) -> tuple[int, float]:
        """``insert_events`` of one stored event per call, from ``writers`` threads."""
        counts = [0] * writers
        barrier = threading.Barrier(writers + 1)
        deadline = [0.0]

        def loop(w: int) -> None:
            barrier.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                self.recorder.insert_events([self._stored(n, w)])
                n += 1
            counts[w] = n

        threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        deadline[0] = start + seconds
        barrier.wait()
        for thread in threads:
            thread.join()
        return sum(counts), time.perf_counter() - start

    def slice_runner(self, writers: int) -> SliceRunner:
        async def run_slice(seconds: float) -> tuple[int, float]:
            return await asyncio.to_thread(self.append_slice, seconds, writers)

        return run_slice

    def batch(self, total: int, size: int = 500) -> Rate:
        ops = 0
        start = time.perf_counter()
        for b in range(total // size):
            self.recorder.insert_events([self._stored(b * size + k, 0) for k in range(size)])
            ops += 1
        return Rate(ops, time.perf_counter() - start, 1, size)

    def read(self, page: int = 500) -> Rate:
        """``select_notifications`` page by page over the whole table (Notification objects)."""
        count = 0
        start_at = 1
        started = time.perf_counter()
        while True:
            notifications = self.recorder.select_notifications(start_at, page)
            count += len(notifications)
            if len(notifications) < page:
                break
            start_at = notifications[-1].id + 1
        return Rate(count, time.perf_counter() - started, 1)


def peer_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


async def dbos_workflows(url: str, count: int, *options: str) -> dict[str, Any]:
    """Run ``benchmarks.dbos_proc`` and return its result (raises with its stderr tail)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.dbos_proc",
        "--url",
        url,
        "--count",
        str(count),
        *options,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 300)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError("dbos benchmark did not finish in 300 s") from None
    for line in stdout.decode().splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    tail = stderr.decode().strip().splitlines()[-5:]
    raise RuntimeError(f"dbos benchmark exited with {proc.returncode}: {' | '.join(tail)}")
