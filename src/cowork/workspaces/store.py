"""Workspace persistence inside a transaction: workspace rows and their members.

The one place that names the workspace queries; the service sees :class:`Workspace` records.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from cowork.kernel.store import TenantStore
from cowork.storage.port import Json
from cowork.workspaces.records import Workspace

__all__ = ["WorkspaceStore"]


class WorkspaceStore(TenantStore):
    async def insert(
        self,
        *,
        workspace_id: str,
        project_id: str | None,
        name: str,
        description: str | None,
        members: builtins.list[str],
        metadata: dict[str, Any],
        created_by: str,
        now: datetime,
    ) -> None:
        """A new ``active`` workspace (StorageConflict if the id is taken)."""
        await self.tx.execute(
            "workspace_insert",
            self._params(
                workspace_id=workspace_id,
                project_id=project_id,
                name=name,
                description=description,
                members=Json(members),
                metadata=Json(metadata),
                created_by=created_by,
                now=now,
            ),
        )

    async def get(self, workspace_id: str) -> Workspace | None:
        """The workspace, deleted or not."""
        row = await self.tx.fetch_one("workspace_get", self._params(workspace_id=workspace_id))
        return None if row is None else Workspace.from_row(row)

    async def locked(self, workspace_id: str, *, share: bool) -> tuple[Workspace, int] | None:
        """The workspace and its row version, row-locked (``share``: against changes only)."""
        row = await self.tx.fetch_one(
            "workspace_get_for_share" if share else "workspace_get_for_update",
            self._params(workspace_id=workspace_id),
        )
        return None if row is None else (Workspace.from_row(row), row["row_version"])

    async def list(
        self,
        *,
        project_id: str | None,
        status: str | None,
        include_deleted: bool,
        limit: int,
    ) -> builtins.list[Workspace]:
        rows = await self.tx.fetch_all(
            "workspace_list",
            self._params(
                project_id=project_id,
                status=status,
                include_deleted=include_deleted,
                limit=limit,
            ),
        )
        return [Workspace.from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Workspaces by status (deleted ones included)."""
        rows = await self.tx.fetch_all("workspace_counts", self._params())
        return {r["status"]: int(r["n"]) for r in rows}

    async def update(self, workspace: Workspace, *, row_version: int, now: datetime) -> int:
        """Write ``workspace``'s state over the row if it is still at ``row_version``
        (compare-and-set); the number of rows written (1, or 0 when it moved on)."""
        return await self.tx.execute(
            "workspace_update",
            self._params(
                workspace_id=workspace.workspace_id,
                status=workspace.status.value,
                members=Json(builtins.list(workspace.members)),
                metadata=Json(workspace.metadata),
                name=workspace.name,
                description=workspace.description,
                project_id=workspace.project_id,
                closed_at=workspace.closed_at,
                deleted_at=workspace.deleted_at,
                now=now,
                row_version=row_version,
            ),
        )
