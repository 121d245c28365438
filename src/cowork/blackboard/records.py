"""Blackboard and feedback records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from cowork.storage.port import Row
from cowork.storage.records import from_row

__all__ = [
    "ArtifactDiff",
    "ArtifactVersion",
    "BlackboardEntry",
    "DiffChange",
    "Feedback",
    "FeedbackComment",
    "FeedbackSeverity",
    "FeedbackStatus",
    "Operation",
]

# How a version came about (the ``operation`` of its history row).
Operation = Literal["create", "update", "rollback", "delete", "recreate", "restore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlackboardEntry:
    """The current version of an artifact."""

    workspace_id: str
    artifact_key: str
    artifact_id: str
    artifact_type: str
    actor: str
    version: int
    payload: Any
    deleted: bool
    tenant_id: str
    owner_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> BlackboardEntry:
        return from_row(cls, row, actor=row["source"], deleted=bool(row["deleted"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactVersion:
    """One version in an artifact's history (a tombstone has ``deleted=True``)."""

    workspace_id: str
    artifact_key: str
    version: int
    artifact_id: str
    artifact_type: str
    actor: str
    payload: Any
    operation: Operation
    deleted: bool
    based_on: int | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ArtifactVersion:
        return from_row(cls, row, actor=row["source"], deleted=bool(row["deleted"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffChange:
    """One difference: ``path`` is a JSON pointer (RFC 6901) into the payload."""

    op: Literal["add", "remove", "replace"]
    path: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactDiff:
    workspace_id: str
    artifact_key: str
    from_version: int
    to_version: int
    changes: tuple[DiffChange, ...]

    @property
    def identical(self) -> bool:
        return not self.changes


class FeedbackSeverity(StrEnum):
    NIT = "nit"
    MINOR = "minor"
    BLOCKING = "blocking"
    CRITICAL = "critical"


class FeedbackStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    ADDRESSED = "addressed"
    WONTFIX = "wontfix"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackComment:
    comment_id: str
    actor: str
    body: str
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "commentId": self.comment_id,
            "actorId": self.actor,
            "body": self.body,
            "createdAt": self.created_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedbackComment:
        return cls(
            comment_id=data["commentId"],
            actor=data["actorId"] if "actorId" in data else data["authorId"],
            body=data["body"],
            created_at=data["createdAt"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    """A feedback thread on an artifact (``artifact_key``) or on the workspace (None)."""

    feedback_id: str
    workspace_id: str
    artifact_key: str | None
    actor: str
    body: str
    severity: FeedbackSeverity
    status: FeedbackStatus
    tags: tuple[str, ...]
    comments: tuple[FeedbackComment, ...]
    metadata: dict[str, Any]
    tenant_id: str
    owner_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Feedback:
        return from_row(
            cls,
            row,
            actor=row["author_id"],
            severity=FeedbackSeverity(row["severity"]),
            status=FeedbackStatus(row["status"]),
            tags=tuple(row["tags"]),
            comments=tuple(FeedbackComment.from_json(c) for c in row["comments"]),
        )
