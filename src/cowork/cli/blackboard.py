"""``cowork blackboard …``."""

from __future__ import annotations

import json
from typing import Any

import click

from cowork.blackboard.records import ArtifactDiff, ArtifactVersion, BlackboardEntry
from cowork.cli.context import CliContext, pass_cli
from cowork.cli.lookup import require_workspace
from cowork.cli.payload import JSON_PAYLOAD
from cowork.errors import NotFound, ValidationError


def _short(payload: Any, width: int = 60) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group("blackboard")
def blackboard_group() -> None:
    """Inspect and write blackboard artifacts."""


@blackboard_group.command("list")
@click.argument("workspace_id")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted artifacts.")
@pass_cli
def list_command(cli: CliContext, workspace_id: str, include_deleted: bool) -> None:
    """Current artifacts of a workspace."""

    async def run() -> list[BlackboardEntry]:
        async with await cli.runtime() as rt:
            await require_workspace(rt, workspace_id)
            return await rt.blackboard.list(workspace_id, include_deleted=include_deleted)

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        f"artifacts of {workspace_id}",
        ("key", "version", "type", "actor", "deleted", "payload"),
        (
            (e.artifact_key, e.version, e.artifact_type, e.actor, e.deleted, _short(e.payload))
            for e in items
        ),
    )


@blackboard_group.command("get")
@click.argument("workspace_id")
@click.argument("artifact_key")
@click.option("--version", type=int, help="A past version.")
@pass_cli
def get_command(cli: CliContext, workspace_id: str, artifact_key: str, version: int | None) -> None:
    """One artifact (current or a past version), with its payload."""

    async def run() -> BlackboardEntry | ArtifactVersion:
        async with await cli.runtime() as rt:
            found: BlackboardEntry | ArtifactVersion | None
            await require_workspace(rt, workspace_id)
            if version is None:
                found = await rt.blackboard.get(workspace_id, artifact_key)
            else:
                found = await rt.blackboard.get_version(workspace_id, artifact_key, version)
        if found is None:
            raise NotFound(f"no artifact {artifact_key!r} (version {version or 'current'})")
        return found

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(
            f"{item.artifact_key} v{item.version} ({item.artifact_type}, {item.actor})"
        )
        cli.console.print_json(json.dumps(item.payload))


@blackboard_group.command("history")
@click.argument("workspace_id")
@click.argument("artifact_key")
@pass_cli
def history_command(cli: CliContext, workspace_id: str, artifact_key: str) -> None:
    """Every version of an artifact."""

    async def run() -> list[ArtifactVersion]:
        async with await cli.runtime() as rt:
            await require_workspace(rt, workspace_id)
            versions = await rt.blackboard.history(workspace_id, artifact_key)
        if not versions:
            raise NotFound(f"no artifact {artifact_key!r} in workspace {workspace_id!r}")
        return versions

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        f"history of {artifact_key}",
        ("version", "operation", "actor", "at", "payload"),
        (
            (
                v.version,
                v.operation,
                v.actor,
                v.created_at.isoformat(timespec="seconds"),
                _short(v.payload),
            )
            for v in items
        ),
    )


@blackboard_group.command("put")
@click.argument("workspace_id")
@click.argument("artifact_key")
@click.argument("payload", type=JSON_PAYLOAD)
@click.option("--actor", required=True, help="Who writes (agent or person id).")
@click.option("--type", "artifact_type", default="document", show_default=True)
@click.option("--expected-version", type=int, help="0 = create only; N = only if at version N.")
@pass_cli
def put_command(
    cli: CliContext,
    workspace_id: str,
    artifact_key: str,
    payload: Any,
    actor: str,
    artifact_type: str,
    expected_version: int | None,
) -> None:
    """Write the next version; PAYLOAD is JSON text, @FILE, or - (standard input)."""

    async def run() -> BlackboardEntry:
        async with await cli.runtime() as rt:
            await require_workspace(rt, workspace_id)
            return await rt.blackboard.put(
                workspace_id,
                artifact_key,
                payload,
                actor=actor,
                artifact_type=artifact_type,
                expected_version=expected_version,
            )

    item = cli.run(run)
    if cli.as_json:
        cli.emit_json(item)
    else:
        cli.console.print(f"{item.artifact_key} is now version {item.version}")


@blackboard_group.command("diff")
@click.argument("workspace_id")
@click.argument("artifact_key")
@click.argument("from_version", type=int)
@click.argument("to_version", type=int)
@pass_cli
def diff_command(
    cli: CliContext, workspace_id: str, artifact_key: str, from_version: int, to_version: int
) -> None:
    """What changed between two versions."""

    async def run() -> ArtifactDiff:
        async with await cli.runtime() as rt:
            await require_workspace(rt, workspace_id)
            return await rt.blackboard.diff(workspace_id, artifact_key, from_version, to_version)

    try:
        item = cli.run(run)
    except ValidationError as exc:  # pragma: no cover - run() already maps CoworkError
        raise click.BadParameter(str(exc)) from None
    if cli.as_json:
        cli.emit_json(item)
        return
    cli.table(
        f"{artifact_key}: v{from_version} → v{to_version}",
        ("op", "path", "old", "new"),
        ((c.op, c.path, _short(c.old, 40), _short(c.new, 40)) for c in item.changes),
    )
