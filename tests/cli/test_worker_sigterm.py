"""``cowork worker`` receives SIGTERM during a workflow; it exits 0
within 10 s, and a new worker resumes the instance without waiting for a lease to expire.

The workflow (``clitest-sigterm``) is: ``slow`` (an action of ``tests/cli/slow_app.py`` that
sleeps, then publishes ``clitest:slow:done`` through the transition's transaction), a wait for
``clitest:go`` correlated by ``runId``, then ``finish``. The first worker gets SIGTERM while
``slow`` runs. Shutdown (``cowork/workflows/engine.py``, ``WorkflowEngine.stop``) lets the step
finish within ``COWORK_WORKER_STOP_GRACE_SECONDS`` (8 s by default), else cancels it so that its
transaction rolls back; either way the worker releases the instance's lease and the
``cowork.workflows`` consumer lease. Both outcomes are tested: the step commits exactly once, and
the second worker finishes the instance before the leases the first one held would have expired.
In the first test the instance already waits when ``clitest:go`` is published, so only the
consumer can advance it: finishing early also proves the consumer lease was
released rather than left to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

import cowork
from cowork import ActionStep, WaitStep, WorkflowDefinition
from tests.cli.slow_app import MARKER_ENV, SECONDS_ENV
from tests.cli.support import ENGINE_CONSUMER, ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

T = TypeVar("T")

TENANT = "sigterm"
SLOW_SECONDS = 3.0
LEASE_TTL = 10.0  # ConsumerOptions.lease_ttl, the default the worker uses

DEFINITION = WorkflowDefinition(
    workflow_id="clitest-sigterm",
    version=1,
    name="SIGTERM during a step",
    correlation=("runId",),
    steps=(
        ActionStep(name="slow", action="clitest.slow", max_attempts=3, backoff_seconds=0.1),
        WaitStep(name="go", event="clitest:go"),
        ActionStep(name="finish", action="clitest.finish", max_attempts=3, backoff_seconds=0.1),
    ),
)


class Worker:
    """``python -m cowork --database-url URL worker --tenant T --app tests.cli.slow_app:setup``."""

    def __init__(self, url: str, name: str, tmp_path: Path, marker: Path, **settings: str) -> None:
        self.stderr_path = tmp_path / f"{name}.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COWORK_")}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
                MARKER_ENV: str(marker),
                SECONDS_ENV: str(SLOW_SECONDS),
                "COWORK_LOG_LEVEL": "INFO",
                **settings,
            }
        )
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cowork",
                    "--database-url",
                    url,
                    "worker",
                    "--tenant",
                    TENANT,
                    "--app",
                    "tests.cli.slow_app:setup",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "worker ready" not in self.stderr():
            code = self.process.poll()
            assert code is None, f"worker exited with {code} before it was ready:\n{self.stderr()}"
            assert time.monotonic() < deadline, f"worker not ready:\n{self.stderr()}"
            await asyncio.sleep(0.05)

    async def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None if still running after ``timeout``) and the time."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.process.wait, timeout)
        return self.process.poll(), time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def _until(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigterm_finishes_the_step_releases_the_lease_and_a_new_worker_resumes(
    pg_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "slow.started"
    workers: list[Worker] = []
    try:
        async with await cowork.open(pg_url, tenant_id=TENANT, worker=False) as rt:
            await rt.workflows.register(DEFINITION)
            first = Worker(pg_url, "first", tmp_path, marker)
            workers.append(first)
            await first.ready()
            instance = await rt.workflows.start("clitest-sigterm", input={"runId": "r1"})

            async def slow_started() -> bool:
                return marker.exists() and marker.read_text().strip() != ""

            await _until(slow_started, 30, "the slow action to start")
            engine = await _until(lambda: _held(rt), 10, "the worker to hold the engine's lease")
            assert engine.lease_owner is not None and f":{first.pid}:" in engine.lease_owner
            held_until = engine.lease_expires_at
            assert held_until is not None

            code, took = await first.terminate(timeout=10)
            assert code == 0, (
                f"first worker: exit {code} after {took:.1f}s (wanted 0 within 10 s)\n"
                f"{first.stderr()}"
            )
            assert "Traceback" not in first.stderr(), first.stderr()

            # Graceful shutdown finished the transition it was in: 'slow' committed once, by
            # the first worker, and the instance now waits for clitest:go.
            after = await rt.workflows.get(instance.instance_id)
            assert after is not None
            assert after.status.value == "waiting", after
            assert after.data["slowPid"] == first.pid
            assert marker.read_text().splitlines() == [f"{first.pid} 1"]
            assert await _slow_done_events(rt) == [first.pid]

            assert after.lease_owner is None, after
            # ...and it gave the consumer lease up instead of letting it run out.
            released = await _engine_consumer(rt)
            assert released is not None
            assert released.lease_owner is None, released
            assert released.lease_expires_at is None, released

            await rt.events.publish("clitest:go", {"runId": "r1"})
            second = Worker(pg_url, "second", tmp_path, marker)
            workers.append(second)
            started = time.monotonic()
            done = await rt.workflows.wait(instance.instance_id, timeout=LEASE_TTL)
            resumed_in = time.monotonic() - started
            assert done.status.value == "completed", done
            assert done.data["finishPid"] == second.pid
            # Not by waiting out the first worker's lease (held at least until `held_until`).
            assert done.ended_at is not None and done.ended_at < held_until, (
                f"completed at {done.ended_at}, the old lease ran until at least {held_until}"
            )
            assert resumed_in < 6.0, f"the second worker took {resumed_in:.1f}s"

            history = await rt.workflows.history(instance.instance_id)
            steps = Counter(h.step_name for h in history if h.kind == "step_completed")
            assert steps == Counter({"slow": 1, "go": 1, "finish": 1}), history
            assert history[-1].kind == "completed"
            assert [h.seq for h in history] == list(range(1, len(history) + 1))
            assert await _slow_done_events(rt) == [first.pid]  # exactly once

            code, took = await second.terminate(timeout=10)
            assert code == 0, f"second worker: exit {code} after {took:.1f}s\n{second.stderr()}"
            final = await _engine_consumer(rt)
            assert final is not None and final.lease_owner is None
    finally:
        for worker in workers:
            worker.kill()


async def test_sigterm_past_the_grace_period_rolls_the_step_back_and_a_new_worker_resumes(
    pg_url: str, tmp_path: Path
) -> None:
    """A step longer than ``COWORK_WORKER_STOP_GRACE_SECONDS`` is cancelled: its transaction
    rolls back, the instance's lease is released, and another worker runs the step at once
    instead of after the instance lease (``COWORK_WORKFLOW_LEASE_SECONDS``, 30 s) runs out."""
    marker = tmp_path / "slow.started"
    workers: list[Worker] = []
    try:
        async with await cowork.open(pg_url, tenant_id=TENANT, worker=False) as rt:
            await rt.workflows.register(DEFINITION)
            first = Worker(
                pg_url,
                "first",
                tmp_path,
                marker,
                COWORK_WORKER_STOP_GRACE_SECONDS="1",
                **{SECONDS_ENV: "8"},
            )
            workers.append(first)
            await first.ready()
            instance = await rt.workflows.start("clitest-sigterm", input={"runId": "r2"})

            async def leased() -> cowork.WorkflowInstance | None:
                found = await rt.workflows.get(instance.instance_id)
                started = marker.exists() and marker.read_text().strip() != ""
                return found if started and found and found.lease_owner else None

            claimed = await _until(leased, 30, "the slow action to start under a lease")
            held_until = claimed.lease_expires_at
            assert held_until is not None

            code, took = await first.terminate(timeout=10)
            assert code == 0, f"first worker: exit {code} after {took:.1f}s\n{first.stderr()}"
            assert took < 6.0, f"stopping took {took:.1f}s: the 1 s grace period was not applied"
            assert "Traceback" not in first.stderr(), first.stderr()

            # Rolled back: the step did not complete, wrote nothing, and its lease is free.
            after = await rt.workflows.get(instance.instance_id)
            assert after is not None
            assert after.status.value == "running" and after.step_index == 0, after
            assert after.lease_owner is None, after
            assert "slowPid" not in after.data
            assert await _slow_done_events(rt) == []
            history = await rt.workflows.history(instance.instance_id)
            assert [h.step_name for h in history if h.kind == "step_completed"] == []
            released = await _engine_consumer(rt)
            assert released is not None and released.lease_owner is None

            await rt.events.publish("clitest:go", {"runId": "r2"})
            second = Worker(pg_url, "second", tmp_path, marker, **{SECONDS_ENV: "0.5"})
            workers.append(second)
            started = time.monotonic()
            done = await rt.workflows.wait(instance.instance_id, timeout=20)
            resumed_in = time.monotonic() - started
            assert done.status.value == "completed", done
            assert done.ended_at is not None and done.ended_at < held_until, (
                f"completed at {done.ended_at}, the old lease ran until at least {held_until}"
            )
            assert resumed_in < 8.0, f"the second worker took {resumed_in:.1f}s"
            assert done.data["slowPid"] == second.pid and done.data["finishPid"] == second.pid
            assert [line.split()[0] for line in marker.read_text().splitlines()] == [
                str(first.pid),
                str(second.pid),
            ]
            history = await rt.workflows.history(instance.instance_id)
            steps = Counter(h.step_name for h in history if h.kind == "step_completed")
            assert steps == Counter({"slow": 1, "go": 1, "finish": 1}), history
            assert await _slow_done_events(rt) == [second.pid]  # exactly once

            code, _ = await second.terminate(timeout=10)
            assert code == 0, second.stderr()
    finally:
        for worker in workers:
            worker.kill()


async def test_sigterm_while_idle_exits_at_once(pg_url: str, tmp_path: Path) -> None:
    worker = Worker(pg_url, "idle", tmp_path, tmp_path / "unused")
    try:
        await worker.ready()
        async with await cowork.open(pg_url, tenant_id=TENANT, worker=False) as rt:
            await _until(lambda: _held(rt), 10, "the worker to hold the lease")
            code, took = await worker.terminate(timeout=10)
            assert code == 0, worker.stderr()
            assert took < 5.0, f"an idle worker took {took:.1f}s to stop"
            released = await _engine_consumer(rt)
            assert released is not None and released.lease_owner is None
        worker = Worker(pg_url, "sigint", tmp_path, tmp_path / "unused")
        await worker.ready()
        started = time.monotonic()
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(timeout=10) == 0, worker.stderr()
        assert time.monotonic() - started < 5.0
        assert "Traceback" not in worker.stderr()
    finally:
        worker.kill()


async def _engine_consumer(rt: cowork.Runtime) -> cowork.ConsumerInfo | None:
    for info in await rt.consumers.list():
        if info.consumer_id == ENGINE_CONSUMER:
            return info
    return None


async def _held(rt: cowork.Runtime) -> cowork.ConsumerInfo | None:
    """The engine consumer's row while some worker holds its lease."""
    info = await _engine_consumer(rt)
    return info if info is not None and info.lease_owner is not None else None


async def _slow_done_events(rt: cowork.Runtime) -> list[int]:
    return [
        e.payload["pid"] async for e in rt.events.iterate() if e.event_type == "clitest:slow:done"
    ]
