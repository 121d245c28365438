"""The ``dbos`` peer, in its own process (DBOS keeps global state and threads).

``python -m benchmarks.dbos_proc --url URL --count N``

A workflow of three no-op steps, DBOS's system database in the same PostgreSQL database as
ours (schema ``dbos``). Measured two ways, after a warm-up: ``sequential`` (the workflow
function called N times in a row) and ``concurrent`` (N ``DBOS.start_workflow`` calls, then
every result awaited). Prints one JSON line.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = run(args.url, args.count)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
