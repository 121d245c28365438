"""Snapshot records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cowork.storage.port import Row
from cowork.storage.records import from_row

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
        return from_row(cls, row, actor=row["created_by"], content=row.get("content") or {})

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.content.get("artifacts", [])
        return items
