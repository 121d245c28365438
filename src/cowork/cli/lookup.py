"""Existence checks for the ids a command names: a missing one exits 5 (not found) with a
message that says how to list what exists, instead of an empty table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cowork.errors import NotFound

if TYPE_CHECKING:
    from cowork.consumers.service import ConsumerInfo
    from cowork.runtime import Runtime
    from cowork.workspaces.records import Workspace

__all__ = ["require_consumer", "require_workspace"]


async def require_workspace(rt: Runtime, workspace_id: str) -> Workspace:
    """The workspace (deleted ones too), or NotFound."""
    found = await rt.workspaces.get(workspace_id, include_deleted=True)
    if found is None:
        raise NotFound(
            f"no workspace {workspace_id!r} in tenant {rt.tenant_id!r}; "
            "`cowork workspace list --all` lists the tenant's workspaces (--tenant picks another)"
        )
    return found


async def require_consumer(rt: Runtime, consumer_id: str) -> ConsumerInfo:
    """The durable consumer, or NotFound."""
    for info in await rt.consumers.list():
        if info.consumer_id == consumer_id:
            return info
    raise NotFound(
        f"no consumer {consumer_id!r} in tenant {rt.tenant_id!r}; "
        "`cowork consumers list` lists the tenant's consumers (--tenant picks another)"
    )
