"""Chaos: PostgreSQL stopped and started in the middle of a mixed load.

A throwaway cluster (never the shared server) serves three runtimes of one process, all with
the embedded worker (``worker=True``). While they run

* publishers (single ``publish`` and ``publish_many`` batches, each with its own event ids; a
  failed call is retried with the *same* ids, as an application would);
* blackboard writers, one artifact each, always writing with ``expected_version`` = the last
  version they were told about;
* a durable consumer (``chaos-recorder``, pattern ``chaos:*``) recording what it handles;
* a starter of workflow instances (two action steps; each action publishes a marker event
  through ``ctx.tx`` and sleeps a few ms), retried with the same idempotency key,

the server is stopped (``pg_ctl stop -m fast``, then ``-m immediate``: a crash) and started
again, without touching the runtimes. The test asserts that

* every failed call raised a :class:`cowork.CoworkError` subclass (no raw driver error) and
  none ran longer than the configured connect + statement timeouts plus a margin (no hang);
* calls failed while the server was down (the outage really happened) and succeed again after
  the restart without reopening anything (the pool recovers by itself, within a bound);
* every acknowledged publish is in the log, every acknowledged blackboard version is in the
  artifact's history with the content written, every acknowledged workflow start completes
  (each step exactly once, one marker event per step), and the consumer eventually handles every
  ``chaos:*`` event, all without operator action;
* every runtime's background work (its workflow executor and durable-consumer runners) is still
  running after the restarts, and ``close()`` raises nothing (a recovered runtime closes
  cleanly). This inspects internal state, on purpose: a dead executor in one of several
  runtimes is otherwise masked by the others.

It prints a short report (calls, errors by type, recovery times, counts).

Knobs (environment):

* ``COWORK_CHAOS_SCALE`` (default ``1``): multiplies the number of restart cycles (each cycle is
  one ``fast`` and one ``immediate`` stop; two cycles at scale 1); ``3`` takes about three times
  as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

import cowork
from cowork import ActionContext, ActionStep, WorkflowDefinition
from cowork.consumers.manager import ConsumerManager
from cowork.workflows.manager import WorkflowManager
from tests.support.events import eventually
from tests.support.postgres import Cluster, db_required, start_throwaway_cluster, with_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCALE = max(0.1, float(os.environ.get("COWORK_CHAOS_SCALE", "1") or "1"))
CYCLES = max(1, round(2 * SCALE))
RUNTIMES = 3
TENANT = "chaos-restart"
CONNECT_TIMEOUT = 2.0
STATEMENT_TIMEOUT = 5.0
# A call may wait for a pooled connection (connect timeout), then run statements (statement
# timeout); anything longer than that plus a margin is a hang.
CALL_BUDGET = CONNECT_TIMEOUT + STATEMENT_TIMEOUT + 3.0
RECOVERY_LIMIT = 15.0
WARMUP = 2.0
RUN_BETWEEN = 2.0
OUTAGE = 1.5
# A step interrupted by the outage may wait for its workflow lease to expire (30 s by default)
# before it is claimed again; consumers and workflows must settle within that plus a margin.
SETTLE_TIMEOUT = 75.0

WORKFLOW = "chaos-restart-flow"
ACTION = "chaos.restart.mark"
STEPS = ("one", "two")
DEFINITION = WorkflowDefinition(
    workflow_id=WORKFLOW,
    version=1,
    name="Two marked actions",
    correlation=("n",),
    steps=tuple(
        ActionStep(name=name, action=ACTION, max_attempts=3, backoff_seconds=0.05) for name in STEPS
    ),
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = start_throwaway_cluster()
    if started is None:
        if db_required():
            pytest.fail("could not start a throwaway cluster with initdb/pg_ctl")
        pytest.skip("no initdb/pg_ctl to start a throwaway cluster")
    yield started
    with contextlib.suppress(Exception):
        started.stop("fast")


@pytest.fixture
def chaos_url(cluster: Cluster) -> str:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cowork_chaos_restart WITH (FORCE)")
        conn.execute("CREATE DATABASE cowork_chaos_restart")
    return with_database(cluster.url, "cowork_chaos_restart")


@dataclass
class Outage:
    mode: str
    down_at: float
    up_at: float = 0.0
    recovered_at: float = 0.0
    errors: int = 0


@dataclass
class Ledger:
    """What callers were told: acknowledged operations, errors, hangs."""

    acked_events: set[str] = field(default_factory=set)
    acked_versions: dict[str, dict[int, int]] = field(default_factory=dict)
    acked_instances: dict[str, str] = field(default_factory=dict)  # idempotency key -> id
    lost_acks: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)
    raw: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    slowest: float = 0.0
    last_ok: float = 0.0


class Failed:
    """A call that did not succeed (the exception, if it was a CoworkError)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


async def guarded(ledger: Ledger, what: str, call: Awaitable[Any]) -> Any:
    """Run one public-API call under the hang budget and classify how it ended."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    ledger.calls[what] += 1
    try:
        result = await asyncio.wait_for(call, CALL_BUDGET)
    except TimeoutError as exc:
        elapsed = loop.time() - started
        if elapsed >= CALL_BUDGET - 0.05:
            ledger.hangs.append(f"{what}: no answer after {elapsed:.1f}s")
        else:
            ledger.raw.append(f"{what}: builtins.TimeoutError after {elapsed:.1f}s: {exc}")
        return Failed(None)
    except cowork.CoworkError as exc:
        ledger.slowest = max(ledger.slowest, loop.time() - started)
        name = type(exc).__name__
        if not isinstance(exc, cowork.VersionConflict):
            ledger.errors[name] += 1
            ledger.error_times.append(time.monotonic())
            ledger.samples.setdefault(name, f"{what}: {exc}")
        return Failed(exc)
    except Exception as exc:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        ledger.raw.append(f"{what}: {kind}: {exc}")
        return Failed(None)
    ledger.slowest = max(ledger.slowest, loop.time() - started)
    ledger.ok[what] += 1
    ledger.last_ok = time.monotonic()
    return result


class Load:
    def __init__(self, runtimes: list[cowork.Runtime], workspace_id: str) -> None:
        self.runtimes = runtimes
        self.workspace_id = workspace_id
        self.ledger = Ledger()
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for r, rt in enumerate(self.runtimes):
            for w in range(2):
                self._spawn(self._publisher(rt, f"r{r}p{w}"))
            self._spawn(self._batch_publisher(rt, f"r{r}b"))
            for w in range(2):
                self._spawn(self._writer(rt, f"r{r}k{w}"))
        self._spawn(self._starter(self.runtimes[0]))

    def _spawn(self, coro: Awaitable[None]) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _publisher(self, rt: cowork.Runtime, name: str) -> None:
        i = 0
        while not self.stop.is_set():
            event_id = f"{name}-{i}"
            result = await guarded(
                self.ledger,
                "events.publish",
                rt.events.publish("chaos:tick", {"w": name, "i": i}, event_id=event_id),
            )
            if isinstance(result, cowork.EventEnvelope):
                assert result.event_id == event_id
                self.ledger.acked_events.add(event_id)
                i += 1  # a failed publish is retried with the same id (idempotent)
                await self._pause(0.005)
            else:
                await self._pause(0.05)

    async def _batch_publisher(self, rt: cowork.Runtime, name: str) -> None:
        b = 0
        while not self.stop.is_set():
            batch = [
                cowork.NewEvent(
                    event_type="chaos:batch", payload={"b": b, "j": j}, event_id=f"{name}-{b}-{j}"
                )
                for j in range(5)
            ]
            result = await guarded(
                self.ledger, "events.publish_many", rt.events.publish_many(batch)
            )
            if isinstance(result, list):
                assert [e.event_id for e in result] == [e.event_id for e in batch]
                self.ledger.acked_events.update(e.event_id for e in result)
                b += 1
                await self._pause(0.02)
            else:
                await self._pause(0.05)

    async def _writer(self, rt: cowork.Runtime, key: str) -> None:
        acked = self.ledger.acked_versions.setdefault(key, {})
        known = 0
        n = 0
        while not self.stop.is_set():
            result = await guarded(
                self.ledger,
                "blackboard.put",
                rt.blackboard.put(
                    self.workspace_id,
                    key,
                    {"n": n, "key": key},
                    actor="chaos",
                    expected_version=known,
                ),
            )
            if isinstance(result, cowork.BlackboardEntry):
                assert result.version == known + 1, (key, known, result.version)
                acked[result.version] = n
                known = result.version
                n += 1
                await self._pause(0.01)
            elif isinstance(result, Failed) and isinstance(result.error, cowork.VersionConflict):
                # Only this task writes this key: a conflict means an earlier write committed
                # although its caller was told it failed (the connection died at COMMIT).
                assert result.error.current_version is not None
                assert result.error.current_version > known, (key, known, result.error)
                self.ledger.lost_acks["blackboard.put"] += 1
                known = result.error.current_version
                n += 1
            else:
                await self._pause(0.05)

    async def _starter(self, rt: cowork.Runtime) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"wf-{i}"
            result = await guarded(
                self.ledger,
                "workflows.start",
                rt.workflows.start(WORKFLOW, input={"n": i}, idempotency_key=key),
            )
            if isinstance(result, cowork.WorkflowInstance):
                previous = self.ledger.acked_instances.setdefault(key, result.instance_id)
                assert previous == result.instance_id
                i += 1
                await self._pause(0.05)
            else:
                await self._pause(0.05)


async def mark(ctx: ActionContext) -> dict[str, Any]:
    payload = {"instanceId": ctx.instance.instance_id, "step": ctx.step_name}

    @ctx.at_completion  # commits exactly with the step
    async def publish(tx: cowork.TransactionContext) -> None:
        await tx.events.publish("chaos:wf:mark", payload)

    await asyncio.sleep(0.003)
    return {ctx.step_name: True}


async def open_runtime(url: str) -> cowork.Runtime:
    rt = await cowork.open(
        url,
        tenant_id=TENANT,
        worker=True,
        required=True,
        pool_max_size=6,
        connect_timeout_seconds=CONNECT_TIMEOUT,
        statement_timeout_seconds=STATEMENT_TIMEOUT,
    )
    rt.workflows.register_action(ACTION, mark)  # before the first await: the executor runs
    return rt


async def recover(ledger: Ledger, rt: cowork.Runtime, label: str) -> float:
    """Seconds until a call on ``rt`` succeeds again (the same runtime, never reopened)."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        event_id = f"probe-{label}-{attempt}"
        result = await guarded(
            ledger, "probe", rt.events.publish("chaos:probe", {}, event_id=event_id)
        )
        if isinstance(result, cowork.EventEnvelope):
            ledger.acked_events.add(event_id)
            return time.monotonic() - started
        if time.monotonic() - started > RECOVERY_LIMIT:
            raise AssertionError(
                f"{label}: no call succeeded within {RECOVERY_LIMIT}s of the restart "
                f"(the pool did not recover by itself); errors so far {dict(ledger.errors)}"
            )
        await asyncio.sleep(0.1)


def background_problems(rt: cowork.Runtime, label: str) -> list[str]:
    """Background work of a runtime that has died (internal state: a diagnostic, so that a dead
    workflow executor or consumer runner fails here, named, rather than as a vague timeout)."""
    problems = []
    engine = WorkflowManager.of(rt._core).running(TENANT)
    executor = None if engine is None else engine._executor
    if executor is None:
        problems.append(f"{label}: no workflow executor is running")
    elif executor.done():
        error = None if executor.cancelled() else executor.exception()
        problems.append(f"{label}: the workflow executor task died: {error!r}")
    for (_, consumer_id), runner in ConsumerManager.of(rt._core)._runners.items():
        if not runner.running:
            problems.append(f"{label}: durable consumer {consumer_id!r} stopped running")
    return problems


async def close_all(runtimes: list[cowork.Runtime]) -> list[str]:
    """Close every runtime; what each close raised (it should raise nothing)."""
    failures = []
    for rt in runtimes:
        try:
            await rt.close()
        except Exception as exc:
            failures.append(f"{rt!r}.close() raised {type(exc).__name__}: {exc}")
    return failures


async def test_database_restart_loses_no_acknowledged_operation(
    cluster: Cluster, chaos_url: str
) -> None:
    t0 = time.monotonic()
    runtimes = [await open_runtime(chaos_url) for _ in range(RUNTIMES)]
    rt_a, rt_b = runtimes[0], runtimes[1]
    handled: Counter[str] = Counter()

    async def record(event: cowork.EventEnvelope) -> None:
        handled[event.event_id] += 1

    outages: list[Outage] = []
    load: Load | None = None
    try:
        for rt in runtimes:
            await rt.workflows.register(DEFINITION)
        workspace = await rt_a.workspaces.create(name="chaos", actor="chaos")
        sub = rt_b.events.subscribe("chaos:*", record, consumer_id="chaos-recorder")
        await sub
        load = Load(runtimes, workspace.workspace_id)
        load.start()
        ledger = load.ledger
        await asyncio.sleep(WARMUP)
        assert ledger.ok["events.publish"] > 0, f"no publish succeeded before the outage: {ledger}"

        for mode in ["fast", "immediate"] * CYCLES:
            outage = Outage(mode=mode, down_at=time.monotonic())
            outages.append(outage)
            await asyncio.to_thread(cluster.stop, mode)
            await asyncio.sleep(OUTAGE)
            await asyncio.to_thread(cluster.start)
            outage.up_at = time.monotonic()
            recovered = await asyncio.gather(
                *(recover(ledger, rt, f"r{r}-{len(outages)}") for r, rt in enumerate(runtimes))
            )
            outage.recovered_at = outage.up_at + max(recovered)
            outage.errors = sum(
                1 for t in ledger.error_times if outage.down_at <= t <= outage.recovered_at
            )
            await asyncio.sleep(RUN_BETWEEN)
        load_seconds = time.monotonic() - t0
        await load.finish()
        report = [
            f"database restart chaos ({load_seconds:.1f}s of load, {len(outages)} restarts):",
            f"  calls {sum(ledger.calls.values())} ok {sum(ledger.ok.values())} "
            f"errors {dict(ledger.errors)} slowest call {ledger.slowest:.2f}s "
            f"(budget {CALL_BUDGET:.0f}s); raw errors {len(ledger.raw)}, hangs {len(ledger.hangs)}",
        ]
        for outage in outages:
            report.append(
                f"  stop -m {outage.mode}: {outage.errors} failed calls while down; "
                f"first success {outage.recovered_at - outage.up_at:.2f}s after start"
            )
        report.append(f"  error samples: {ledger.samples}")
        print("\n".join(report))

        # -- nothing hung, nothing raw --------------------------------------------------------
        assert not ledger.raw, "calls raised something other than a CoworkError:\n" + "\n".join(
            ledger.raw[:20]
        )
        assert not ledger.hangs, f"calls ran past {CALL_BUDGET}s: {ledger.hangs[:20]}"
        for outage in outages:
            assert outage.errors > 0, f"no call failed during the {outage.mode} outage: {outage}"
        for rt in runtimes:
            assert (await rt.health()).healthy

        # -- every acknowledged publish is in the log -------------------------------------------
        async def log_ids() -> set[str] | None:
            ids = {e.event_id async for e in rt_a.events.iterate()}
            return ids if ledger.acked_events <= ids else None

        try:
            await eventually(log_ids, timeout=15, what="acked events in log")
        except AssertionError:
            ids = {e.event_id async for e in rt_a.events.iterate()}
            missing = sorted(ledger.acked_events - ids)
            raise AssertionError(
                f"{len(missing)} acknowledged events are missing from the log: {missing[:20]}"
            ) from None

        # -- every acknowledged blackboard version is in the history ---------------------------
        for key, acked in ledger.acked_versions.items():
            history = await rt_a.blackboard.history(workspace.workspace_id, key)
            stored = {v.version: v.payload for v in history}
            assert [v.version for v in history] == list(range(1, len(history) + 1)), key
            for version, n in acked.items():
                assert version in stored, f"{key} v{version} was acknowledged but is missing"
                assert stored[version] == {"n": n, "key": key}, (key, version, stored[version])

        # -- every acknowledged workflow start completes, each step exactly once ---------------
        dead = [p for r, rt in enumerate(runtimes) for p in background_problems(rt, f"runtime {r}")]
        assert not dead, "background work did not survive the restarts:\n" + "\n".join(dead)
        pending = set(ledger.acked_instances.values())

        async def all_completed() -> bool:
            for instance_id in list(pending):
                instance = await rt_a.workflows.get(instance_id)
                assert instance is not None, f"acknowledged instance {instance_id} is missing"
                assert instance.status not in (
                    cowork.InstanceStatus.FAILED,
                    cowork.InstanceStatus.CANCELLED,
                ), f"{instance_id} ended {instance.status.value}: {instance.last_error}"
                if instance.status is cowork.InstanceStatus.COMPLETED:
                    pending.discard(instance_id)
            return not pending

        settle_started = time.monotonic()
        await eventually(
            all_completed, timeout=SETTLE_TIMEOUT, interval=0.2, what="workflows completed"
        )
        settled = time.monotonic() - settle_started
        for instance_id in ledger.acked_instances.values():
            history = await rt_a.workflows.history(instance_id)
            kinds = Counter(h.kind for h in history)
            steps = [h.step_name for h in history if h.kind == "step_completed"]
            assert kinds["started"] == 1 and kinds["completed"] == 1, (instance_id, history)
            assert steps == list(STEPS), (instance_id, steps)

        events = [e async for e in rt_a.events.iterate()]
        marks = Counter(
            (e.payload["instanceId"], e.payload["step"])
            for e in events
            if e.event_type == "chaos:wf:mark"
        )
        expected_marks = {(i, s) for i in ledger.acked_instances.values() for s in STEPS}
        assert set(marks) >= expected_marks
        duplicated = {k: n for k, n in marks.items() if n != 1}
        assert not duplicated, f"marker events not exactly once: {list(duplicated.items())[:10]}"

        # -- the consumer handles every chaos:* event without operator action ------------------
        wanted = {e.event_id for e in events if e.event_type.startswith("chaos:")}
        assert ledger.acked_events <= wanted
        await eventually(
            lambda: wanted <= set(handled),
            timeout=SETTLE_TIMEOUT,
            interval=0.1,
            what=f"consumer to handle all {len(wanted)} chaos events",
        )
        [info] = [c for c in await rt_b.consumers.list() if c.consumer_id == "chaos-recorder"]
        assert info.parked == 0, info

        print(
            f"  acked events {len(ledger.acked_events)} (all in log), blackboard versions "
            f"{sum(len(v) for v in ledger.acked_versions.values())} (all in history), "
            f"commits whose ack was lost {dict(ledger.lost_acks)}",
            f"  workflows {len(ledger.acked_instances)} completed ({settled:.1f}s after the "
            "load stopped), each step once; consumer "
            f"handled {len(wanted)} events ({sum(handled.values()) - len(handled)} redeliveries)",
            sep="\n",
        )
    finally:
        if load is not None and not load.stop.is_set():
            load.stop.set()
            await asyncio.gather(*load.tasks, return_exceptions=True)
        close_failures = await close_all(runtimes)
        if close_failures:
            print("\n".join(close_failures))
    assert not close_failures, "closing a recovered runtime raised:\n" + "\n".join(close_failures)
