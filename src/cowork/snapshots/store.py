"""Snapshot persistence inside a transaction.

The one place that names the snapshot queries; the service sees :class:`Snapshot` records.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from cowork.kernel.store import TenantStore
from cowork.snapshots.records import Snapshot
from cowork.storage.port import Json

__all__ = ["SnapshotStore"]


class SnapshotStore(TenantStore):
    async def insert(
        self,
        *,
        snapshot_id: str,
        workspace_id: str,
        label: str | None,
        created_by: str,
        now: datetime,
        content: dict[str, Any],
    ) -> None:
        await self.tx.execute(
            "snapshot_insert",
            self._params(
                snapshot_id=snapshot_id,
                workspace_id=workspace_id,
                label=label,
                created_by=created_by,
                now=now,
                content=Json(content),
            ),
        )

    async def get(self, snapshot_id: str) -> Snapshot | None:
        """The snapshot with its content."""
        row = await self.tx.fetch_one("snapshot_get", self._params(snapshot_id=snapshot_id))
        return None if row is None else Snapshot.from_row(row)

    async def list(self, workspace_id: str) -> builtins.list[Snapshot]:
        """A workspace's snapshots, oldest first, without their content."""
        rows = await self.tx.fetch_all("snapshot_list", self._params(workspace_id=workspace_id))
        return [Snapshot.from_row(r) for r in rows]
