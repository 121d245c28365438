"""The consumer side of the latency benchmark, in its own process.

``python -m benchmarks.consumer_proc --mode ours|raw --url URL --tenant T --count N --out F``

- ``ours``: ``cowork.open(url, worker=True)`` and a durable consumer
  (``rt.events.subscribe(pattern, handler, consumer_id=...)``) with default options;
- ``raw``: the floor without Cowork: ``LISTEN`` on a psycopg connection and, on each
  notification, a ``SELECT`` of the new rows of ``raw_event_log``.

Each event carries its index ``i`` in the payload (``i < 0`` marks warm-up events). The process
prints ``READY`` once subscribed, ``WARM`` when the first warm-up event arrives, and ``DONE``
once it has seen ``N`` measured events, after writing ``{i: unix_time_received}`` to ``F``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

import cowork

LATENCY_EVENT = "bench:latency"
RAW_CHANNEL = "raw_bench"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Recorder:
    def __init__(self, count: int) -> None:
        self.count = count
        self.received: dict[int, float] = {}
        self.warm = False
        self.done = asyncio.Event()

    def saw(self, i: int, at: float) -> None:
        if i < 0:
            if not self.warm:
                self.warm = True
                _say("WARM")
            return
        self.received.setdefault(i, at)
        if len(self.received) >= self.count:
            self.done.set()


async def run_ours(args: argparse.Namespace, rec: Recorder) -> None:
    rt = await cowork.open(args.url, tenant_id=args.tenant, worker=True, required=True)
    try:

        async def handler(event: cowork.EventEnvelope) -> None:
            rec.saw(int(event.payload["i"]), time.time())

        sub = await rt.events.subscribe(
            LATENCY_EVENT, handler, consumer_id="bench-latency", start="now"
        )
        _say("READY")
        await asyncio.wait_for(rec.done.wait(), args.timeout)
        await sub.stop()
    finally:
        await rt.close()


async def run_raw(args: argparse.Namespace, rec: Recorder) -> None:
    listen = await psycopg.AsyncConnection.connect(args.url, autocommit=True)
    reader = await psycopg.AsyncConnection.connect(args.url, autocommit=True)
    try:
        await listen.execute(f"LISTEN {RAW_CHANNEL}")
        cur = await reader.execute(
            "SELECT coalesce(max(position), 0) FROM raw_event_log WHERE tenant_id = %s",
            (args.tenant,),
        )
        row = await cur.fetchone()
        last = int(row[0]) if row else 0
        _say("READY")
        deadline = time.monotonic() + args.timeout
        while not rec.done.is_set() and time.monotonic() < deadline:
            async for _ in listen.notifies(timeout=1.0, stop_after=1):
                cur = await reader.execute(
                    "SELECT position, payload FROM raw_event_log "
                    "WHERE tenant_id = %s AND position > %s ORDER BY position",
                    (args.tenant, last),
                )
                now = time.time()
                for position, data in await cur.fetchall():
                    last = max(last, position)
                    rec.saw(int(data["i"]), now)
        if not rec.done.is_set():
            raise TimeoutError("raw listener timed out")
    finally:
        await listen.close()
        await reader.close()


async def main_async(args: argparse.Namespace) -> int:
    rec = Recorder(args.count)
    if args.mode == "ours":
        await run_ours(args, rec)
    else:
        await run_raw(args, rec)
    data: dict[str, Any] = {"received": {str(i): t for i, t in rec.received.items()}}
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(data), encoding="utf-8")
    _say("DONE")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ours", "raw"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
