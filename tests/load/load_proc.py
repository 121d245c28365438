"""One process of the load test (``tests/load/test_load.py``).

Run from the project root::

    python -m tests.load.load_proc --role publish --url URL --name p0 --out p0.json [options]
    python -m tests.load.load_proc --role consume --url URL --name c0 --out c0.json [options]

Both roles open ``cowork.open(url, tenant_id=..., pool_max_size=...)``, print ``READY <pid>`` and
wait for SIGUSR1 (the start signal, so that every process starts together). Every second they
print ``STATS <json>`` (the pool's statistics, events handled or published so far). SIGTERM
(or SIGINT) makes them write ``--out`` (JSON), close the runtime, print ``STOPPED`` and exit 0.

* ``publish`` (``worker=False``): ``--concurrency`` tasks publish ``load:tick`` events (ids
  ``<name>-<task>-<n>``) for ``--seconds``, at most ``--rate`` events/s in all (0: as fast as
  it can), and start a workflow instance of :data:`DEFINITION` every ``--workflow-every``
  events. ``--out`` gets each acknowledged event's id with the wall-clock time its publish
  began, the publish latencies, the instances started and the errors. After ``--seconds`` it
  prints ``DONE <published>`` and idles until SIGTERM.
* ``consume`` (``worker=True``, with the workflow action registered, so these processes also
  run the workflows): a durable consumer ``--name`` on ``load:*`` records the wall-clock time
  it first handled each event id. ``--out`` gets those and the number of redeliveries.

The action of :data:`DEFINITION`'s two steps publishes ``load:wf:mark`` through ``ctx.tx``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import cowork
from cowork import ActionContext, ActionStep, WorkflowDefinition

ACTION = "load.mark"
WORKFLOW = "load-flow"
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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("publish", "consume"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", default="load")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--workflow-every", type=int, default=0)
    parser.add_argument("--pool-max-size", type=int, default=4)
    return parser.parse_args(argv)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def mark(ctx: ActionContext) -> None:
    payload = {"instanceId": ctx.instance.instance_id, "step": ctx.step_name}

    @ctx.at_completion  # commits exactly with the step
    async def publish(tx: cowork.TransactionContext) -> None:
        await tx.events.publish("load:wf:mark", payload)


class Publisher:
    def __init__(self, rt: cowork.Runtime, args: argparse.Namespace) -> None:
        self.rt = rt
        self.args = args
        self.acked: dict[str, float] = {}
        self.latencies: list[float] = []
        self.workflows: dict[str, str] = {}
        self.errors: list[str] = []
        self.count = 0

    async def run(self) -> None:
        args = self.args
        deadline = time.monotonic() + args.seconds
        interval = args.concurrency / args.rate if args.rate > 0 else 0.0
        await asyncio.gather(*(self._task(k, deadline, interval) for k in range(args.concurrency)))

    async def _task(self, k: int, deadline: float, interval: float) -> None:
        n = 0
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            event_id = f"{self.args.name}-{k}-{n}"
            began = time.time()
            try:
                await self.rt.events.publish(
                    "load:tick", {"k": k, "n": n, "at": began}, event_id=event_id
                )
            except cowork.CoworkError as exc:
                self.errors.append(f"publish {event_id}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
                continue
            self.latencies.append(time.time() - began)
            self.acked[event_id] = began
            self.count += 1
            n += 1
            every = self.args.workflow_every
            if every and k == 0 and n % every == 0:
                key = f"{self.args.name}-wf-{n // every}"
                try:
                    instance = await self.rt.workflows.start(
                        WORKFLOW, input={"n": key}, idempotency_key=key
                    )
                    self.workflows[key] = instance.instance_id
                except cowork.CoworkError as exc:
                    self.errors.append(f"start {key}: {type(exc).__name__}: {exc}")
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at = time.monotonic()

    def result(self) -> dict[str, Any]:
        return {
            "acked": self.acked,
            "latencies": self.latencies,
            "workflows": self.workflows,
            "errors": self.errors,
        }


class Consumer:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.redeliveries = 0

    async def handle(self, event: cowork.EventEnvelope) -> None:
        if event.event_id in self.seen:
            self.redeliveries += 1
        else:
            self.seen[event.event_id] = time.time()

    @property
    def count(self) -> int:
        return len(self.seen)

    def result(self) -> dict[str, Any]:
        return {"seen": self.seen, "redeliveries": self.redeliveries}


async def _stats(rt: cowork.Runtime, role: Publisher | Consumer) -> None:
    while True:
        pool = getattr(rt._core.database, "pool_stats", {})
        _say("STATS " + json.dumps({"t": time.time(), "count": role.count, "pool": pool}))
        await asyncio.sleep(1.0)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, go.set)

    publishing = args.role == "publish"
    rt = await cowork.open(
        args.url, tenant_id=args.tenant, worker=not publishing, pool_max_size=args.pool_max_size
    )
    role: Publisher | Consumer
    try:
        if publishing:
            role = Publisher(rt, args)
        else:
            rt.workflows.register_action(ACTION, mark)  # before any await: the executor runs
            role = Consumer()
        await rt.workflows.register(DEFINITION)
        if isinstance(role, Consumer):
            await rt.events.subscribe("load:*", role.handle, consumer_id=args.name)
        _say(f"READY {os.getpid()}")
        await _first(go, stop)
        stats = asyncio.create_task(_stats(rt, role))
        if isinstance(role, Publisher):
            await role.run()
            _say(f"DONE {role.count}")
        await stop.wait()
        stats.cancel()
        args.out.write_text(json.dumps(role.result()))
    finally:
        await rt.close()
    _say("STOPPED")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    return asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
