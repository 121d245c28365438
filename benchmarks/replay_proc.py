"""Replay a large log in its own process and report its resident memory (RSS).

``python -m benchmarks.replay_proc --mode ours|raw --url URL --tenant T [--page 500]``

- ``ours``: ``async for event in rt.events.iterate(page_size=...)`` (envelopes);
- ``raw``: psycopg paged ``SELECT`` of the same rows from ``raw_event_log``.

RSS is read from ``/proc/self/statm`` before the replay, after its first page, every 5,000
events and at the end; the result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from typing import Any

import psycopg

import cowork

from .common import rss_bytes
from .raw import SELECT_PAGE

SAMPLE_EVERY = 5_000


class Sampler:
    def __init__(self, page: int) -> None:
        self.page = page
        self.count = 0
        self.before = rss_bytes()
        self.after_first_page = self.before
        self.peak = self.before
        self.samples: list[tuple[int, int]] = []

    def tick(self) -> None:
        self.count += 1
        n = self.count
        if n == self.page:
            self.after_first_page = rss_bytes()
        if n % SAMPLE_EVERY == 0:
            rss = rss_bytes()
            self.peak = max(self.peak, rss)
            if n % (SAMPLE_EVERY * 20) == 0:
                self.samples.append((n, rss))

    def result(self, mode: str, seconds: float) -> dict[str, Any]:
        end = rss_bytes()
        self.peak = max(self.peak, end)
        mib = 1024 * 1024
        return {
            "mode": mode,
            "events": self.count,
            "seconds": round(seconds, 3),
            "events_per_second": round(self.count / seconds, 1) if seconds else None,
            "page_size": self.page,
            "rss_before_mib": round(self.before / mib, 2),
            "rss_after_first_page_mib": round(self.after_first_page / mib, 2),
            "rss_peak_mib": round(self.peak / mib, 2),
            "rss_end_mib": round(end / mib, 2),
            "growth_mib": round((self.peak - self.before) / mib, 2),
            "growth_after_first_page_mib": round((self.peak - self.after_first_page) / mib, 2),
            "samples_mib": [(n, round(r / mib, 2)) for n, r in self.samples],
        }


async def replay_ours(args: argparse.Namespace) -> dict[str, Any]:
    rt = await cowork.open(args.url, tenant_id=args.tenant, worker=False, required=True)
    try:
        gc.collect()
        sampler = Sampler(args.page)
        start = time.perf_counter()
        async for _event in rt.events.iterate(page_size=args.page):
            sampler.tick()
        return sampler.result("ours", time.perf_counter() - start)
    finally:
        await rt.close()


async def replay_raw(args: argparse.Namespace) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(args.url, autocommit=True)
    try:
        gc.collect()
        sampler = Sampler(args.page)
        start = time.perf_counter()
        last = 0
        while True:
            cur = await conn.execute(SELECT_PAGE, (args.tenant, last, args.page))
            rows = await cur.fetchall()
            for _row in rows:
                sampler.tick()
            if len(rows) < args.page:
                break
            last = rows[-1][1]
        return sampler.result("raw", time.perf_counter() - start)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ours", "raw"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--page", type=int, default=500)
    args = parser.parse_args()
    replay = replay_ours if args.mode == "ours" else replay_raw
    result = asyncio.run(replay(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
