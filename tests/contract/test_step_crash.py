"""A worker SIGKILLed in the middle of step 2 of 3, on both backends.

A new worker runs step 2 again with the same idempotency key, then step 3, and never step 1
again; each step's result appears once in the history, and the killed attempt's completion
writes never commit. The workers are separate processes (:mod:`tests.support.workflow_worker`)
that log every step they start and finish to a SQLite side file through autocommit, so the log
survives the kill.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import cowork
from cowork import InstanceStatus
from tests.support.lineproc import LineProcess, ProcessGroup
from tests.support.workflow_worker import DEFINITION, STEPS

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "support" / "workflow_worker.py"
TENANT = "t1"

Spawn = Callable[..., Awaitable[LineProcess]]


@pytest.fixture
def step_log(tmp_path: Path) -> Path:
    return tmp_path / "steps.db"


@pytest.fixture
async def spawn(database_url: str, step_log: Path, tmp_path: Path) -> AsyncIterator[Spawn]:
    group = ProcessGroup(tmp_path)

    async def start(name: str, *extra: str) -> LineProcess:
        args = ["--url", database_url, "--tenant", TENANT, "--log-file", str(step_log), *extra]
        # A short lease: the second worker takes the step over soon after the kill.
        env = {"COWORK_WORKFLOW_LEASE_SECONDS": "4"}
        return await group.start(name, [str(WORKER), *args], env=env)

    try:
        yield start
    finally:
        await group.kill_all()


def _runs(step_log: Path) -> list[tuple[str, int, str, float | None]]:
    with sqlite3.connect(step_log) as conn:
        rows = conn.execute("SELECT step, pid, idem, ended FROM step_log ORDER BY id").fetchall()
    return [(str(s), int(p), str(i), e) for s, p, i, e in rows]


async def test_a_worker_killed_during_step_two_resumes_at_step_two(
    database_url: str, step_log: Path, spawn: Spawn
) -> None:
    async with await cowork.open(database_url, tenant_id=TENANT, worker=False) as rt:
        await rt.workflows.register(DEFINITION)
        started = await rt.workflows.start(DEFINITION.workflow_id, input={"n": 1})
        first = await spawn("worker-1", "--hang-step", "step-2")
        await first.wait_prefix("READY ", 30)
        hanging = await first.wait_prefix("HANGING ", 30)
        assert hanging.split()[2] == "step-2"
        os.kill(first.pid, signal.SIGKILL)
        await first.wait_exit(10)
        second = await spawn("worker-2")
        await second.wait_prefix("READY ", 30)
        done = await rt.workflows.wait(started.instance_id, timeout=60)  # after the lease
        assert done.status is InstanceStatus.COMPLETED, done.last_error
        history = await rt.workflows.history(started.instance_id)
        ran_events = [
            e.payload async for e in rt.events.iterate() if e.event_type == "test:action:ran"
        ]
        assert await second.terminate() == 0, second.stderr_tail()

    runs = _runs(step_log)
    assert [(step, pid) for step, pid, _, _ in runs] == [
        ("step-1", first.pid),
        ("step-2", first.pid),
        ("step-2", second.pid),
        ("step-3", second.pid),
    ], "step 1 ran again, or step 2 / 3 did not run where expected"
    assert runs[1][2] == runs[2][2], "the re-run of step 2 got another idempotency key"
    assert runs[0][2] != runs[1][2] != runs[3][2]
    assert runs[1][3] is None  # the killed execution never ended
    completed = [h.step_name for h in history if h.kind == "step_completed"]
    assert completed == list(STEPS), "a step's result appears more than once (or not at all)"
    assert [(p["step"], p["pid"]) for p in ran_events] == [
        ("step-1", first.pid),
        ("step-2", second.pid),
        ("step-3", second.pid),
    ], "the killed attempt's completion writes were committed"
