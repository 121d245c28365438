"""``rt.snapshots``: capture a workspace and restore it later.

Restore writes new versions (operation ``restore``) for every artifact whose current content
differs from the snapshot, tombstones artifacts created after it, and puts the members back; it
never rewrites history, so every version in between stays in each artifact's history.
"""

from __future__ import annotations

import builtins
from typing import Any

from cowork.blackboard.feedback_store import FeedbackStore
from cowork.blackboard.records import FeedbackStatus
from cowork.blackboard.service import BlackboardService
from cowork.blackboard.store import BlackboardStore
from cowork.blackboard.validation import check_label
from cowork.errors import NotFound, WorkspaceNotActive
from cowork.events.envelope import NewEvent
from cowork.ids import new_id
from cowork.kernel.service import TenantService, utcnow
from cowork.kernel.unit import UnitOfWork
from cowork.snapshots.records import Snapshot
from cowork.snapshots.store import SnapshotStore
from cowork.tenancy import validate_id
from cowork.workspaces.records import WorkspaceStatus
from cowork.workspaces.service import WorkspacesService

__all__ = ["SnapshotsService"]

_OPEN_FEEDBACK = (FeedbackStatus.PENDING, FeedbackStatus.IN_PROGRESS)


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
            entries = await BlackboardStore(ctx.tx, self._scope).entries(
                workspace_id, include_deleted=False
            )
            feedback = await FeedbackStore(ctx.tx, self._scope).list(
                workspace_id, artifact_key=None, status=None
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
                        "artifactKey": e.artifact_key,
                        "artifactId": e.artifact_id,
                        "artifactType": e.artifact_type,
                        "actor": e.actor,
                        "version": e.version,
                        "payload": e.payload,
                    }
                    for e in entries
                ],
                "feedback": [
                    {
                        "feedbackId": f.feedback_id,
                        "artifactKey": f.artifact_key,
                        "severity": f.severity.value,
                        "status": f.status.value,
                        "body": f.body,
                    }
                    for f in feedback
                    if f.status in _OPEN_FEEDBACK
                ],
            }
            store = SnapshotStore(ctx.tx, self._scope)
            await store.insert(
                snapshot_id=snapshot_id,
                workspace_id=workspace_id,
                label=label,
                created_by=actor,
                now=utcnow(),
                content=content,
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
            snapshot = await store.get(snapshot_id)
        assert snapshot is not None
        return snapshot

    async def get(self, workspace_id: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot with its content, or None if the workspace has no ``snapshot_id``."""
        validate_id(workspace_id, "workspace_id")
        validate_id(snapshot_id, "snapshot_id")
        async with self._transaction(read_only=True) as ctx:
            snapshot = await SnapshotStore(ctx.tx, self._scope).get(snapshot_id)
        if snapshot is None or snapshot.workspace_id != workspace_id:
            return None
        return snapshot

    async def list(self, workspace_id: str) -> builtins.list[Snapshot]:
        validate_id(workspace_id, "workspace_id")
        async with self._transaction(read_only=True) as ctx:
            return await SnapshotStore(ctx.tx, self._scope).list(workspace_id)

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
            e.artifact_key: e
            for e in await BlackboardStore(ctx.tx, self._scope).entries(
                snapshot.workspace_id, include_deleted=True
            )
        }
        restored: list[str] = []
        removed: list[str] = []
        for key, item in sorted(wanted.items()):
            now = current.get(key)
            same = (
                now is not None
                and not now.deleted
                and now.payload == item["payload"]
                and now.artifact_type == item["artifactType"]
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
        for key, entry in sorted(current.items()):
            if key not in wanted and not entry.deleted:
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
        snapshot = await SnapshotStore(ctx.tx, self._scope).get(snapshot_id)
        if snapshot is None or snapshot.workspace_id != workspace_id:
            raise NotFound(
                f"no snapshot {snapshot_id!r} in workspace {workspace_id!r} "
                f"(tenant {self.tenant_id!r})"
            )
        return snapshot


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
