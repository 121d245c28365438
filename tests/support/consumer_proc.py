"""A durable consumer in its own process, for the multi-process integration tests.

Run from the project root::

    python tests/support/consumer_proc.py --url postgresql://... --consumer c1 [options]
    python -m tests.support.consumer_proc --url ...

It subscribes one durable consumer and prints, one per line on stdout (flushed):

* ``READY <pid> <worker_id>`` once the subscription is registered (``await sub``);
* ``LISTEN <backend_pid>`` each time its LISTEN connection is (re-)established;
* ``HANDLED <event_id> <position> <unix_time>`` after each handled event, with ``--echo``.

What the handler records, and how:

* ``--out-file F``: appends ``event_id`` (one a line) to ``F`` and fsyncs before returning;
* ``--table T``: inserts ``(pid, event_id, position, started, ended)`` into ``T`` (a table the
  test created; ``started``/``ended`` are ``time.time()`` around the handler's work);
* ``--handler-sleep S``: sleeps ``S`` seconds inside the handler (between start and end);
* ``--kill-after K``: SIGKILLs itself right after recording the K-th event it handled, before the
  runner can save a checkpoint for it (a crash).

SIGTERM (or SIGINT) stops the subscription, releases the lease, closes the runtime and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql

import cowork
from cowork.consumers.manager import ConsumerManager
from cowork.events.patterns import EventPattern


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", default="t1")
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--pattern", default="*")
    parser.add_argument("--start", choices=("beginning", "now"), default="beginning")
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--checkpoint-interval", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--out-file", type=Path)
    parser.add_argument("--table")
    parser.add_argument("--handler-sleep", type=float, default=0.0)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--echo", action="store_true")
    return parser.parse_args(argv)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _open_append(path: Path) -> TextIO:
    return open(path, "a", encoding="utf-8")  # closed when the process stops


async def _report_listen(rt: cowork.Runtime) -> None:
    """Print the LISTEN connection's server pid whenever it changes (tests terminate it)."""
    wakeups: Any = rt._core.database.wakeups
    last: int | None = None
    while True:
        await wakeups.listening.wait()
        pid = await wakeups.listener_backend_pid()
        if pid is not None and pid != last:
            last = pid
            _say(f"LISTEN {pid}")
        await asyncio.sleep(0.02)


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    rt = await cowork.open(args.url, tenant_id=args.tenant, worker=True)
    log_conn: psycopg.AsyncConnection[Any] | None = None
    if args.table:
        log_conn = await psycopg.AsyncConnection.connect(args.url, autocommit=True)
    insert = (
        sql.SQL(
            "INSERT INTO {} (pid, event_id, position, started, ended) VALUES (%s, %s, %s, %s, %s)"
        ).format(sql.Identifier(args.table))
        if args.table
        else None
    )
    out = _open_append(args.out_file) if args.out_file else None
    handled = 0

    async def handler(event: cowork.EventEnvelope) -> None:
        nonlocal handled
        started = time.time()
        if args.handler_sleep:
            await asyncio.sleep(args.handler_sleep)
        ended = time.time()
        if out is not None:
            out.write(event.event_id + "\n")
            out.flush()
            os.fsync(out.fileno())
        if log_conn is not None and insert is not None:
            await log_conn.execute(
                insert, (os.getpid(), event.event_id, event.position, started, ended)
            )
        handled += 1
        if args.echo:
            _say(f"HANDLED {event.event_id} {event.position} {time.time():.6f}")
        if args.kill_after and handled >= args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    # Internal API (fine in tests): the public subscribe() takes no timing options.
    sub = ConsumerManager.of(rt._core).subscribe(
        rt.scope,
        consumer_id=args.consumer,
        pattern=EventPattern.parse(args.pattern),
        handler=handler,
        start=args.start,
        transactional=False,
        options=cowork.ConsumerOptions(
            lease_ttl=args.lease_ttl,
            poll_interval=args.poll,
            checkpoint_interval=args.checkpoint_interval,
            batch_size=args.batch_size,
            backoff_initial=0.01,
        ),
    )
    await sub
    reporter = asyncio.create_task(_report_listen(rt))
    _say(f"READY {os.getpid()} {rt._core.worker_id}")
    try:
        await stop.wait()
    finally:
        reporter.cancel()
        await sub.stop()
        await rt.close()
        if log_conn is not None:
            await log_conn.close()
        if out is not None:
            out.close()
    _say("STOPPED")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    return asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
