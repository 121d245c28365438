"""A tenant's registered workflow definitions: registering a version (announced in the log)
and the cache of every version, where each was registered in the log, and which version a
trigger starts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cowork.events.envelope import NewEvent
from cowork.events.log import append_events, prepare_event
from cowork.kernel.unit import UnitOfWork, open_transaction
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core
    from cowork.tenancy import TenantScope
    from cowork.workflows.records import WorkflowInstance

__all__ = ["DEFINITION_REGISTERED", "DefinitionCache", "register_definition"]

DEFINITION_REGISTERED = "workflow:definition:registered"

_CACHE_SECONDS = 2.0
Cursor = tuple[int, int]


class DefinitionCache:
    """Every version by (id, version), the latest per id, and each version's registration
    cursor: the log position of its ``workflow:definition:registered`` event ((0, 0) for
    built-ins and versions registered before cursors were kept)."""

    def __init__(self) -> None:
        self.by_version: dict[tuple[str, int], WorkflowDefinition] = {}
        self.latest: dict[str, WorkflowDefinition] = {}
        self.registered_at: dict[tuple[str, int], Cursor] = {}
        self.generation = 0
        self._loaded_at = 0.0

    async def refresh(self, store: WorkflowStore, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < _CACHE_SECONDS:
            return
        by_version: dict[tuple[str, int], WorkflowDefinition] = {}
        latest: dict[str, WorkflowDefinition] = {}
        registered_at: dict[tuple[str, int], Cursor] = {}
        for definition, cursor in await store.registered():
            key = (definition.workflow_id, definition.version)
            by_version[key] = definition
            registered_at[key] = cursor
            current = latest.get(definition.workflow_id)
            if current is None or definition.version > current.version:
                latest[definition.workflow_id] = definition
        self.by_version, self.latest, self.registered_at = by_version, latest, registered_at
        self.generation += 1
        self._loaded_at = time.monotonic()

    async def version(
        self, store: WorkflowStore, workflow_id: str, version: int
    ) -> WorkflowDefinition:
        found = self.by_version.get((workflow_id, version))
        if found is None:
            await self.refresh(store, force=True)
            found = self.by_version[(workflow_id, version)]
        return found

    async def get(
        self, core: Core, scope: TenantScope, instance: WorkflowInstance
    ) -> WorkflowDefinition:
        """The definition an instance runs (read from the database if not cached yet)."""
        found = self.by_version.get((instance.workflow_id, instance.workflow_version))
        if found is not None:
            return found
        async with open_transaction(core, scope, read_only=True) as ctx:
            return await self.version(
                WorkflowStore(ctx.tx, scope), instance.workflow_id, instance.workflow_version
            )

    def started_by(self, cursor: Cursor) -> list[WorkflowDefinition]:
        """Per workflow, the latest version registered before the event at ``cursor`` in log
        order: the version a trigger there starts, whenever it is handled."""
        chosen: dict[str, WorkflowDefinition] = {}
        for key, definition in self.by_version.items():
            if self.registered_at.get(key, (0, 0)) >= cursor:
                continue  # registered after the trigger: it does not start this one
            current = chosen.get(definition.workflow_id)
            if current is None or definition.version > current.version:
                chosen[definition.workflow_id] = definition
        return list(chosen.values())


async def register_definition(
    ctx: UnitOfWork, definition: WorkflowDefinition, *, announce: bool = True
) -> bool:
    """Store a definition version and, when it is new, announce it in the same transaction;
    the announcement's log cursor is recorded with the version, so that a trigger starts the
    latest version registered before it (built-ins are not announced: every engine registers
    and loads them when it starts)."""
    store = WorkflowStore(ctx.tx, ctx.scope)
    created = await store.register(definition)
    if created and announce:
        prepared = prepare_event(
            NewEvent(
                event_type=DEFINITION_REGISTERED,
                aggregate_type="workflow-definition",
                aggregate_id=definition.workflow_id,
                payload={
                    "workflowId": definition.workflow_id,
                    "version": definition.version,
                    "checksum": definition.checksum,
                    "trigger": definition.trigger,
                },
            ),
            policy=ctx.truncating_event_policy,  # as the engine's other events (machine)
        )
        appended = await append_events(ctx.tx, ctx.scope.tenant_id, [prepared])
        ctx.record_published(appended.new)
        await store.set_registered(definition, appended.envelopes[0].cursor)
    return created
