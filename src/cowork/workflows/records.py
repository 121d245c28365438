"""Workflow instance and history records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cowork.storage.port import Row
from cowork.storage.records import from_row

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
    # The action a running instance waits to run (None at any other step, or in any other
    # status): only workers that registered it claim the instance.
    action: str | None = None

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
            action=row.get("action"),
        )

    def awaiting_worker(self, now: datetime) -> float | None:
        """Seconds this instance's due step has waited for a worker offering its action (no
        worker holds it), or None when it is not waiting for one."""
        if self.status is not InstanceStatus.RUNNING or self.action is None:
            return None
        if self.wake_at is None or self.wake_at > now:
            return None  # not due yet (a retry's backoff, say)
        if self.lease_owner is not None and (
            self.lease_expires_at is None or self.lease_expires_at > now
        ):
            return None  # a worker runs it
        return (now - self.wake_at).total_seconds()

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
        return from_row(cls, row)
