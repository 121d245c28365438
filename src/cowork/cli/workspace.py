"""``cowork workspace …``."""

from __future__ import annotations

import click

from cowork.cli.context import CliContext, pass_cli
from cowork.errors import NotFound
from cowork.workspaces.records import Workspace

COLUMNS = ("workspace", "name", "status", "project", "members", "created", "closed")


def _row(w: Workspace) -> tuple[object, ...]:
    closed = w.closed_at.isoformat(timespec="seconds") if w.closed_at else None
    return (
        w.workspace_id,
        w.name,
        w.status.value,
        w.project_id,
        ", ".join(w.members),
        w.created_at.isoformat(timespec="seconds"),
        closed,
    )


@click.group("workspace")
def workspace_group() -> None:
    """Inspect and change workspaces."""


@workspace_group.command("list")
@click.option("--project", help="Only this project.")
@click.option("--status", type=click.Choice(["active", "closed", "archived", "deleted"]))
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted workspaces.")
@pass_cli
def list_command(
    cli: CliContext, project: str | None, status: str | None, include_deleted: bool
) -> None:
    """List workspaces."""

    async def run() -> list[Workspace]:
        async with await cli.runtime() as rt:
            return await rt.workspaces.list(
                project_id=project, status=status, include_deleted=include_deleted
            )

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
    else:
        cli.table("workspaces", COLUMNS, (_row(w) for w in items))


@workspace_group.command("show")
@click.argument("workspace_id")
@pass_cli
def show_command(cli: CliContext, workspace_id: str) -> None:
    """Show one workspace (deleted ones too)."""

    async def run() -> Workspace:
        async with await cli.runtime() as rt:
            found = await rt.workspaces.get(workspace_id, include_deleted=True)
        if found is None:
            raise NotFound(f"no workspace {workspace_id!r}")
        return found

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.table(f"workspace {workspace_id}", COLUMNS, [_row(item)])


@workspace_group.command("create")
@click.option("--name", required=True)
@click.option("--created-by", required=True)
@click.option("--project")
@click.option("--description")
@click.option("--member", "members", multiple=True, help="Repeat for several members.")
@pass_cli
def create_command(
    cli: CliContext,
    name: str,
    created_by: str,
    project: str | None,
    description: str | None,
    members: tuple[str, ...],
) -> None:
    """Create an active workspace."""

    async def run() -> Workspace:
        async with await cli.runtime() as rt:
            return await rt.workspaces.create(
                name=name,
                created_by=created_by,
                project_id=project,
                description=description,
                members=members,
            )

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(f"created workspace {item.workspace_id}")


def _lifecycle(action: str) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} a workspace.")
    @click.argument("workspace_id")
    @click.option("--actor")
    @pass_cli
    def command(cli: CliContext, workspace_id: str, actor: str | None) -> None:
        async def run() -> Workspace:
            async with await cli.runtime() as rt:
                method = getattr(rt.workspaces, action)
                result: Workspace = await method(workspace_id, actor=actor)
                return result

        item = cli.run(run)
        if cli.as_json:
            cli.emit_json(item)
        else:
            cli.console.print(f"workspace {item.workspace_id} is {item.status.value}")

    return command


for _action in ("open", "close", "archive", "delete"):
    workspace_group.add_command(_lifecycle(_action))


@workspace_group.command("add-member")
@click.argument("workspace_id")
@click.argument("member_id")
@click.option("--actor")
@pass_cli
def add_member_command(
    cli: CliContext, workspace_id: str, member_id: str, actor: str | None
) -> None:
    """Add a member (idempotent)."""

    async def run() -> Workspace:
        async with await cli.runtime() as rt:
            return await rt.workspaces.add_member(workspace_id, member_id, actor=actor)

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(f"members of {item.workspace_id}: {', '.join(item.members)}")
