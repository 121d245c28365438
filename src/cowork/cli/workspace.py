"""``cowork workspace …``."""

from __future__ import annotations

import sys
from typing import Any

import click

from cowork.cli.context import CliContext, pass_cli
from cowork.cli.lookup import require_workspace
from cowork.cli.payload import JSON_PAYLOAD
from cowork.errors import ValidationError
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
            return await require_workspace(rt, workspace_id)

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.table(f"workspace {workspace_id}", COLUMNS, [_row(item)])


@workspace_group.command("create")
@click.option("--name", required=True)
@click.option("--actor", required=True, help="Who creates it (a member when no --member).")
@click.option("--project")
@click.option("--description")
@click.option("--member", "members", multiple=True, help="Repeat for several members.")
@pass_cli
def create_command(
    cli: CliContext,
    name: str,
    actor: str,
    project: str | None,
    description: str | None,
    members: tuple[str, ...],
) -> None:
    """Create an active workspace."""

    async def run() -> Workspace:
        async with await cli.runtime() as rt:
            return await rt.workspaces.create(
                name=name,
                actor=actor,
                project_id=project,
                description=description,
                members=members or None,  # none given: the creator
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
    @click.option("--reason", help="Why (recorded in the events).")
    @pass_cli
    def command(
        cli: CliContext,
        workspace_id: str,
        actor: str | None,
        reason: str | None,
        yes: bool = False,
    ) -> None:
        async def run() -> Workspace:
            async with await cli.runtime() as rt:
                current = await require_workspace(rt, workspace_id)
                if action == "delete" and not yes:
                    _confirm_delete(current)
                method = getattr(rt.workspaces, action)
                result: Workspace = await method(workspace_id, actor=actor, reason=reason)
                return result

        item = cli.run(run)
        if cli.as_json:
            cli.emit_json(item)
        else:
            cli.console.print(f"workspace {item.workspace_id} is {item.status.value}")

    if action == "delete":
        click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")(command)
    return command


def _confirm_delete(workspace: Workspace) -> None:
    """Ask on the terminal; refuse (exit 2) when there is no terminal to ask on."""
    what = f"workspace {workspace.workspace_id} ({workspace.name!r}, {workspace.status.value})"
    if not sys.stdin.isatty():
        raise ValidationError(
            f"not deleting {what}: standard input is not a terminal to confirm on; "
            "pass --yes to delete without asking"
        )
    click.confirm(f"delete {what}?", abort=True, err=True)


for _action in ("open", "close", "archive", "delete"):
    workspace_group.add_command(_lifecycle(_action))


def _membership(name: str, method: str, summary: str) -> click.Command:
    @click.command(name, help=summary)
    @click.argument("workspace_id")
    @click.argument("member_id")
    @click.option("--actor")
    @pass_cli
    def command(cli: CliContext, workspace_id: str, member_id: str, actor: str | None) -> None:
        async def run() -> Workspace:
            async with await cli.runtime() as rt:
                await require_workspace(rt, workspace_id)
                change = getattr(rt.workspaces, method)
                result: Workspace = await change(workspace_id, member_id, actor=actor)
                return result

        item = cli.run(run)
        if cli.as_json:
            cli.emit_json(item)
        else:
            members = ", ".join(item.members) or "none"
            cli.console.print(f"members of {item.workspace_id}: {members}")

    return command


workspace_group.add_command(_membership("add-member", "add_member", "Add a member (idempotent)."))
workspace_group.add_command(
    _membership("remove-member", "remove_member", "Remove a member (idempotent).")
)


@workspace_group.command("update")
@click.argument("workspace_id")
@click.option("--name", help="A new name.")
@click.option("--description", help="A new description ('' clears it).")
@click.option("--project", help="A new project id ('' clears it).")
@click.option(
    "--metadata", type=JSON_PAYLOAD, help="Replaces the metadata: JSON object, @FILE or -."
)
@click.option("--actor")
@pass_cli
def update_command(
    cli: CliContext,
    workspace_id: str,
    name: str | None,
    description: str | None,
    project: str | None,
    metadata: Any,
    actor: str | None,
) -> None:
    """Change a workspace's name, description, project or metadata."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if description is not None:
        changes["description"] = description or None
    if project is not None:
        changes["project_id"] = project or None
    if metadata is not None:
        changes["metadata"] = metadata
    if not changes:
        raise click.UsageError("give at least one of --name, --description, --project, --metadata")

    async def run() -> Workspace:
        async with await cli.runtime() as rt:
            await require_workspace(rt, workspace_id)
            return await rt.workspaces.update(workspace_id, actor=actor, **changes)

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(f"workspace {item.workspace_id} updated")
