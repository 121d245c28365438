"""A workflow worker in its own process, for the multi-process workflow integration tests.

Run from the project root::

    python tests/support/workflow_worker.py --url postgresql://... --tenant t1 --table T
    python tests/support/workflow_worker.py --url sqlite:///... --tenant t1 --log-file F

It opens ``cowork.open(url, tenant_id=..., worker=True)`` (the embedded worker: the engine's
durable consumer and its executor), registers the action ``test.record`` and the definition
:data:`DEFINITION` (three action steps), prints ``READY <pid> <worker_id> <unix time>`` and runs
until SIGTERM
(or SIGINT), which closes the runtime and exits 0 after printing ``STOPPED``.

The action, per execution of a step (outside any database transaction):

1. inserts ``(instance_id, step, pid, attempt, started, idem)`` into the test table ``T``
   through a SEPARATE autocommit connection, so the row survives a crash (``idem`` is the step's
   ``ctx.idempotency_key``); with ``--log-file F`` instead, into the table ``step_log`` of the
   SQLite file ``F`` (any backend), created if missing;
2. registers, with ``ctx.at_completion``, the publication of ``test:action:ran`` (it commits
   only with the step's checkpoint);
3. sleeps ``--sleep`` seconds (``asyncio.sleep``);
4. sets ``ended`` on its row (separate connection) and returns.

An execution killed mid-way leaves its row without ``ended``. With ``--hang-after N`` the N-th
execution of this process (with ``--hang-step S``, the first execution of step ``S``) prints
``HANGING <instance_id> <step> <pid>`` after steps 1-2 and then hangs (its event not
committed) until it is killed.

``--concurrency`` (default 1) is the worker's ``workflow_concurrency``: with one step in flight
per process, the test can account exactly for what a killed process committed and which one
execution it left unfinished.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
import time
from typing import Any

import psycopg
from psycopg import sql

import cowork
from cowork import ActionContext, ActionStep, WorkflowDefinition

ACTION = "test.record"
STEPS = ("step-1", "step-2", "step-3")
DEFINITION = WorkflowDefinition(
    workflow_id="multi-worker",
    version=1,
    name="Three recorded actions",
    correlation=("n",),
    steps=tuple(
        ActionStep(name=name, action=ACTION, max_attempts=3, backoff_seconds=0.05) for name in STEPS
    ),
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", default="t1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--table", help="PostgreSQL table (in --url's database) for the step log")
    where.add_argument("--log-file", help="SQLite file for the step log")
    parser.add_argument("--sleep", type=float, default=0.02)
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--hang-step", default=None)
    parser.add_argument("--concurrency", type=int, default=1)
    return parser.parse_args(argv)


class PgStepLog:
    """The step log in a PostgreSQL table, over its own autocommit connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], table: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._insert = sql.SQL(
            "INSERT INTO {} (instance_id, step, pid, attempt, started, idem) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(sql.Identifier(table))
        self._finish = sql.SQL("UPDATE {} SET ended = %s WHERE id = %s").format(
            sql.Identifier(table)
        )

    @classmethod
    async def open(cls, args: argparse.Namespace) -> PgStepLog:
        conn = await psycopg.AsyncConnection.connect(args.url, autocommit=True)
        return cls(conn, args.table)

    async def started(self, values: tuple[Any, ...]) -> int:
        async with self._lock:
            cur = await self._conn.execute(self._insert, values)
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def ended(self, row_id: int, at: float) -> None:
        async with self._lock:
            await self._conn.execute(self._finish, (at, row_id))

    async def close(self) -> None:
        await self._conn.close()


class SqliteStepLog:
    """The step log in a SQLite file (autocommit: a row survives the process's SIGKILL)."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS step_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "instance_id TEXT NOT NULL, step TEXT NOT NULL, pid INTEGER NOT NULL, "
        "attempt INTEGER NOT NULL, started REAL NOT NULL, ended REAL, idem TEXT NOT NULL)"
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: str) -> SqliteStepLog:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute(cls.SCHEMA)
        return cls(conn)

    async def started(self, values: tuple[Any, ...]) -> int:
        cur = self._conn.execute(
            "INSERT INTO step_log (instance_id, step, pid, attempt, started, idem) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def ended(self, row_id: int, at: float) -> None:
        self._conn.execute("UPDATE step_log SET ended = ? WHERE id = ?", (at, row_id))

    async def close(self) -> None:
        self._conn.close()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    log = await (SqliteStepLog.open(args.log_file) if args.log_file else PgStepLog.open(args))
    pid = os.getpid()
    executions = 0

    rt = await cowork.open(
        args.url, tenant_id=args.tenant, worker=True, workflow_concurrency=args.concurrency
    )

    async def record(ctx: ActionContext) -> dict[str, Any]:
        nonlocal executions
        executions += 1
        instance_id = ctx.instance.instance_id
        row_id = await log.started(
            (instance_id, ctx.step_name, pid, ctx.attempt, time.time(), ctx.idempotency_key)
        )
        ran = {"instanceId": instance_id, "step": ctx.step_name, "pid": pid, "attempt": ctx.attempt}

        @ctx.at_completion
        async def publish(tx: cowork.TransactionContext) -> None:
            await tx.events.publish("test:action:ran", ran)

        hang = (
            ctx.step_name == args.hang_step
            if args.hang_step
            else bool(args.hang_after) and executions == args.hang_after
        )
        if hang:
            _say(f"HANGING {instance_id} {ctx.step_name} {pid}")
            await asyncio.sleep(3600)  # until SIGKILL
        await asyncio.sleep(args.sleep)
        await log.ended(row_id, time.time())
        return {f"{ctx.step_name}.pid": pid}

    try:
        # Before the first await after open: the embedded executor must find the handler.
        rt.workflows.register_action(ACTION, record)
        await rt.workflows.register(DEFINITION)
        _say(f"READY {pid} {rt._core.worker_id} {time.time():.3f}")  # its clock, for faketime
        await stop.wait()
    finally:
        await rt.close()
        await log.close()
    _say("STOPPED")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    return asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
