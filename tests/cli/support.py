"""Seeding a database through the Python API, and running the CLI, for the CLI tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

import cowork
from cowork import CompleteStep, EventEnvelope, WaitStep, WorkflowDefinition
from cowork.cli.app import cli

ROOT = Path(__file__).resolve().parents[2]
TENANT = "acme"
OTHER_TENANT = "zeta"
PICKY = "seed.picky"
ENGINE_CONSUMER = "cowork.workflows"
# Wide enough that rich never truncates an id in a table cell.
WIDE = {"COLUMNS": "400", "LINES": "100", "NO_COLOR": "1", "TERM": "dumb"}

ORDERS = WorkflowDefinition(
    workflow_id="cli-orders",
    version=1,
    name="CLI orders",
    correlation=("orderId",),
    steps=(WaitStep(name="paid", event="order:paid"), CompleteStep(name="done")),
)


@dataclass(frozen=True)
class Seed:
    url: str
    alpha: str  # active, project proj-1, members alice + bob, artifacts spec (v1, v2) + notes
    beta: str  # closed
    gone: str  # deleted
    zeta: str  # a workspace of the other tenant: must never show up for acme
    waiting: str  # cli-orders instance waiting for order:paid
    completed: str  # cli-orders instance that completed
    provisioning: str  # workspace-provisioning instance of alpha
    parked_position: int  # the custom:poison event parked by seed.picky
    events: tuple[tuple[int, str], ...]  # (position, event_type) of tenant acme, in log order


async def _eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"seed: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def seed(url: str) -> Seed:
    """Fill ``url`` (migrated or not) with a little of everything, for tenant ``acme``."""
    async with await cowork.open(url, tenant_id=TENANT, owner_id="owner-acme", worker=True) as rt:
        ws = rt.workspaces
        alpha = await ws.create(name="Alpha", project_id="proj-1", actor="alice", members=["alice"])
        await ws.add_member(alpha.workspace_id, "bob", actor="alice")
        beta = await ws.create(name="Beta", project_id="proj-2", actor="bob", members=[])
        await ws.close(beta.workspace_id, actor="bob")
        gone = await ws.create(name="Gone", project_id="proj-2", actor="bob", members=[])
        await ws.delete(gone.workspace_id, actor="bob")

        bb = rt.blackboard
        await bb.put(alpha.workspace_id, "spec", {"goal": "ship"}, actor="alice")
        await bb.put(
            alpha.workspace_id,
            "spec",
            {"goal": "ship it", "risks": ["load"]},
            actor="bob",
            artifact_type="plan",
            expected_version=1,
        )
        await bb.put(alpha.workspace_id, "notes", {"text": "hello"}, actor="bob")

        def picky(event: EventEnvelope) -> None:
            if event.event_type == "custom:poison":
                raise RuntimeError("cannot digest poison")

        sub = await rt.events.subscribe("custom:*", picky, consumer_id=PICKY, max_attempts=1)
        poison = await rt.events.publish("custom:poison", {"n": 1})
        await rt.events.publish("custom:ok", {"n": 2})

        await rt.workflows.register(ORDERS)
        waiting = await rt.workflows.start("cli-orders", input={"orderId": "o-1"})
        completed = await rt.workflows.start("cli-orders", input={"orderId": "o-2"})

        async def is_waiting() -> bool:
            found = await rt.workflows.get(waiting.instance_id)
            return found is not None and found.status.value == "waiting"

        await _eventually(is_waiting, "cli-orders o-1 to wait")
        await _eventually(
            lambda: _status_is(rt, completed.instance_id, "waiting"), "cli-orders o-2 to wait"
        )
        await rt.events.publish("order:paid", {"orderId": "o-2"})
        await _eventually(
            lambda: _status_is(rt, completed.instance_id, "completed"), "o-2 to complete"
        )

        async def provisioning() -> str | None:
            for i in await rt.workflows.list(workflow_id="workspace-provisioning"):
                if alpha.workspace_id in (i.correlation_key or ""):
                    return i.instance_id
            return None

        provisioning_id = await _eventually(provisioning, "alpha's provisioning instance")
        await _eventually(lambda: rt.consumers.parked(PICKY), "the poison event to be parked")
        await sub.stop()

        async def engine_caught_up() -> bool:
            infos = {c.consumer_id: c for c in await rt.consumers.list()}
            return ENGINE_CONSUMER in infos and infos[ENGINE_CONSUMER].lag == 0

        await _eventually(engine_caught_up, "the workflow engine to catch up")
        events = tuple([(e.position, e.event_type) async for e in rt.events.iterate()])

        other = rt.for_tenant(OTHER_TENANT, owner_id="owner-zeta")
        zeta = await other.workspaces.create(name="Zeta secret", actor="zed")
    return Seed(
        url=url,
        alpha=alpha.workspace_id,
        beta=beta.workspace_id,
        gone=gone.workspace_id,
        zeta=zeta.workspace_id,
        waiting=waiting.instance_id,
        completed=completed.instance_id,
        provisioning=provisioning_id,
        parked_position=poison.position,
        events=events,
    )


async def _status_is(rt: cowork.Runtime, instance_id: str, status: str) -> bool:
    found = await rt.workflows.get(instance_id)
    return found is not None and found.status.value == status


def invoke(url: str, *args: str, tenant: str = TENANT, input: str | None = None) -> Result:
    """``cowork --database-url URL --tenant T ARGS…`` in-process, with a wide console."""
    runner = CliRunner()
    return runner.invoke(
        cli,
        ["--database-url", url, "--tenant", tenant, *args],
        env=WIDE,
        input=input,
        catch_exceptions=True,
    )


def ok(result: Result) -> str:
    """The stdout of a successful invocation (with the details when it was not)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"raised {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result.stdout


def ok_json(result: Result) -> Any:
    return json.loads(ok(result))


def run_cowork(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``python -m cowork ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "cowork", *args],
        cwd=cwd,
        env={**os.environ, **WIDE, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
