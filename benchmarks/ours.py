"""Our figures, through the public API (``cowork.open``, ``rt.events``, ``rt.workflows``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

import cowork
from cowork.ids import new_id
from cowork.workflows.manager import WorkflowManager

from .common import (
    AGGREGATE_TYPE,
    EVENT_TYPE,
    METADATA,
    Op,
    Rate,
    payload,
    percentile,
    utcnow,
)
from .consumer_proc import LATENCY_EVENT, RAW_CHANNEL
from .raw import INSERT, RAW_TABLE

ROOT = Path(__file__).resolve().parent.parent


async def open_runtime(url: str, tenant_id: str, *, worker: bool = False) -> cowork.Runtime:
    return await cowork.open(url, tenant_id=tenant_id, worker=worker, required=True)


def publish_ops(rt: cowork.Runtime, writers: int) -> list[Op]:
    """``rt.events.publish`` (one event per transaction), one op per concurrent writer."""

    def make(i: int) -> Op:
        counter = itertools.count()
        aggregate = f"agg-{i}"

        async def op() -> None:
            await rt.events.publish(
                EVENT_TYPE,
                payload(next(counter), i),
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=aggregate,
                metadata=METADATA,
            )

        return op

    return [make(i) for i in range(writers)]


async def batch(rt: cowork.Runtime, total: int, size: int = 500) -> Rate:
    """``rt.events.publish_many`` of ``size`` events per call until ``total`` are written."""
    counter = itertools.count()
    ops = 0
    start = time.perf_counter()
    for _ in range(total // size):
        events = [
            cowork.NewEvent(
                event_type=EVENT_TYPE,
                payload=payload(next(counter), 0),
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id="agg-0",
                metadata=METADATA,
            )
            for _ in range(size)
        ]
        await rt.events.publish_many(events)
        ops += 1
    return Rate(ops, time.perf_counter() - start, 1, size)


async def read(rt: cowork.Runtime, page: int = 500) -> Rate:
    """Catch-up read of the tenant's whole log into envelopes (``rt.events.iterate``)."""
    count = 0
    start = time.perf_counter()
    async for _event in rt.events.iterate(page_size=page):
        count += 1
    return Rate(count, time.perf_counter() - start, 1)


# -- workflows --------------------------------------------------------------------------------
WORKFLOW_ID = "bench-three-steps"


async def _noop(_ctx: cowork.ActionContext) -> None:
    return None


def three_step_definition() -> cowork.WorkflowDefinition:
    return cowork.WorkflowDefinition(
        workflow_id=WORKFLOW_ID,
        version=1,
        name="three no-op action steps",
        steps=tuple(
            cowork.ActionStep(name=f"step-{n}", action="bench.noop", max_attempts=1)
            for n in (1, 2, 3)
        ),
    )


async def long_steps(
    url: str, tenant_id: str, count: int, step_seconds: float, concurrency: int
) -> dict[str, Any]:
    """``count`` workflows of one action step that sleeps ``step_seconds`` (an agent's model
    call), ``concurrency`` steps at once, on one worker (this process), pool of 10."""
    rt = await cowork.open(url, tenant_id=tenant_id, worker=True, workflow_concurrency=concurrency)
    try:

        async def model_call(ctx: cowork.ActionContext) -> None:
            await asyncio.sleep(step_seconds)

        rt.workflows.register_action("bench.model_call", model_call)
        await rt.workflows.register(
            cowork.WorkflowDefinition(
                workflow_id="long-step",
                version=1,
                name="one long step",
                steps=(cowork.ActionStep(name="call", action="bench.model_call"),),
            )
        )
        started = time.perf_counter()
        for _ in range(count):
            await rt.workflows.start("long-step")
        await _wait_completed(rt, count, 600)
        seconds = time.perf_counter() - started
    finally:
        await rt.close()
    return {
        "workflows": count,
        "step_seconds": step_seconds,
        "concurrency": concurrency,
        "seconds": round(seconds, 4),
        "workflows_per_second": round(count / seconds, 2),
    }


async def _wait_completed(rt: cowork.Runtime, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = await rt.workflows.counts()
        if counts.get("completed", 0) >= expected:
            return
        if counts.get("failed", 0):
            raise RuntimeError(f"benchmark workflows failed: {counts}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflows not completed after {timeout}s: {counts}")
        await asyncio.sleep(0.05)


async def workflows(url: str, tenant_id: str, count: int) -> dict[str, Any]:
    """Start ``count`` instances of a three-step workflow and run them on one worker (this
    process, ``worker=True``); count committed transitions (starts + executor steps)."""
    rt = await open_runtime(url, tenant_id, worker=True)
    try:
        rt.workflows.register_action("bench.noop", _noop)
        await rt.workflows.register(three_step_definition())
        engine = WorkflowManager.of(rt._core).running(rt.tenant_id)  # counter only; internal
        assert engine is not None
        warmup = 10
        for _ in range(warmup):
            await rt.workflows.start(WORKFLOW_ID)
        await _wait_completed(rt, warmup, 60)

        sem = asyncio.Semaphore(4)

        async def start_one() -> None:
            async with sem:
                await rt.workflows.start(WORKFLOW_ID)

        before = engine.transitions
        started = time.perf_counter()
        await asyncio.gather(*(start_one() for _ in range(count)))
        starts_done = time.perf_counter() - started
        await _wait_completed(rt, warmup + count, 300)
        seconds = time.perf_counter() - started
        executor_transitions = engine.transitions - before
        instance = (await rt.workflows.list(workflow_id=WORKFLOW_ID, limit=1))[0]
        history = await rt.workflows.history(instance.instance_id)
    finally:
        await rt.close()
    transitions = count + executor_transitions
    return {
        "workflows": count,
        "seconds": round(seconds, 4),
        "starts_seconds": round(starts_done, 4),
        "workflows_per_second": round(count / seconds, 2),
        "transitions": transitions,
        "transitions_per_workflow": round(transitions / count, 3),
        "transitions_per_second": round(transitions / seconds, 2),
        "history_entries_per_workflow": len(history),
        "counted_as": "one start transaction per instance + the engine's executor transitions "
        "(each one committed transaction that moves an instance)",
    }


# -- publish -> durable consumer in another process ------------------------------------------
async def _expect(proc: asyncio.subprocess.Process, word: str, timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"consumer process did not say {word} in {timeout}s")
        line = await asyncio.wait_for(proc.stdout.readline(), remaining)
        if not line:
            raise RuntimeError(f"consumer process exited (code {await proc.wait()}) before {word}")
        if line.decode().strip() == word:
            return


async def latency(
    url: str, tenant_id: str, *, mode: str, count: int, interval: float
) -> dict[str, Any]:
    """Publish ``count`` events one at a time (``interval`` apart); a consumer in another
    process records when each arrives. Latency = arrival - the moment ``publish`` was called
    (and, separately, - the moment it returned, i.e. after commit)."""
    with tempfile.TemporaryDirectory(prefix="cowork-bench-") as tmp:
        out = Path(tmp) / "received.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.consumer_proc",
            "--mode",
            mode,
            "--url",
            url,
            "--tenant",
            tenant_id,
            "--count",
            str(count),
            "--out",
            str(out),
            cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE,
        )
        rt: cowork.Runtime | None = None
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            await _expect(proc, "READY", 120)
            if mode == "ours":
                rt = await open_runtime(url, tenant_id)
                runtime = rt

                async def send(i: int, t: float) -> None:
                    await runtime.events.publish(LATENCY_EVENT, {**payload(i), "i": i, "t": t})

            else:
                conn = await psycopg.AsyncConnection.connect(url)
                connection = conn
                notify = f"SELECT pg_notify('{RAW_CHANNEL}', '')"

                async def send(i: int, t: float) -> None:
                    await connection.execute(
                        INSERT,
                        (
                            tenant_id,
                            new_id(),
                            LATENCY_EVENT,
                            AGGREGATE_TYPE,
                            "agg-0",
                            Jsonb({**payload(i), "i": i, "t": t}),
                            Jsonb(METADATA),
                            None,
                            None,
                            utcnow(),
                        ),
                    )
                    await connection.execute(notify)
                    await connection.commit()

            warm = asyncio.create_task(_expect(proc, "WARM", 60))
            while not warm.done():
                await send(-1, time.time())
                await asyncio.wait([warm], timeout=0.05)
            await warm
            await asyncio.sleep(0.2)
            sent: dict[int, tuple[float, float]] = {}
            for i in range(count):
                before = time.time()
                await send(i, before)
                sent[i] = (before, time.time())
                await asyncio.sleep(interval)
            await _expect(proc, "DONE", 120)
            received = {int(k): v for k, v in json.loads(out.read_text())["received"].items()}
        finally:
            if rt is not None:
                await rt.close()
            if conn is not None:
                await conn.close()
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    from_call = [(received[i] - sent[i][0]) * 1000 for i in sent if i in received]
    from_commit = [(received[i] - sent[i][1]) * 1000 for i in sent if i in received]
    publish_ms = [(sent[i][1] - sent[i][0]) * 1000 for i in sent]
    return {
        "mode": mode,
        "events": count,
        "received": len(from_call),
        "interval_seconds": interval,
        "p50_ms": round(percentile(from_call, 50), 3),
        "p90_ms": round(percentile(from_call, 90), 3),
        "p99_ms": round(percentile(from_call, 99), 3),
        "max_ms": round(max(from_call), 3),
        "after_commit_p50_ms": round(percentile(from_commit, 50), 3),
        "after_commit_p99_ms": round(percentile(from_commit, 99), 3),
        "publish_call_p50_ms": round(percentile(publish_ms, 50), 3),
        "measured_from": "the moment publish was called (payload timestamp) to handler entry",
    }


# -- replay -----------------------------------------------------------------------------------
def load_replay(url: str, tenant_id: str, total: int, chunk: int = 100_000) -> dict[str, Any]:
    """Insert ``total`` events for ``tenant_id`` server-side (``INSERT … SELECT
    generate_series``, ``chunk`` per transaction), into our log and into the raw table."""
    text = payload(0)["text"]
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        # The session's tenant setting satisfies the log's row-level security for any role.
        conn.execute("SELECT set_config('cowork.tenant_id', %s, false)", (tenant_id,))
        for low in range(1, total + 1, chunk):
            high = min(total, low + chunk - 1)
            conn.execute(
                "INSERT INTO cowork_event_log (tenant_id, event_id, event_type, aggregate_type,"
                " aggregate_id, payload, metadata, occurred_at) "
                "SELECT %s, 'replay-' || g, %s, %s, 'agg-' || (g %% 100), "
                "jsonb_build_object('n', g, 'writer', 0, 'kind', 'benchmark', 'text', %s::text),"
                " %s, now() FROM generate_series(%s::bigint, %s::bigint) AS g",
                (tenant_id, EVENT_TYPE, AGGREGATE_TYPE, text, Jsonb(METADATA), low, high),
            )
        ours_seconds = time.perf_counter() - started
        conn.execute(
            f"INSERT INTO {RAW_TABLE} (tenant_id, event_id, event_type, aggregate_type, "
            "aggregate_id, payload, metadata, occurred_at) "
            "SELECT tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, "
            "metadata, occurred_at FROM cowork_event_log WHERE tenant_id = %s ORDER BY position",
            (tenant_id,),
        )
        conn.execute("VACUUM ANALYZE cowork_event_log")
        conn.execute(f"VACUUM ANALYZE {RAW_TABLE}")
    return {
        "events": total,
        "chunk": chunk,
        "insert_seconds": round(ours_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
    }


async def replay(url: str, tenant_id: str, mode: str, page: int = 500) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.replay_proc",
        "--mode",
        mode,
        "--url",
        url,
        "--tenant",
        tenant_id,
        "--page",
        str(page),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"replay process ({mode}) exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result
