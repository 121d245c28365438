"""The demo scenario: agents collaborate on a workspace while a worker process runs the
workflows; the worker is killed mid-step and a new one resumes the instance."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from cowork.demo.actions import MARKER_ENV
from cowork.errors import VersionConflict
from cowork.events.envelope import EventEnvelope
from cowork.ids import new_id
from cowork.runtime import Runtime, open_runtime
from cowork.workflows.definition import ActionStep, WorkflowDefinition
from cowork.workflows.records import InstanceStatus, WorkflowInstance

__all__ = ["run_demo"]

T = TypeVar("T")

DEMO_PUBLISH = WorkflowDefinition(
    workflow_id="demo-publish",
    version=1,
    name="Render and publish release notes",
    correlation=("workspaceId",),
    steps=(
        ActionStep(name="render", action="demo.render", max_attempts=3, backoff_seconds=0.2),
        ActionStep(name="publish", action="demo.publish", max_attempts=3, backoff_seconds=0.2),
    ),
)


class Worker:
    """A ``cowork worker`` subprocess serving the demo tenant."""

    def __init__(self, url: str, tenant: str, marker: Path) -> None:
        env = {
            **os.environ,
            MARKER_ENV: str(marker),
            "COWORK_LOG_LEVEL": "WARNING",
            # A killed worker's step is resumed when its lease expires: keep the demo short.
            "COWORK_WORKFLOW_LEASE_SECONDS": "3",
        }
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [
                sys.executable,
                "-m",
                "cowork",
                "--database-url",
                url,
                "worker",
                "--tenant",
                tenant,
                "--app",
                "cowork.demo.actions:setup",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


async def _until(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def run_demo(
    database_url: str,
    console: Console,
    *,
    tenant: str | None = None,
    cli_options: Sequence[str] = (),
) -> None:
    """The demo in ``tenant`` (None: a new tenant for this run; an existing one is reused and
    the report shows this run only). ``cli_options``: the global options (``--database-url``,
    ``--config``) the inspection commands printed at the end need to find the same data."""
    tenant = tenant or f"demo-{new_id()[-8:]}"
    started = time.monotonic()
    marker = Path(tempfile.gettempdir()) / f"cowork-demo-{new_id()}.publishing"
    console.rule(f"[bold]Cowork demo[/] — tenant {tenant}")
    rt = await open_runtime(database_url, tenant_id=tenant, owner_id="demo-owner", worker=False)
    worker = Worker(database_url, tenant, marker)
    console.print(f"database: {rt.display_url} (durable: {rt.durable})")
    console.print(f"worker process {worker.pid} runs the consumers and workflows")
    try:
        async with rt:
            # Where this run's events start: a reused tenant holds earlier runs' events.
            earlier = await rt.events.read_before(limit=1)
            workspace_id = await _collaborate(rt, console)
            worker = await _crash_and_resume(
                rt, console, workspace_id, worker, marker, database_url
            )
            await _report(rt, console, workspace_id, since=earlier[-1] if earlier else None)
    finally:
        code = worker.stop()
        console.print(f"worker {worker.pid} stopped on SIGTERM with exit code {code}")
        marker.unlink(missing_ok=True)
    console.rule(f"demo finished in {time.monotonic() - started:.1f}s")
    _print_inspection(console, tenant, workspace_id, cli_options)


def _print_inspection(
    console: Console, tenant: str, workspace_id: str, cli_options: Sequence[str]
) -> None:
    """The commands that show what the demo left behind, ready to copy."""
    prefix = ["cowork", *cli_options, "--tenant", tenant]
    commands = [
        ["workspace", "show", workspace_id],
        ["blackboard", "list", workspace_id],
        ["blackboard", "history", workspace_id, "spec"],
        ["events", "tail", "-n", "30"],
        ["workflow", "list"],
        ["tenants"],
        ["demo"],
    ]
    console.print(f"the demo used tenant {tenant}; inspect it with:")
    for command in commands:
        console.print(
            "  " + shlex.join([*prefix, *command]), markup=False, highlight=False, soft_wrap=True
        )
    console.print("(the last one runs the demo again in the same tenant)")


async def _collaborate(rt: Runtime, console: Console) -> str:
    console.rule("1. a workspace is created and provisioned")
    ws = await rt.workspaces.create(name="Launch plan", actor="alice", project_id="apollo")
    console.print(f"workspace {ws.workspace_id} created by alice")
    await rt.workspaces.add_member(ws.workspace_id, "agent-writer", actor="alice")
    await rt.workspaces.add_member(ws.workspace_id, "agent-reviewer", actor="alice")
    console.print("members added: agent-writer, agent-reviewer")

    console.rule("2. agents write and revise the blackboard")
    bb = rt.blackboard
    v1 = await bb.put(
        ws.workspace_id,
        "spec",
        {"goal": "ship", "risks": []},
        actor="agent-writer",
        expected_version=0,
    )
    console.print(f"agent-writer created spec v{v1.version}")
    seen = await bb.get(ws.workspace_id, "spec")
    assert seen is not None
    v2 = await bb.put(
        ws.workspace_id,
        "spec",
        {"goal": "ship v1.0", "risks": []},
        actor="agent-writer",
        expected_version=v1.version,
    )
    console.print(f"agent-writer revised spec to v{v2.version}")
    try:
        await bb.put(
            ws.workspace_id,
            "spec",
            {**seen.payload, "risks": ["load"]},
            actor="agent-reviewer",
            expected_version=seen.version,
        )
    except VersionConflict as conflict:
        console.print(
            f"[yellow]agent-reviewer lost a race[/]: expected v{seen.version}, "
            f"current is v{conflict.current_version}; re-reading and merging"
        )
        latest = await bb.get(ws.workspace_id, "spec")
        assert latest is not None
        v3 = await bb.put(
            ws.workspace_id,
            "spec",
            {**latest.payload, "risks": ["load"]},
            actor="agent-reviewer",
            expected_version=latest.version,
        )
        console.print(f"agent-reviewer wrote spec v{v3.version} on top of v{latest.version}")

    console.rule("3. review: feedback, then a revision")
    feedback = await bb.add_feedback(
        ws.workspace_id,
        artifact_key="spec",
        actor="agent-reviewer",
        body="Add a rollback plan",
        severity="blocking",
        tags=["risk"],
    )
    console.print(f"agent-reviewer opened blocking feedback {feedback.feedback_id}")
    current = await bb.get(ws.workspace_id, "spec")
    assert current is not None
    v4 = await bb.put(
        ws.workspace_id,
        "spec",
        {**current.payload, "rollback": "blue/green"},
        actor="agent-writer",
        expected_version=current.version,
    )
    await bb.update_feedback(
        feedback.workspace_id, feedback.feedback_id, actor="agent-writer", status="addressed"
    )
    console.print(f"agent-writer addressed it in spec v{v4.version}")

    console.rule("4. snapshot and restore")
    snapshot = await rt.snapshots.create(ws.workspace_id, actor="alice", label="reviewed")
    await bb.put(ws.workspace_id, "spec", {"goal": "oops"}, actor="agent-writer")
    await bb.put(ws.workspace_id, "scratch", {"note": "temporary"}, actor="agent-writer")
    console.print("after the snapshot: spec overwritten, scratch added")
    await rt.snapshots.restore(snapshot.workspace_id, snapshot.snapshot_id, actor="alice")
    restored = await bb.get(ws.workspace_id, "spec")
    assert restored is not None
    gone = await bb.get(ws.workspace_id, "scratch")
    console.print(
        f"restored: spec is v{restored.version} with the reviewed content "
        f"(rollback={restored.payload.get('rollback')!r}); scratch "
        f"{'deleted' if gone is None else 'still there'}"
    )
    versions = await bb.history(ws.workspace_id, "spec")
    console.print("spec history: " + ", ".join(f"v{v.version} {v.operation}" for v in versions))

    async def builtins_done() -> list[WorkflowInstance] | None:
        done = _of_workspace(await rt.workflows.list(status="completed"), ws.workspace_id)
        ids = {i.workflow_id for i in done}
        wanted = {"workspace-provisioning", "blackboard-entry-review-publish"}
        return done if wanted <= ids else None

    await _until(builtins_done, 30, "the built-in workflows to complete")
    console.print("[green]both built-in workflows completed[/] (histories below)")
    return ws.workspace_id


async def _crash_and_resume(
    rt: Runtime,
    console: Console,
    workspace_id: str,
    worker: Worker,
    marker: Path,
    database_url: str,
) -> Worker:
    console.rule("5. a worker is killed mid-step; another resumes the instance")
    await rt.workflows.register(DEMO_PUBLISH)
    instance = await rt.workflows.start(
        "demo-publish", input={"workspaceId": workspace_id}, idempotency_key=f"{workspace_id}:1"
    )
    console.print(f"started demo-publish instance {instance.instance_id}")

    async def publishing() -> bool:
        return await asyncio.to_thread(marker.exists)

    await _until(publishing, 30, "the publish step to start")
    console.print(f"worker {worker.pid} is inside the publish step: [red]SIGKILL[/]")
    worker.kill()
    replacement = Worker(database_url, rt.tenant_id, marker)
    console.print(f"new worker {replacement.pid} started")
    done = await rt.workflows.wait(instance.instance_id, timeout=60)
    status = "[green]completed[/]" if done.status is InstanceStatus.COMPLETED else done.status.value
    console.print(
        f"resumed instance {done.instance_id} {status}: rendered by {done.data.get('renderedBy')}, "
        f"published by {done.data.get('publishedBy')} (the killed attempt left nothing behind)"
    )
    notes = await rt.blackboard.history(workspace_id, "release-notes")
    console.print(
        "release-notes history: " + ", ".join(f"v{v.version} by {v.actor}" for v in notes)
    )
    return replacement


def _of_workspace(instances: list[WorkflowInstance], workspace_id: str) -> list[WorkflowInstance]:
    """The instances correlated with the demo's workspace (every workflow here correlates on
    workspaceId), not those of earlier runs in a reused tenant."""
    return [i for i in instances if workspace_id in (i.correlation_key or "")]


async def _report(
    rt: Runtime, console: Console, workspace_id: str, *, since: EventEnvelope | None
) -> None:
    console.rule("6. the event log")
    table = Table(title_justify="left")
    for column in ("position", "event", "details"):
        table.add_column(column)
    async for event in rt.events.iterate(after=since):
        p = event.payload
        details = ", ".join(
            f"{k}={p[k]}"
            for k in ("artifactKey", "version", "memberId", "workflowId", "step")
            if p.get(k) is not None
        )
        table.add_row(str(event.position), event.event_type, details)
    console.print(table)
    console.rule("7. workflow histories")
    for instance in reversed(_of_workspace(await rt.workflows.list(limit=500), workspace_id)):
        history = Table(
            title=f"{instance.workflow_id} {instance.instance_id} — {instance.status.value}",
            title_justify="left",
        )
        for column in ("seq", "kind", "step", "status"):
            history.add_column(column)
        for entry in await rt.workflows.history(instance.instance_id):
            history.add_row(str(entry.seq), entry.kind, entry.step_name or "", entry.to_status)
        console.print(history)
    with contextlib.suppress(Exception):
        console.print(
            f"workspace {workspace_id}: {len(await rt.blackboard.list(workspace_id))} artifacts"
        )
