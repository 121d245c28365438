"""The ``dbos`` peer, in its own process (DBOS keeps global state and threads).

``python -m benchmarks.dbos_proc --url URL --count N``
``python -m benchmarks.dbos_proc --url URL --count N --step-seconds 1 --concurrency 64``

A workflow of three no-op steps, DBOS's system database in the same PostgreSQL database as
ours (schema ``dbos``). Measured two ways, after a warm-up: ``sequential`` (the workflow
function called N times in a row) and ``concurrent`` (N ``DBOS.start_workflow`` calls, then
every result awaited). With ``--step-seconds``: N workflows of one step that sleeps that long
(an agent's model call), enqueued on a DBOS queue that runs ``--concurrency`` at once. Prints
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib.metadata import version
from typing import Any


def run(url: str, count: int) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    config: DBOSConfig = {
        "name": "cowork-bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def step_one(x: int) -> int:
        return x

    @DBOS.step()
    def step_two(x: int) -> int:
        return x

    @DBOS.step()
    def step_three(x: int) -> int:
        return x

    @DBOS.workflow()
    def three_steps(x: int) -> int:
        step_one(x)
        step_two(x)
        return step_three(x)

    DBOS.launch()
    try:
        for i in range(10):
            three_steps(i)

        start = time.perf_counter()
        for i in range(count):
            three_steps(i)
        sequential = time.perf_counter() - start

        start = time.perf_counter()
        handles = [DBOS.start_workflow(three_steps, i) for i in range(count)]
        for handle in handles:
            handle.get_result()
        concurrent = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {
        "version": version("dbos"),
        "workflows": count,
        "steps_per_workflow": 3,
        "sequential_seconds": round(sequential, 4),
        "sequential_workflows_per_second": round(count / sequential, 2),
        "concurrent_seconds": round(concurrent, 4),
        "concurrent_workflows_per_second": round(count / concurrent, 2),
    }


def run_long(url: str, count: int, step_seconds: float, concurrency: int) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    config: DBOSConfig = {
        "name": "cowork-bench-long",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def model_call(x: int) -> int:
        time.sleep(step_seconds)
        return x

    @DBOS.workflow()
    def one_long_step(x: int) -> int:
        return model_call(x)

    DBOS.launch()
    try:
        # A queue running `concurrency` workflows at once on this executor, polled every
        # 0.1 s (DBOS's default is 1 s; the shorter interval only helps the peer).
        queue = DBOS.register_queue(
            "cowork-bench-long", worker_concurrency=concurrency, polling_interval_sec=0.1
        )
        start = time.perf_counter()
        handles = [queue.enqueue(one_long_step, i) for i in range(count)]
        for handle in handles:
            handle.get_result()
        seconds = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {
        "version": version("dbos"),
        "workflows": count,
        "step_seconds": step_seconds,
        "concurrency": concurrency,
        "seconds": round(seconds, 4),
        "workflows_per_second": round(count / seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--step-seconds", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.step_seconds > 0:
        result = run_long(args.url, args.count, args.step_seconds, args.concurrency)
    else:
        result = run(args.url, args.count)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
