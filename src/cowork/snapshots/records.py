"""Snapshot records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cowork.storage.port import Row

__all__ = ["Snapshot"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A captured workspace: ``content`` holds ``workspace``, ``members``, ``artifacts`` (each
    with its version and payload) and the open ``feedback`` threads. ``content`` is empty in
    listings; ``get`` loads it."""

    snapshot_id: str
    workspace_id: str
    label: str | None
    actor: str
    created_at: datetime
    tenant_id: str
    owner_id: str
    content: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> Snapshot:
        return cls(
            snapshot_id=row["snapshot_id"],
            workspace_id=row["workspace_id"],
            label=row["label"],
            actor=row["created_by"],
            created_at=row["created_at"],
            tenant_id=row["tenant_id"],
            owner_id=row["owner_id"],
            content=row.get("content") or {},
        )

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.content.get("artifacts", [])
        return items
