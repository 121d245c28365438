"""``cowork tenants``: every tenant of the database, with what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from cowork.cli.context import CliContext, pass_cli

if TYPE_CHECKING:
    from cowork.runtime import Runtime

ACTIVE_INSTANCES = ("running", "waiting")


@dataclass(frozen=True, kw_only=True)
class TenantSummary:
    tenant_id: str
    workspaces: int  # not deleted (what `cowork workspace list` shows)
    workspaces_by_status: dict[str, int]
    events: int
    workflow_instances: int
    workflow_instances_by_status: dict[str, int]
    consumers: int
    parked_events: int


async def _summary(rt: Runtime) -> TenantSummary:
    workspaces = await rt.workspaces.counts()
    instances = await rt.workflows.counts()
    consumers = await rt.consumers.list()
    return TenantSummary(
        tenant_id=rt.tenant_id,
        workspaces=sum(n for status, n in workspaces.items() if status != "deleted"),
        workspaces_by_status=workspaces,
        events=await rt.events.count(),
        workflow_instances=sum(instances.values()),
        workflow_instances_by_status=instances,
        consumers=len(consumers),
        parked_events=sum(c.parked for c in consumers),
    )


@click.command("tenants")
@pass_cli
def tenants_command(cli: CliContext) -> None:
    """Tenants in the database, with their workspaces, events and workflows.

    A tenant is listed once it has events (creating a workspace records one). Pass one to
    other commands with --tenant."""

    async def run() -> list[TenantSummary]:
        async with await cli.operator() as op:
            return [await _summary(op.runtime(t)) for t in await op.tenants()]

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        "tenants",
        ("tenant", "workspaces", "events", "workflow instances", "active", "consumers", "parked"),
        (
            (
                t.tenant_id,
                t.workspaces,
                t.events,
                t.workflow_instances,
                sum(t.workflow_instances_by_status.get(s, 0) for s in ACTIVE_INSTANCES),
                t.consumers,
                t.parked_events,
            )
            for t in items
        ),
    )
