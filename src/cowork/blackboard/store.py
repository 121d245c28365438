"""Blackboard persistence inside a transaction: artifacts' current versions and their history.

The one place that names the entry and version queries; the services see
:class:`BlackboardEntry` and :class:`ArtifactVersion` records. Feedback threads are
:mod:`cowork.blackboard.feedback_store`.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from cowork.blackboard.records import ArtifactVersion, BlackboardEntry, Operation
from cowork.kernel.store import TenantStore
from cowork.storage.port import Json

__all__ = ["BlackboardStore"]


class BlackboardStore(TenantStore):
    # -- current versions ---------------------------------------------------------------------
    async def entry(self, workspace_id: str, artifact_key: str) -> BlackboardEntry | None:
        """The current version of an artifact (a tombstone if it is deleted)."""
        row = await self.tx.fetch_one(
            "entry_get", self._params(workspace_id=workspace_id, artifact_key=artifact_key)
        )
        return None if row is None else BlackboardEntry.from_row(row)

    async def entry_for_update(
        self, workspace_id: str, artifact_key: str
    ) -> BlackboardEntry | None:
        """:meth:`entry`, row-locked for a write."""
        row = await self.tx.fetch_one(
            "entry_get_for_update",
            self._params(workspace_id=workspace_id, artifact_key=artifact_key),
        )
        return None if row is None else BlackboardEntry.from_row(row)

    async def entries(
        self, workspace_id: str, *, include_deleted: bool
    ) -> builtins.list[BlackboardEntry]:
        """A workspace's artifacts by key (tombstones only with ``include_deleted``)."""
        rows = await self.tx.fetch_all(
            "entry_list", self._params(workspace_id=workspace_id, include_deleted=include_deleted)
        )
        return [BlackboardEntry.from_row(r) for r in rows]

    async def write(
        self,
        *,
        workspace_id: str,
        artifact_key: str,
        artifact_id: str,
        artifact_type: str,
        actor: str,
        payload: Any,
        version: int,
        deleted: bool,
        now: datetime,
        previous_version: int | None,
        operation: Operation,
        based_on: int | None,
    ) -> None:
        """Make ``version`` the artifact's current one and keep it in the history: a first
        version is inserted (``previous_version`` None); a later one replaces the row that
        is still at ``previous_version``."""
        values = self._params(
            workspace_id=workspace_id,
            artifact_key=artifact_key,
            artifact_id=artifact_id,
            artifact_type=artifact_type,
            source=actor,
            payload=Json(payload),
            version=version,
            deleted=deleted,
            now=now,
        )
        if previous_version is None:
            await self.tx.execute("entry_insert", values)
        else:
            await self.tx.execute("entry_update", {**values, "previous_version": previous_version})
        await self.tx.execute(
            "version_insert", {**values, "operation": operation, "based_on": based_on}
        )

    # -- history ------------------------------------------------------------------------------
    async def version(
        self, workspace_id: str, artifact_key: str, version: int
    ) -> ArtifactVersion | None:
        row = await self.tx.fetch_one(
            "version_get",
            self._params(workspace_id=workspace_id, artifact_key=artifact_key, version=version),
        )
        return None if row is None else ArtifactVersion.from_row(row)

    async def versions(
        self, workspace_id: str, artifact_key: str
    ) -> builtins.list[ArtifactVersion]:
        """Every version, oldest first, tombstones included."""
        rows = await self.tx.fetch_all(
            "version_list", self._params(workspace_id=workspace_id, artifact_key=artifact_key)
        )
        return [ArtifactVersion.from_row(r) for r in rows]
