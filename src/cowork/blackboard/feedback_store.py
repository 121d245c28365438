"""Feedback persistence inside a transaction: threads on an artifact or a workspace.

The one place that names the feedback queries; the services see :class:`Feedback` records.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from cowork.blackboard.records import Feedback, FeedbackSeverity, FeedbackStatus
from cowork.kernel.store import TenantStore
from cowork.storage.port import Json

__all__ = ["FeedbackStore"]


class FeedbackStore(TenantStore):
    async def insert(
        self,
        *,
        feedback_id: str,
        workspace_id: str,
        artifact_key: str | None,
        author_id: str,
        body: str,
        severity: FeedbackSeverity,
        tags: builtins.list[str],
        metadata: dict[str, Any],
        now: datetime,
    ) -> None:
        """A new ``pending`` thread without comments."""
        await self.tx.execute(
            "feedback_insert",
            self._params(
                feedback_id=feedback_id,
                workspace_id=workspace_id,
                artifact_key=artifact_key,
                author_id=author_id,
                body=body,
                severity=severity.value,
                tags=Json(tags),
                metadata=Json(metadata),
                now=now,
            ),
        )

    async def get(self, feedback_id: str) -> Feedback | None:
        row = await self.tx.fetch_one("feedback_get", self._params(feedback_id=feedback_id))
        return None if row is None else Feedback.from_row(row)

    async def locked(self, feedback_id: str) -> tuple[Feedback, int] | None:
        """The thread and its row version, row-locked for a change."""
        row = await self.tx.fetch_one(
            "feedback_get_for_update", self._params(feedback_id=feedback_id)
        )
        return None if row is None else (Feedback.from_row(row), row["row_version"])

    async def list(
        self, workspace_id: str, *, artifact_key: str | None, status: str | None
    ) -> builtins.list[Feedback]:
        """A workspace's threads, oldest first (of one artifact, or in one status, if given)."""
        rows = await self.tx.fetch_all(
            "feedback_list",
            self._params(workspace_id=workspace_id, artifact_key=artifact_key, status=status),
        )
        return [Feedback.from_row(r) for r in rows]

    async def update(
        self,
        feedback_id: str,
        *,
        status: FeedbackStatus,
        severity: FeedbackSeverity,
        tags: builtins.list[str],
        comments: builtins.list[dict[str, Any]],
        now: datetime,
        row_version: int,
    ) -> int:
        """Write a thread's new state if it is still at ``row_version`` (compare-and-set); the
        number of rows written."""
        return await self.tx.execute(
            "feedback_update",
            self._params(
                feedback_id=feedback_id,
                status=status.value,
                severity=severity.value,
                tags=Json(tags),
                comments=Json(comments),
                now=now,
                row_version=row_version,
            ),
        )
