"""``cowork workflow definitions|list|show|history|cancel``."""

from __future__ import annotations

import json

import click

from cowork.cli.context import CliContext, pass_cli, to_jsonable
from cowork.errors import NotFound
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.records import HistoryEntry, WorkflowInstance


def _instance_row(
    i: WorkflowInstance, steps: dict[tuple[str, int], list[str]]
) -> tuple[object, ...]:
    names = steps.get((i.workflow_id, i.workflow_version), [])
    step = names[i.step_index] if i.step_index < len(names) else "-"
    return (
        i.instance_id,
        f"{i.workflow_id} v{i.workflow_version}",
        i.status.value,
        step,
        i.correlation_key,
        i.updated_at.isoformat(timespec="seconds"),
    )


@click.group("workflow")
def workflow_group() -> None:
    """Inspect and operate workflows."""


@workflow_group.command("definitions")
@pass_cli
def definitions_command(cli: CliContext) -> None:
    """Registered definitions (every version)."""

    async def run() -> list[WorkflowDefinition]:
        async with await cli.runtime() as rt:
            return await rt.workflows.definitions()

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json([d.to_json() for d in items])
        return
    cli.table(
        "workflow definitions",
        ("workflow", "version", "trigger", "correlation", "steps"),
        (
            (
                d.workflow_id,
                d.version,
                d.trigger,
                ", ".join(d.correlation),
                " → ".join(s.name for s in d.steps),
            )
            for d in items
        ),
    )


async def _step_names(cli: CliContext) -> dict[tuple[str, int], list[str]]:
    async with await cli.runtime() as rt:
        return {
            (d.workflow_id, d.version): [s.name for s in d.steps]
            for d in await rt.workflows.definitions()
        }


@workflow_group.command("list")
@click.option("--workflow", "workflow_id", help="Only this workflow.")
@click.option(
    "--status", type=click.Choice(["running", "waiting", "completed", "failed", "cancelled"])
)
@click.option("--limit", default=50, show_default=True)
@pass_cli
def list_command(cli: CliContext, workflow_id: str | None, status: str | None, limit: int) -> None:
    """Instances, newest first."""

    async def run() -> tuple[list[WorkflowInstance], dict[tuple[str, int], list[str]]]:
        async with await cli.runtime() as rt:
            items = await rt.workflows.list(workflow_id=workflow_id, status=status, limit=limit)
        return items, await _step_names(cli)

    items, steps = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        "workflow instances",
        ("instance", "workflow", "status", "step", "correlation", "updated"),
        (_instance_row(i, steps) for i in items),
    )


@workflow_group.command("show")
@click.argument("instance_id")
@pass_cli
def show_command(cli: CliContext, instance_id: str) -> None:
    """One instance and its state."""

    async def run() -> tuple[WorkflowInstance, dict[tuple[str, int], list[str]], float | None]:
        async with await cli.runtime() as rt:
            found = await rt.workflows.get(instance_id)
            now = rt.database_now()
        if found is None:
            raise NotFound(f"no workflow instance {instance_id!r}")
        return found, await _step_names(cli), found.awaiting_worker(now)

    item, steps, waited = cli.run(run)
    waiting = None if waited is None else {"action": item.action, "seconds": round(waited, 3)}
    if cli.as_json:
        cli.emit_json({**to_jsonable(item), "waiting_for_worker": waiting})
        return
    cli.table(
        f"instance {instance_id}",
        ("instance", "workflow", "status", "step", "correlation", "updated"),
        [_instance_row(item, steps)],
    )
    if waiting is not None:
        cli.console.print(
            f"waiting for a worker with action {item.action!r} for {waited:.1f} s "
            "(no worker serving this tenant has taken it; register the action in a worker)"
        )
    cli.console.print_json(json.dumps(item.state, default=str))
    if item.last_error:
        cli.console.print(f"last error: {item.last_error}")


def print_history(cli: CliContext, title: str, items: list[HistoryEntry]) -> None:
    cli.table(
        title,
        ("seq", "kind", "step", "status", "event", "at"),
        (
            (
                h.seq,
                h.kind,
                h.step_name,
                h.to_status,
                h.event_id,
                h.created_at.isoformat(timespec="milliseconds"),
            )
            for h in items
        ),
    )


@workflow_group.command("history")
@click.argument("instance_id")
@pass_cli
def history_command(cli: CliContext, instance_id: str) -> None:
    """An instance's transitions in order."""

    async def run() -> list[HistoryEntry]:
        async with await cli.runtime() as rt:
            return await rt.workflows.history(instance_id)

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
    else:
        print_history(cli, f"history of {instance_id}", items)


@workflow_group.command("cancel")
@click.argument("instance_id")
@click.option("--reason")
@click.option("--actor")
@pass_cli
def cancel_command(
    cli: CliContext, instance_id: str, reason: str | None, actor: str | None
) -> None:
    """Cancel a running or waiting instance."""

    async def run() -> WorkflowInstance:
        async with await cli.runtime() as rt:
            return await rt.workflows.cancel(instance_id, reason=reason, actor=actor)

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(f"instance {item.instance_id} is {item.status.value}")
