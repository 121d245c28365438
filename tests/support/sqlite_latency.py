"""Cross-process delivery latency on SQLite: publish in this process, handle in another.

Run from the project root::

    .venv/bin/python -m tests.support.sqlite_latency [--events 50] [--poll 0.25] [--json]

SQLite has no cross-process notification, so a durable consumer in another process learns of a
commit only when it polls. This starts ``tests/support/consumer_proc.py`` (one durable consumer,
``--poll`` seconds between polls, 0.25 being what ``rt.events.subscribe`` uses on SQLite) on a
fresh SQLite file, publishes ``--events`` events one at a time from a ``worker=False`` runtime,
spaced by random gaps (so that publishes fall at every point of the consumer's poll cycle), and
reports the time from the ``publish`` call to the handler, per event: minimum, median, mean, 95th
percentile and maximum, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cowork
from tests.support.lineproc import ROOT, LineProcess

CONSUMER = ROOT / "tests" / "support" / "consumer_proc.py"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--gap-min", type=float, default=0.05)
    parser.add_argument("--gap-max", type=float, default=0.45)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(
    events: int, poll: float, gap: tuple[float, float], workdir: Path
) -> dict[str, Any]:
    """Latencies in ms of ``events`` publishes, with the settings they were measured with."""
    url = f"sqlite:///{workdir / 'latency.db'}"
    published: dict[str, float] = {}
    async with await cowork.open(url, tenant_id="t1", worker=False) as rt:  # migrates the file
        consumer = LineProcess(
            "latency-consumer",
            [
                str(CONSUMER),
                *("--url", url, "--tenant", "t1", "--consumer", "latency"),
                *("--pattern", "latency:*", "--poll", str(poll), "--echo"),
            ],
            workdir,
        )
        await consumer.start()
        try:
            await consumer.ready()
            await asyncio.sleep(2 * poll)  # the consumer holds its lease and waits at the head
            for i in range(events):
                await asyncio.sleep(random.uniform(*gap))
                started = time.time()
                envelope = await rt.events.publish("latency:probe", {"i": i})
                published[envelope.event_id] = started
            handled: dict[str, float] = {}

            def all_handled(line: str) -> bool:  # sees each stdout line once, in order
                if line.startswith("HANDLED "):
                    _, event_id, _, at = line.split()
                    handled[event_id] = float(at)
                return published.keys() <= handled.keys()

            await consumer.wait_line(all_handled, timeout=30 + 2 * poll)
            await consumer.terminate()
        finally:
            await consumer.kill()
    latencies = [(handled[event_id] - at) * 1000 for event_id, at in published.items()]
    return {
        "events": events,
        "poll_interval_s": poll,
        "gap_s": list(gap),
        "min_ms": round(min(latencies), 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="cowork-latency-") as tmp:
        result = asyncio.run(
            measure(args.events, args.poll, (args.gap_min, args.gap_max), Path(tmp))
        )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['events']} events, poll {result['poll_interval_s']} s: "
            f"min {result['min_ms']} ms, p50 {result['p50_ms']} ms, mean {result['mean_ms']} ms, "
            f"p95 {result['p95_ms']} ms, max {result['max_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
