"""Snapshot persistence inside a transaction.

The one place that names the snapshot queries; the service sees :class:`Snapshot` records.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from cowork.snapshots.records import Snapshot
from cowork.storage.port import Json, Transaction
from cowork.tenancy import TenantScope

__all__ = ["SnapshotStore"]


class SnapshotStore:
    def __init__(self, tx: Transaction, scope: TenantScope) -> None:
        self.tx = tx
        self.scope = scope

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"tenant_id": self.scope.tenant_id, "owner_id": self.scope.owner_id, **values}

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
