"""``rt.snapshots``: capture a workspace and restore it later.

Restore writes new versions (operation ``restore``) for every artifact whose current content
differs from the snapshot, tombstones artifacts created after it, and puts the members back; it
never rewrites history, so every version in between stays in each artifact's history.
"""

from __future__ import annotations

import builtins
from typing import Any

from cowork.blackboard.records import FeedbackStatus
from cowork.blackboard.service import BlackboardService
from cowork.blackboard.validation import check_label
from cowork.errors import NotFound, WorkspaceNotActive
from cowork.events.envelope import NewEvent
from cowork.ids import new_id
from cowork.kernel.service import TenantService, utcnow
from cowork.kernel.unit import UnitOfWork
from cowork.snapshots.records import Snapshot
from cowork.storage.port import Json
from cowork.tenancy import validate_id
from cowork.workspaces.records import WorkspaceStatus
from cowork.workspaces.service import WorkspacesService

__all__ = ["SnapshotsService"]

_OPEN_FEEDBACK = (FeedbackStatus.PENDING.value, FeedbackStatus.IN_PROGRESS.value)


class SnapshotsService(TenantService):
    async def create(self, workspace_id: str, *, actor: str, label: str | None = None) -> Snapshot:
        """Capture state, members, every current artifact and the open feedback."""
        validate_id(workspace_id, "workspace_id")
        validate_id(actor, "actor")
        if label is not None:
            check_label(label, "label", 200)
        snapshot_id = new_id()
        async with self._transaction() as ctx:
            workspace, _ = await WorkspacesService(self._core, self._scope, bound=ctx).locked(
                ctx, workspace_id, share=True
            )
            entries = await ctx.tx.fetch_all(
                "entry_list", self._params(workspace_id=workspace_id, include_deleted=False)
            )
            feedback = await ctx.tx.fetch_all(
                "feedback_list",
                self._params(workspace_id=workspace_id, artifact_key=None, status=None),
            )
            content = {
                "workspace": {
                    "workspaceId": workspace.workspace_id,
                    "name": workspace.name,
                    "description": workspace.description,
                    "projectId": workspace.project_id,
                    "status": workspace.status.value,
                    "metadata": workspace.metadata,
                },
                "members": list(workspace.members),
                "artifacts": [
                    {
                        "artifactKey": e["artifact_key"],
                        "artifactId": e["artifact_id"],
                        "artifactType": e["artifact_type"],
                        "actor": e["source"],
                        "version": e["version"],
                        "payload": e["payload"],
                    }
                    for e in entries
                ],
                "feedback": [
                    {
                        "feedbackId": f["feedback_id"],
                        "artifactKey": f["artifact_key"],
                        "severity": f["severity"],
                        "status": f["status"],
                        "body": f["body"],
                    }
                    for f in feedback
                    if f["status"] in _OPEN_FEEDBACK
                ],
            }
            now = utcnow()
            await ctx.tx.execute(
                "snapshot_insert",
                self._params(
                    snapshot_id=snapshot_id,
                    workspace_id=workspace_id,
                    label=label,
                    created_by=actor,
                    now=now,
                    content=Json(content),
                ),
            )
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type="snapshot:created",
                        aggregate_type="snapshot",
                        aggregate_id=snapshot_id,
                        payload={
                            "workspaceId": workspace_id,
                            "snapshotId": snapshot_id,
                            "label": label,
                            "actorId": actor,
                            "artifactCount": len(content["artifacts"]),
                        },
                    )
                ],
            )
            row = await ctx.tx.fetch_one("snapshot_get", self._params(snapshot_id=snapshot_id))
        assert row is not None
        return Snapshot.from_row(row)

    async def get(self, workspace_id: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot with its content, or None if the workspace has no ``snapshot_id``."""
        validate_id(workspace_id, "workspace_id")
        validate_id(snapshot_id, "snapshot_id")
        async with self._transaction(read_only=True) as ctx:
            row = await ctx.tx.fetch_one("snapshot_get", self._params(snapshot_id=snapshot_id))
        if row is None or row["workspace_id"] != workspace_id:
            return None
        return Snapshot.from_row(row)

    async def list(self, workspace_id: str) -> builtins.list[Snapshot]:
        validate_id(workspace_id, "workspace_id")
        async with self._transaction(read_only=True) as ctx:
            rows = await ctx.tx.fetch_all("snapshot_list", self._params(workspace_id=workspace_id))
        return [Snapshot.from_row(r) for r in rows]

    async def restore(self, workspace_id: str, snapshot_id: str, *, actor: str) -> Snapshot:
        """Bring the workspace back to the snapshot's content as new versions.

        Every change is evented as if made by hand: ``workspace:member:added`` / ``removed``
        for each member put back or taken out, ``blackboard:entry:created`` for an artifact
        brought back from a tombstone, ``…:updated`` / ``…:deleted`` for the others, then
        ``snapshot:restored``."""
        validate_id(workspace_id, "workspace_id")
        validate_id(actor, "actor")
        async with self._transaction() as ctx:
            snapshot = await self._require(ctx, workspace_id, snapshot_id)
            workspaces = WorkspacesService(self._core, self._scope, bound=ctx)
            workspace, row_version = await workspaces.locked(ctx, snapshot.workspace_id)
            if workspace.status is not WorkspaceStatus.ACTIVE:
                raise WorkspaceNotActive(
                    f"workspace {workspace.workspace_id!r} is {workspace.status.value}; open it "
                    "before restoring a snapshot",
                    current=workspace.status.value,
                    action="restore",
                )
            members = tuple(snapshot.content.get("members", []))
            if members != workspace.members:
                await workspaces._write(ctx, workspace, row_version, members=members)
                await self._emit(
                    ctx, _member_events(workspace_id, workspace.members, members, actor)
                )
            restored, removed = await self._restore_artifacts(ctx, snapshot, actor)
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type="snapshot:restored",
                        aggregate_type="snapshot",
                        aggregate_id=snapshot_id,
                        payload={
                            "workspaceId": snapshot.workspace_id,
                            "snapshotId": snapshot_id,
                            "actorId": actor,
                            "restoredArtifacts": restored,
                            "removedArtifacts": removed,
                        },
                    )
                ],
            )
        return snapshot

    async def _restore_artifacts(
        self, ctx: UnitOfWork, snapshot: Snapshot, actor: str
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        blackboard = BlackboardService(self._core, self._scope, bound=ctx)
        wanted: dict[str, dict[str, Any]] = {a["artifactKey"]: a for a in snapshot.artifacts}
        current = {
            e["artifact_key"]: e
            for e in await ctx.tx.fetch_all(
                "entry_list",
                self._params(workspace_id=snapshot.workspace_id, include_deleted=True),
            )
        }
        restored: list[str] = []
        removed: list[str] = []
        for key, item in sorted(wanted.items()):
            now = current.get(key)
            same = (
                now is not None
                and not now["deleted"]
                and now["payload"] == item["payload"]
                and now["artifact_type"] == item["artifactType"]
            )
            if same:
                continue
            await blackboard._write(
                ctx,
                snapshot.workspace_id,
                key,
                payload=item["payload"],
                actor=actor,
                artifact_type=item["artifactType"],
                expected=None,
                operation="restore",
                based_on=item["version"],
            )
            restored.append(key)
        for key, row in sorted(current.items()):
            if key not in wanted and not row["deleted"]:
                await blackboard._write(
                    ctx,
                    snapshot.workspace_id,
                    key,
                    payload=None,
                    actor=actor,
                    artifact_type=None,
                    expected=None,
                    operation="delete",
                )
                removed.append(key)
        return restored, removed

    async def _require(self, ctx: UnitOfWork, workspace_id: str, snapshot_id: str) -> Snapshot:
        validate_id(snapshot_id, "snapshot_id")
        row = await ctx.tx.fetch_one("snapshot_get", self._params(snapshot_id=snapshot_id))
        if row is None or row["workspace_id"] != workspace_id:
            raise NotFound(
                f"no snapshot {snapshot_id!r} in workspace {workspace_id!r} "
                f"(tenant {self.tenant_id!r})"
            )
        return Snapshot.from_row(row)


def _member_events(
    workspace_id: str, before: tuple[str, ...], after: tuple[str, ...], actor: str
) -> builtins.list[NewEvent]:
    """The member changes a restore makes, as the events adding or removing them by hand
    would emit."""
    changes = [("workspace:member:removed", m) for m in before if m not in after]
    changes += [("workspace:member:added", m) for m in after if m not in before]
    return [
        NewEvent(
            event_type=name,
            aggregate_type="workspace",
            aggregate_id=workspace_id,
            payload={"workspaceId": workspace_id, "memberId": member, "actorId": actor},
        )
        for name, member in changes
    ]
