"""The application the worker processes of ``test_worker_kills.py`` run.

Loaded with ``python -m cowork --database-url URL worker --tenant T --app
tests.chaos.kill_app:setup`` (cwd = project root). For each tenant served, :func:`setup`

* registers the action :data:`ACTION` (synchronously, before its first ``await``, so the
  worker's executor, already running, finds it) and the definition :data:`DEFINITION`: three
  action steps, each publishing a ``chaos:mark`` event through ``ctx.tx`` (committed only with
  the step) and sleeping ``CHAOS_ACTION_SLEEP`` seconds (default 0.004);
* subscribes the durable consumer :data:`AUDIT_CONSUMER` (pattern ``chaos:*``), whose handler
  records each event id it handles in the table ``CHAOS_AUDIT_TABLE``;
* prints ``CHAOS-READY <pid>`` on stdout.

Each action execution is also recorded in the table ``CHAOS_EXEC_TABLE`` *before* it publishes,
through a separate autocommit connection, so executions rolled back by a SIGKILL leave a trace
(the test counts them as evidence that kills landed mid-step). Both tables are created by the
test; ``CHAOS_SIDE_URL`` is the database URL of that side connection. Without it nothing is
recorded on the side.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import psycopg
from psycopg import sql

import cowork
from cowork import ActionContext, ActionStep, WorkflowDefinition

ACTION = "chaos.kill.mark"
AUDIT_CONSUMER = "chaos-audit"
WORKFLOW = "chaos-kill"
STEPS = ("a", "b", "c")
DEFINITION = WorkflowDefinition(
    workflow_id=WORKFLOW,
    version=1,
    name="Three marked actions",
    correlation=("n",),
    steps=tuple(
        ActionStep(name=name, action=ACTION, max_attempts=3, backoff_seconds=0.05) for name in STEPS
    ),
)


class _Side:
    """One autocommit connection outside cowork's transactions (survives their rollback)."""

    def __init__(self) -> None:
        self.url = os.environ.get("CHAOS_SIDE_URL")
        self.exec_table = os.environ.get("CHAOS_EXEC_TABLE", "chaos_kill_exec")
        self.audit_table = os.environ.get("CHAOS_AUDIT_TABLE", "chaos_kill_audit")
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def insert(self, table: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> None:
        if not self.url:
            return
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            await self._conn.execute(statement, values)


_side = _Side()
_SLEEP = float(os.environ.get("CHAOS_ACTION_SLEEP", "0.004"))


async def mark(ctx: ActionContext) -> dict[str, Any]:
    instance_id = ctx.instance.instance_id
    pid = os.getpid()
    await _side.insert(
        _side.exec_table, ("instance_id", "step", "pid"), (instance_id, ctx.step_name, pid)
    )
    payload = {"instanceId": instance_id, "step": ctx.step_name, "pid": pid}

    @ctx.at_completion  # commits exactly with the step
    async def publish(tx: cowork.TransactionContext) -> None:
        await tx.events.publish("chaos:mark", payload)

    await asyncio.sleep(_SLEEP)
    return {f"{ctx.step_name}.pid": pid}


async def audit(event: cowork.EventEnvelope) -> None:
    await _side.insert(_side.audit_table, ("event_id", "pid"), (event.event_id, os.getpid()))


async def setup(rt: cowork.Runtime) -> None:
    rt.workflows.register_action(ACTION, mark)  # first: the executor is already running
    await rt.workflows.register(DEFINITION)
    await rt.events.subscribe("chaos:*", audit, consumer_id=AUDIT_CONSUMER)
    sys.stdout.write(f"CHAOS-READY {os.getpid()}\n")
    sys.stdout.flush()
