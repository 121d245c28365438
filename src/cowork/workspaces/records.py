"""Workspace records and the lifecycle transition table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cowork.errors import InvalidTransition
from cowork.storage.port import Row
from cowork.storage.records import from_row

__all__ = ["TRANSITIONS", "Workspace", "WorkspaceStatus", "next_status"]


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    ARCHIVED = "archived"
    DELETED = "deleted"


# action -> the statuses it may start from, and where it leads
TRANSITIONS: dict[str, tuple[frozenset[WorkspaceStatus], WorkspaceStatus]] = {
    "close": (frozenset({WorkspaceStatus.ACTIVE}), WorkspaceStatus.CLOSED),
    "open": (frozenset({WorkspaceStatus.CLOSED, WorkspaceStatus.ARCHIVED}), WorkspaceStatus.ACTIVE),
    "archive": (
        frozenset({WorkspaceStatus.ACTIVE, WorkspaceStatus.CLOSED}),
        WorkspaceStatus.ARCHIVED,
    ),
    "delete": (frozenset(WorkspaceStatus), WorkspaceStatus.DELETED),
}


def next_status(current: WorkspaceStatus, action: str) -> WorkspaceStatus:
    allowed, target = TRANSITIONS[action]
    if current not in allowed or (action == "delete" and current is WorkspaceStatus.DELETED):
        sources = ", ".join(sorted(s.value for s in allowed if s is not WorkspaceStatus.DELETED))
        raise InvalidTransition(
            f"cannot {action} a workspace that is {current.value} (allowed from: {sources})",
            current=current.value,
            action=action,
        )
    return target


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    workspace_id: str
    tenant_id: str
    owner_id: str
    project_id: str | None
    name: str
    description: str | None
    status: WorkspaceStatus
    members: tuple[str, ...]
    metadata: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Workspace:
        return from_row(
            cls, row, status=WorkspaceStatus(row["status"]), members=tuple(row["members"])
        )
