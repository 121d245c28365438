"""Workflow instance and history records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cowork.storage.port import Row

__all__ = ["HistoryEntry", "InstanceStatus", "WorkflowInstance"]


class InstanceStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (InstanceStatus.RUNNING, InstanceStatus.WAITING)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowInstance:
    instance_id: str
    workflow_id: str
    workflow_version: int
    status: InstanceStatus
    step_index: int
    correlation_key: str | None
    start_key: str
    state: dict[str, Any]
    attempts: int
    last_error: str | None
    wake_at: datetime | None
    tenant_id: str
    owner_id: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    row_version: int
    event_cursor: tuple[int, int]
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> WorkflowInstance:
        return cls(
            instance_id=row["instance_id"],
            workflow_id=row["workflow_id"],
            workflow_version=row["workflow_version"],
            status=InstanceStatus(row["status"]),
            step_index=row["step_index"],
            correlation_key=row["correlation_key"],
            start_key=row["start_key"],
            state=row["state"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            wake_at=row["wake_at"],
            tenant_id=row["tenant_id"],
            owner_id=row["owner_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            ended_at=row["ended_at"],
            row_version=row["row_version"],
            event_cursor=(row["event_tx_id"], row["event_position"]),
            lease_owner=row["lease_owner"],
            lease_expires_at=row["lease_expires_at"],
        )

    @property
    def data(self) -> dict[str, Any]:
        """What actions returned, merged."""
        value: dict[str, Any] = self.state.get("data", {})
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    seq: int
    kind: str
    step_index: int | None
    step_name: str | None
    from_status: str | None
    to_status: str
    event_id: str | None
    actor: str | None
    detail: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> HistoryEntry:
        return cls(
            seq=row["seq"],
            kind=row["kind"],
            step_index=row["step_index"],
            step_name=row["step_name"],
            from_status=row["from_status"],
            to_status=row["to_status"],
            event_id=row["event_id"],
            actor=row["actor"],
            detail=row["detail"],
            created_at=row["created_at"],
        )
