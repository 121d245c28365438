"""``rt.workspaces``: create, read and move workspaces through their lifecycle.

Every change is a read under a row lock, a compare-and-set write and its catalogue events, in
one transaction: two concurrent closes cannot lose ``closed_at``, and no event is published for
a change that did not commit.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from cowork.arguments import mapping_arg, string_list_arg, text_arg
from cowork.errors import NotFound, StorageConflict, ValidationError
from cowork.events.envelope import NewEvent
from cowork.ids import new_id
from cowork.jsondoc import validate_document
from cowork.kernel.service import TenantService, utcnow
from cowork.kernel.unit import UnitOfWork
from cowork.tenancy import validate_id, validate_limit
from cowork.workspaces.records import Workspace, WorkspaceStatus, next_status
from cowork.workspaces.store import WorkspaceStore

__all__ = ["WorkspacesService"]

MAX_NAME = 200
MAX_REASON = 1_000
MAX_DESCRIPTION = 10_000
METADATA_BYTES = 64 * 1024

_STATUS_EVENTS = {
    WorkspaceStatus.ACTIVE: "workspace:opened",
    WorkspaceStatus.CLOSED: "workspace:closed",
    WorkspaceStatus.ARCHIVED: "workspace:archived",
    WorkspaceStatus.DELETED: "workspace:deleted",
}


def _text(value: object, what: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    return text_arg(value, what, limit)


def _members(values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for member in string_list_arg(values, "members"):
        validate_id(member, "member id")
        if member not in result:
            result.append(member)
    return result


def _status(value: WorkspaceStatus | str) -> WorkspaceStatus:
    try:
        return WorkspaceStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in WorkspaceStatus)
        raise ValidationError(f"status must be one of {allowed}, got {value!r}") from None


class _Unset:
    """The type of :data:`UNSET`: a field ``update`` leaves as it is."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
_CAMEL = {
    "name": "name",
    "description": "description",
    "project_id": "projectId",
    "metadata": "metadata",
}


class WorkspacesService(TenantService):
    async def create(
        self,
        *,
        name: str,
        actor: str,
        project_id: str | None = None,
        description: str | None = None,
        members: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        workspace_id: str | None = None,
    ) -> Workspace:
        """Create an ``active`` workspace and emit ``workspace:created``, then a
        ``workspace:member:added`` (by ``actor``) for each initial member.

        ``actor`` is who creates it (the record's ``created_by``). Without ``members`` the
        creator is the one member; ``members=[]`` creates
        it with none."""
        ws_id = new_id() if workspace_id is None else validate_id(workspace_id, "workspace_id")
        checked_name = text_arg(name, "name", MAX_NAME)
        validate_id(actor, "actor")
        if project_id is not None:
            validate_id(project_id, "project_id")
        checked_description = _text(description, "description", MAX_DESCRIPTION, optional=True)
        member_list = [actor] if members is None else _members(members)
        meta = validate_document(
            mapping_arg(metadata, "metadata"), what="metadata", max_bytes=METADATA_BYTES
        )
        now = utcnow()
        try:
            async with self._transaction() as ctx:
                store = self._store(ctx)
                await store.insert(
                    workspace_id=ws_id,
                    project_id=project_id,
                    name=checked_name,
                    description=checked_description,
                    members=member_list,
                    metadata=meta,
                    created_by=actor,
                    now=now,
                )
                created = await store.get(ws_id)
                assert created is not None
                await self._emit(
                    ctx,
                    [
                        NewEvent(
                            event_type="workspace:created",
                            aggregate_type="workspace",
                            aggregate_id=ws_id,
                            payload={
                                "workspaceId": ws_id,
                                "projectId": project_id,
                                "name": checked_name,
                                "actorId": actor,
                                "members": member_list,
                                "status": WorkspaceStatus.ACTIVE.value,
                            },
                        ),
                        *(
                            NewEvent(
                                event_type="workspace:member:added",
                                aggregate_type="workspace",
                                aggregate_id=ws_id,
                                payload={
                                    "workspaceId": ws_id,
                                    "memberId": member,
                                    "actorId": actor,
                                },
                            )
                            for member in member_list
                        ),
                    ],
                )
        except StorageConflict:
            raise ValidationError(f"workspace {ws_id!r} already exists") from None
        return created

    async def get(self, workspace_id: str, *, include_deleted: bool = False) -> Workspace | None:
        """The workspace, or None if missing (or deleted, unless ``include_deleted``)."""
        validate_id(workspace_id, "workspace_id")
        async with self._transaction(read_only=True) as ctx:
            workspace = await self._store(ctx).get(workspace_id)
        if workspace is None:
            return None
        if workspace.status is WorkspaceStatus.DELETED and not include_deleted:
            return None
        return workspace

    async def list(
        self,
        *,
        project_id: str | None = None,
        status: WorkspaceStatus | str | None = None,
        include_deleted: bool = False,
        limit: int = 1000,
    ) -> builtins.list[Workspace]:
        if project_id is not None:
            validate_id(project_id, "project_id")
        validate_limit(limit)
        status_value = None if status is None else _status(status).value
        async with self._transaction(read_only=True) as ctx:
            return await self._store(ctx).list(
                project_id=project_id,
                status=status_value,
                include_deleted=include_deleted or status_value == "deleted",
                limit=limit,
            )

    async def counts(self) -> dict[str, int]:
        """Workspaces by status (deleted ones included)."""
        async with self._transaction(read_only=True) as ctx:
            return await self._store(ctx).counts()

    # -- lifecycle ----------------------------------------------------------------------------
    # ``reason`` (optional, like ``workflows.cancel``) travels in the events.
    async def open(
        self, workspace_id: str, *, actor: str | None = None, reason: str | None = None
    ) -> Workspace:
        return await self._transition(workspace_id, "open", actor, reason)

    async def close(
        self, workspace_id: str, *, actor: str | None = None, reason: str | None = None
    ) -> Workspace:
        return await self._transition(workspace_id, "close", actor, reason)

    async def archive(
        self, workspace_id: str, *, actor: str | None = None, reason: str | None = None
    ) -> Workspace:
        return await self._transition(workspace_id, "archive", actor, reason)

    async def delete(
        self, workspace_id: str, *, actor: str | None = None, reason: str | None = None
    ) -> Workspace:
        """Soft delete: the workspace is hidden from reads unless asked for."""
        return await self._transition(workspace_id, "delete", actor, reason)

    async def _transition(
        self, workspace_id: str, action: str, actor: str | None, reason: str | None
    ) -> Workspace:
        if actor is not None:
            validate_id(actor, "actor")
        checked_reason = _text(reason, "reason", MAX_REASON, optional=True)
        async with self._transaction() as ctx:
            current, row_version = await self.locked(ctx, workspace_id, include_deleted=True)
            target = next_status(current.status, action)
            now = utcnow()
            closed_at = current.closed_at
            if target is WorkspaceStatus.CLOSED:
                closed_at = now
            elif action == "open":
                closed_at = None
            deleted_at = now if target is WorkspaceStatus.DELETED else current.deleted_at
            if action == "open":
                deleted_at = None
            updated = await self._write(
                ctx, current, row_version, status=target, closed_at=closed_at, deleted_at=deleted_at
            )
            common = {"workspaceId": workspace_id, "actorId": actor, "reason": checked_reason}
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type="workspace:status:changed",
                        aggregate_type="workspace",
                        aggregate_id=workspace_id,
                        payload={**common, "from": current.status.value, "to": target.value},
                    ),
                    NewEvent(
                        event_type=_STATUS_EVENTS[target],
                        aggregate_type="workspace",
                        aggregate_id=workspace_id,
                        payload={**common, "status": target.value},
                    ),
                ],
            )
        return updated

    # -- details ------------------------------------------------------------------------------
    async def update(
        self,
        workspace_id: str,
        *,
        actor: str | None = None,
        name: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        project_id: str | _Unset | None = UNSET,
        metadata: Mapping[str, Any] | _Unset = UNSET,
    ) -> Workspace:
        """Change a workspace's name, description, project or metadata (``metadata`` replaces
        the whole mapping; ``None`` clears a description or project). Emits
        ``workspace:updated`` with each changed field's value before and after; a call that
        changes nothing emits nothing. Any status but ``deleted`` may be updated."""
        if actor is not None:
            validate_id(actor, "actor")
        wanted: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            wanted["name"] = _text(name, "name", MAX_NAME)
        if not isinstance(description, _Unset):
            wanted["description"] = _text(
                description, "description", MAX_DESCRIPTION, optional=True
            )
        if not isinstance(project_id, _Unset):
            if project_id is not None:
                validate_id(project_id, "project_id")
            wanted["project_id"] = project_id
        if not isinstance(metadata, _Unset):
            wanted["metadata"] = validate_document(
                mapping_arg(metadata, "metadata"), what="metadata", max_bytes=METADATA_BYTES
            )
        async with self._transaction() as ctx:
            current, row_version = await self.locked(ctx, workspace_id)
            changes = {
                field: value for field, value in wanted.items() if getattr(current, field) != value
            }
            if not changes:
                return current
            updated = await self._write(ctx, current, row_version, **changes)
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type="workspace:updated",
                        aggregate_type="workspace",
                        aggregate_id=workspace_id,
                        payload={
                            "workspaceId": workspace_id,
                            "actorId": actor,
                            "changes": {
                                _CAMEL[field]: {"from": getattr(current, field), "to": value}
                                for field, value in changes.items()
                            },
                        },
                    )
                ],
            )
        return updated

    # -- members ------------------------------------------------------------------------------
    async def add_member(
        self, workspace_id: str, member_id: str, *, actor: str | None = None
    ) -> Workspace:
        """Add a member (idempotent: adding a present member changes and emits nothing)."""
        return await self._change_member(workspace_id, member_id, actor, add=True)

    async def remove_member(
        self, workspace_id: str, member_id: str, *, actor: str | None = None
    ) -> Workspace:
        """Remove a member (idempotent)."""
        return await self._change_member(workspace_id, member_id, actor, add=False)

    async def _change_member(
        self, workspace_id: str, member_id: str, actor: str | None, *, add: bool
    ) -> Workspace:
        validate_id(member_id, "member_id")
        if actor is not None:
            validate_id(actor, "actor")
        async with self._transaction() as ctx:
            current, row_version = await self.locked(ctx, workspace_id)
            present = member_id in current.members
            if present == add:
                return current
            members = (
                (*current.members, member_id)
                if add
                else tuple(m for m in current.members if m != member_id)
            )
            updated = await self._write(ctx, current, row_version, members=members)
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type="workspace:member:added" if add else "workspace:member:removed",
                        aggregate_type="workspace",
                        aggregate_id=workspace_id,
                        payload={
                            "workspaceId": workspace_id,
                            "memberId": member_id,
                            "actorId": actor,
                        },
                    )
                ],
            )
        return updated

    # -- shared with other services -------------------------------------------------------------
    def _store(self, ctx: UnitOfWork) -> WorkspaceStore:
        return WorkspaceStore(ctx.tx, self._scope)

    async def locked(
        self,
        ctx: UnitOfWork,
        workspace_id: str,
        *,
        include_deleted: bool = False,
        share: bool = False,
    ) -> tuple[Workspace, int]:
        """The workspace and its row version, row-locked in ``ctx`` (NotFound if missing or
        deleted)."""
        validate_id(workspace_id, "workspace_id")
        found = await self._store(ctx).locked(workspace_id, share=share)
        if found is None or (found[0].status is WorkspaceStatus.DELETED and not include_deleted):
            raise NotFound(f"no workspace {workspace_id!r} in tenant {self.tenant_id!r}")
        return found

    async def _write(
        self, ctx: UnitOfWork, current: Workspace, row_version: int, **changes: Any
    ) -> Workspace:
        """Write ``current`` with ``changes`` (fields of :class:`Workspace`); the stored
        result."""
        store = self._store(ctx)
        count = await store.update(
            replace(current, **changes), row_version=row_version, now=utcnow()
        )
        if count != 1:  # the row lock makes this impossible unless the schema is bypassed
            raise StorageConflict(f"workspace {current.workspace_id!r} changed concurrently")
        updated = await store.get(current.workspace_id)
        assert updated is not None
        return updated
