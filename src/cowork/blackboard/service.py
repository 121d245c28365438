"""``rt.blackboard``: versioned artifacts (and, through the feedback mixin, feedback threads).

Every write is one transaction: the workspace row is share-locked (it must stay ``active``), the
artifact row is locked, the optimistic ``expected_version`` is checked under that lock, the
current row and a new history row are written, and the catalogue events are appended.
"""

from __future__ import annotations

import builtins
from typing import Any

from cowork.blackboard.diff import json_diff
from cowork.blackboard.feedback import FeedbackOps
from cowork.blackboard.records import ArtifactDiff, ArtifactVersion, BlackboardEntry, Operation
from cowork.blackboard.store import BlackboardStore
from cowork.blackboard.validation import check_expected_version, check_key, check_label
from cowork.errors import (
    NotFound,
    StorageConflict,
    ValidationError,
    VersionConflict,
    WorkspaceNotActive,
)
from cowork.events.envelope import NewEvent
from cowork.ids import new_id
from cowork.jsondoc import validate_document
from cowork.kernel.service import utcnow
from cowork.kernel.unit import UnitOfWork
from cowork.tenancy import validate_id
from cowork.workspaces.records import WorkspaceStatus
from cowork.workspaces.service import WorkspacesService

__all__ = ["BlackboardService"]

_RETRIES = 3


class BlackboardService(FeedbackOps):
    # -- writes -------------------------------------------------------------------------------
    async def put(
        self,
        workspace_id: str,
        artifact_key: str,
        payload: Any,
        *,
        actor: str,
        artifact_type: str = "document",
        expected_version: int | None = None,
    ) -> BlackboardEntry:
        """Write the next version of an artifact.

        ``expected_version``: None writes unconditionally; 0 only creates (or re-creates a
        deleted artifact); N > 0 writes only if the current version is N. A lost race raises
        VersionConflict carrying the current version (None when the artifact is missing).
        """
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        check_label(actor, "actor")
        check_label(artifact_type, "artifact_type")
        expected = check_expected_version(expected_version)
        validate_document(payload, what="payload")
        return await self._retrying(
            lambda ctx: self._write(
                ctx,
                workspace_id,
                artifact_key,
                payload=payload,
                actor=actor,
                artifact_type=artifact_type,
                expected=expected,
            ),
            workspace_id,
            artifact_key,
            expected,
        )

    async def rollback(
        self,
        workspace_id: str,
        artifact_key: str,
        to_version: int,
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> BlackboardEntry:
        """Write a new version whose content is that of ``to_version`` (history is kept)."""
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        check_label(actor, "actor")
        expected = check_expected_version(expected_version)
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
            raise ValidationError(f"to_version must be a positive integer, got {to_version!r}")

        async def work(ctx: UnitOfWork) -> BlackboardEntry:
            old = await self._entries(ctx).version(workspace_id, artifact_key, to_version)
            if old is None:
                raise NotFound(f"artifact {artifact_key!r} has no version {to_version}")
            if old.deleted:
                raise ValidationError(f"version {to_version} of {artifact_key!r} is a deletion")
            return await self._write(
                ctx,
                workspace_id,
                artifact_key,
                payload=old.payload,
                actor=actor,
                artifact_type=old.artifact_type,
                expected=expected,
                operation="rollback",
                based_on=to_version,
            )

        return await self._retrying(work, workspace_id, artifact_key, expected)

    async def delete(
        self,
        workspace_id: str,
        artifact_key: str,
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> BlackboardEntry:
        """Soft delete: writes a tombstone version; ``put`` with expected_version 0 or None
        re-creates the artifact later."""
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        check_label(actor, "actor")
        expected = check_expected_version(expected_version)
        return await self._retrying(
            lambda ctx: self._write(
                ctx,
                workspace_id,
                artifact_key,
                payload=None,
                actor=actor,
                artifact_type=None,
                expected=expected,
                operation="delete",
            ),
            workspace_id,
            artifact_key,
            expected,
        )

    async def _retrying(
        self,
        work: Any,
        workspace_id: str,
        artifact_key: str,
        expected: int | None,
    ) -> BlackboardEntry:
        # Two first writes of one key race on the primary key, not on a row lock. With an
        # expected version that is a VersionConflict; an unconditional write just goes again.
        # Inside a caller's transaction the conflict propagates (that transaction is spoiled).
        attempts = 1 if self._bound is not None else _RETRIES
        for attempt in range(attempts):
            try:
                async with self._transaction() as ctx:
                    result: BlackboardEntry = await work(ctx)
                    return result
            except StorageConflict:
                if expected is not None or attempt == attempts - 1:
                    current = await self._current_version(workspace_id, artifact_key)
                    raise VersionConflict(
                        f"artifact {artifact_key!r} was written concurrently (now version "
                        f"{current}); expected {expected}",
                        current_version=current,
                        expected_version=expected,
                    ) from None
        raise AssertionError("unreachable")

    async def _current_version(self, workspace_id: str, artifact_key: str) -> int | None:
        if self._bound is not None:
            return None
        async with self._transaction() as ctx:
            entry = await self._entries(ctx).entry(workspace_id, artifact_key)
        return None if entry is None or entry.deleted else int(entry.version)

    def _entries(self, ctx: UnitOfWork) -> BlackboardStore:
        return BlackboardStore(ctx.tx, self._scope)

    async def _write(
        self,
        ctx: UnitOfWork,
        workspace_id: str,
        artifact_key: str,
        *,
        payload: Any,
        actor: str,
        artifact_type: str | None,
        expected: int | None,
        operation: Operation | None = None,
        based_on: int | None = None,
    ) -> BlackboardEntry:
        workspaces = WorkspacesService(self._core, self._scope, bound=ctx)
        workspace, _ = await workspaces.locked(ctx, workspace_id, share=True)
        if workspace.status is not WorkspaceStatus.ACTIVE:
            raise WorkspaceNotActive(
                f"workspace {workspace_id!r} is {workspace.status.value}; only an active "
                "workspace accepts artifact writes (open it first)",
                current=workspace.status.value,
                action="write",
            )
        store = self._entries(ctx)
        row = await store.entry_for_update(workspace_id, artifact_key)
        current = int(row.version) if row is not None and not row.deleted else None
        self._check_expected(artifact_key, expected, current, operation)
        if row is None:
            version, artifact_id = 1, new_id()
            op: Operation = operation or "create"
        else:
            version, artifact_id = int(row.version) + 1, row.artifact_id
            op = operation or ("recreate" if row.deleted else "update")
        if artifact_type is None:  # a deletion keeps the type
            artifact_type = None if row is None else row.artifact_type
        await store.write(
            workspace_id=workspace_id,
            artifact_key=artifact_key,
            artifact_id=artifact_id,
            artifact_type=artifact_type or "document",
            actor=actor,
            payload=payload,
            version=version,
            deleted=op == "delete",
            now=utcnow(),
            previous_version=None if row is None else row.version,
            operation=op,
            based_on=based_on or current,
        )
        entry = await store.entry(workspace_id, artifact_key)
        assert entry is not None
        await self._emit(ctx, self._events(entry, op, previous=current, based_on=based_on))
        return entry

    @staticmethod
    def _check_expected(
        key: str, expected: int | None, current: int | None, operation: Operation | None
    ) -> None:
        if operation == "delete" and current is None:
            raise NotFound(f"artifact {key!r} does not exist (or is already deleted)")
        if expected is None or expected == current or (expected == 0 and current is None):
            return
        if expected == 0:
            message = f"artifact {key!r} already exists at version {current}; expected to create it"
        elif current is None:
            message = f"artifact {key!r} does not exist; expected version {expected}"
        else:
            message = f"artifact {key!r} is at version {current}; expected {expected}"
        raise VersionConflict(message, current_version=current, expected_version=expected)

    def _events(
        self, entry: BlackboardEntry, op: Operation, *, previous: int | None, based_on: int | None
    ) -> builtins.list[NewEvent]:
        body = {
            "workspaceId": entry.workspace_id,
            "artifactKey": entry.artifact_key,
            "artifactId": entry.artifact_id,
            "artifactType": entry.artifact_type,
            "version": entry.version,
            "previousVersion": previous,
            "actorId": entry.actor,
            "operation": op,
        }

        def event(name: str, **extra: Any) -> NewEvent:
            return NewEvent(
                event_type=name,
                aggregate_type="artifact",
                aggregate_id=entry.artifact_id,
                payload={**body, **extra},
            )

        if op == "delete":
            return [event("blackboard:entry:deleted")]
        # A restore that brings an artifact back from a tombstone (or from nothing) creates it.
        first = op in ("create", "recreate") or (op == "restore" and previous is None)
        events = [
            event("blackboard:entry:created" if first else "blackboard:entry:updated"),
            event("workspace:artifact:updated"),
        ]
        if op == "rollback":
            events.append(event("workspace:artifact:rollback", rolledBackTo=based_on))
        return events

    # -- reads --------------------------------------------------------------------------------
    async def get(
        self, workspace_id: str, artifact_key: str, *, include_deleted: bool = False
    ) -> BlackboardEntry | None:
        """The current version, or None if missing (or deleted, unless ``include_deleted``)."""
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        async with self._transaction(read_only=True) as ctx:
            entry = await self._entries(ctx).entry(workspace_id, artifact_key)
        if entry is None or (entry.deleted and not include_deleted):
            return None
        return entry

    async def list(
        self, workspace_id: str, *, include_deleted: bool = False
    ) -> builtins.list[BlackboardEntry]:
        validate_id(workspace_id, "workspace_id")
        async with self._transaction(read_only=True) as ctx:
            return await self._entries(ctx).entries(workspace_id, include_deleted=include_deleted)

    async def history(self, workspace_id: str, artifact_key: str) -> builtins.list[ArtifactVersion]:
        """Every version, oldest first, tombstones included."""
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        async with self._transaction(read_only=True) as ctx:
            return await self._entries(ctx).versions(workspace_id, artifact_key)

    async def get_version(
        self, workspace_id: str, artifact_key: str, version: int
    ) -> ArtifactVersion | None:
        validate_id(workspace_id, "workspace_id")
        check_key(artifact_key)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValidationError(f"version must be a positive integer, got {version!r}")
        async with self._transaction(read_only=True) as ctx:
            return await self._entries(ctx).version(workspace_id, artifact_key, version)

    async def diff(
        self, workspace_id: str, artifact_key: str, from_version: int, to_version: int
    ) -> ArtifactDiff:
        """What changed in the payload between two versions (JSON-pointer paths)."""
        old = await self.get_version(workspace_id, artifact_key, from_version)
        new = await self.get_version(workspace_id, artifact_key, to_version)
        if old is None:
            raise NotFound(f"artifact {artifact_key!r} has no version {from_version}")
        if new is None:
            raise NotFound(f"artifact {artifact_key!r} has no version {to_version}")
        return ArtifactDiff(
            workspace_id=workspace_id,
            artifact_key=artifact_key,
            from_version=from_version,
            to_version=to_version,
            changes=tuple(json_diff(old.payload, new.payload)),
        )
