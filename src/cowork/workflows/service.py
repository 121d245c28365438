"""``rt.workflows``: register definitions and actions, start, inspect and cancel instances."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cowork.arguments import mapping_arg
from cowork.errors import InvalidTransition, NotFound, ValidationError
from cowork.ids import new_id
from cowork.jsondoc import validate_document
from cowork.kernel.service import TenantService
from cowork.tenancy import validate_id, validate_limit
from cowork.workflows.actions import ActionHandler, ActionRegistry
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.definitions import register_definition
from cowork.workflows.executor import PENDING_WARN_SECONDS
from cowork.workflows.machine import DetachedContext, Transition
from cowork.workflows.manager import WorkflowManager
from cowork.workflows.records import HistoryEntry, InstanceStatus, WorkflowInstance
from cowork.workflows.starts import start_instance, starting
from cowork.workflows.store import PendingAction, WorkflowStore

__all__ = ["WorkflowsService"]

_ENDED = (InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED)


def _status(value: InstanceStatus | str) -> InstanceStatus:
    try:
        return InstanceStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in InstanceStatus)
        raise ValidationError(f"status must be one of {allowed}, got {value!r}") from None


def _versions_of(
    definitions: Iterable[WorkflowDefinition], workflow_id: str, version: int | None
) -> builtins.list[WorkflowDefinition]:
    return [
        d
        for d in definitions
        if d.workflow_id == workflow_id and (version is None or d.version == version)
    ]


class WorkflowsService(TenantService):
    async def _engine_ready(self) -> None:
        await WorkflowManager.of(self._core).engine(self._scope)

    def _wake(self) -> None:
        engine = WorkflowManager.of(self._core).running(self._scope.tenant_id)
        if engine is not None:
            engine.wake()

    # -- definitions and actions ----------------------------------------------------------------
    async def register(self, definition: WorkflowDefinition) -> bool:
        """Register a definition version; True if new, False if identical content was there.
        Different content under an existing version raises DefinitionConflict."""
        if not isinstance(definition, WorkflowDefinition):
            raise ValidationError("register takes a cowork.WorkflowDefinition")
        await self._engine_ready()
        async with self._transaction() as ctx:
            created = await register_definition(ctx, definition)
        engine = WorkflowManager.of(self._core).running(self._scope.tenant_id)
        if engine is not None and created and self._bound is None:
            async with self._transaction(read_only=True) as ctx:
                await engine.cache.refresh(WorkflowStore(ctx.tx, self._scope), force=True)
        return created

    async def definitions(self) -> builtins.list[WorkflowDefinition]:
        """Every registered version, by workflow id then version."""
        await self._engine_ready()
        async with self._transaction() as ctx:
            return await WorkflowStore(ctx.tx, self._scope).definitions()

    def register_action(self, name: str, handler: ActionHandler) -> None:
        """Register the async handler that action steps named ``name`` run in this process,
        for this tenant: this process's worker then claims the tenant's steps of that action
        (and only steps whose action it has registered). Registering the same function (or
        the same code, as an ``--app`` setup called per tenant defines it) again is harmless."""
        ActionRegistry.of(self._core).register(self._scope.tenant_id, name, handler)
        engine = WorkflowManager.of(self._core).running(self._scope.tenant_id)
        if engine is not None:
            engine.wake()  # steps that waited for this action may be due

    def action(self, name: str) -> Callable[[ActionHandler], ActionHandler]:
        """Decorator form of :meth:`register_action`."""

        def decorate(handler: ActionHandler) -> ActionHandler:
            self.register_action(name, handler)
            return handler

        return decorate

    # -- instances ------------------------------------------------------------------------------
    async def start(
        self,
        workflow_id: str,
        *,
        input: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        version: int | None = None,
    ) -> WorkflowInstance:
        """Start an instance by hand, of the latest version registered now (or ``version``).
        The correlation values come from ``input``; the same ``idempotency_key`` returns the
        instance it started before. Inside ``rt.transaction()`` (``tx.workflows.start``) the
        start commits or rolls back with the transaction's other writes."""
        validate_id(workflow_id, "workflow_id")
        if idempotency_key is not None:
            validate_id(idempotency_key, "idempotency_key")
        data = validate_document(mapping_arg(input, "input"), what="input", max_bytes=256 * 1024)
        engine = await WorkflowManager.of(self._core).engine(self._scope)
        definitions = _versions_of(engine.cache.by_version.values(), workflow_id, version)
        if not definitions:  # registered by another process since the cache was loaded
            async with self._transaction(read_only=True) as ctx:
                await engine.cache.refresh(WorkflowStore(ctx.tx, self._scope), force=True)
            definitions = _versions_of(engine.cache.by_version.values(), workflow_id, version)
        if not definitions:
            raise NotFound(
                f"no workflow {workflow_id!r}"
                + (f" version {version}" if version is not None else "")
                + " is registered; call rt.workflows.register(...) first"
            )
        definition = max(definitions, key=lambda d: d.version)
        key = definition.correlation_key(data)
        if key is None:
            missing = [k for k in definition.correlation if data.get(k) is None]
            raise ValidationError(
                f"input lacks the correlation field(s) {missing} of {workflow_id!r}"
            )
        start_key = f"manual:{idempotency_key or new_id()}"
        options: dict[str, Any] = {
            "start_key": start_key,
            "correlation_key": key,
            "event": None,
            "input_data": data,
            "event_cursor": None,  # the log's head, read by the insert itself
            "run_inline": False,
        }
        instance: WorkflowInstance | None
        if self._bound is None and self._core.database.capabilities.one_statement_saves:
            # One statement sent in one trip (the start needs nothing read first).
            detached = DetachedContext(self._core, self._scope)
            transition = await starting(
                detached, definition, lease=engine.lease_for_start(definition), **options
            )
            statement = transition.save_statement(new=True, at_head=True)
            rows = await self._core.trips.run(
                statement.query, statement.params, tenant_id=self._scope.tenant_id
            )
            instance = await transition.saved(statement, rows[0] if rows else None)
            self._core.committed(self._scope.tenant_id, detached.published)
        else:
            async with self._transaction() as ctx:
                lease = engine.lease_for_start(definition) if self._bound is None else None
                instance = await start_instance(ctx, definition, lease=lease, **options)
        if instance is None:  # the idempotency key was used: that start's instance
            async with self._transaction(read_only=True) as ctx:
                instance = await WorkflowStore(ctx.tx, self._scope).by_start_key(
                    workflow_id, start_key
                )
            assert instance is not None
        elif self._bound is None:
            engine.take_over(instance)
        self._wake()
        return instance

    async def get(self, instance_id: str) -> WorkflowInstance | None:
        validate_id(instance_id, "instance_id")
        async with self._transaction(read_only=True) as ctx:
            return await WorkflowStore(ctx.tx, self._scope).get(instance_id)

    async def for_trigger(self, workflow_id: str, event_id: str) -> WorkflowInstance | None:
        """The instance a trigger event started, if any."""
        validate_id(workflow_id, "workflow_id")
        validate_id(event_id, "event_id")
        async with self._transaction(read_only=True) as ctx:
            return await WorkflowStore(ctx.tx, self._scope).by_start_key(
                workflow_id, f"event:{event_id}"
            )

    async def list(
        self,
        *,
        workflow_id: str | None = None,
        status: InstanceStatus | str | None = None,
        limit: int = 100,
    ) -> builtins.list[WorkflowInstance]:
        if workflow_id is not None:
            validate_id(workflow_id, "workflow_id")
        validate_limit(limit)
        status_value = None if status is None else _status(status).value
        async with self._transaction(read_only=True) as ctx:
            return await WorkflowStore(ctx.tx, self._scope).instances(
                workflow_id=workflow_id, status=status_value, limit=limit
            )

    async def counts(self) -> dict[str, int]:
        """Instances by status."""
        async with self._transaction(read_only=True) as ctx:
            return await WorkflowStore(ctx.tx, self._scope).counts()

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        validate_id(instance_id, "instance_id")
        async with self._transaction(read_only=True) as ctx:
            store = WorkflowStore(ctx.tx, self._scope)
            if await store.get(instance_id) is None:
                raise NotFound(f"no workflow instance {instance_id!r}")
            return await store.history(instance_id)

    async def cancel(
        self, instance_id: str, *, reason: str | None = None, actor: str | None = None
    ) -> WorkflowInstance:
        """Cancel a running or waiting instance (waits for a worker mid-step to finish it)."""
        validate_id(instance_id, "instance_id")
        if actor is not None:
            validate_id(actor, "actor")
        await self._engine_ready()
        async with self._transaction() as ctx:
            store = WorkflowStore(ctx.tx, self._scope)
            instance = await store.lock(instance_id)
            if instance is None:
                raise NotFound(f"no workflow instance {instance_id!r}")
            if not instance.status.active:
                raise InvalidTransition(
                    f"instance {instance_id!r} is {instance.status.value}; only running or "
                    "waiting instances can be cancelled",
                    current=instance.status.value,
                    action="cancel",
                )
            engine = WorkflowManager.of(self._core).running(self._scope.tenant_id)
            assert engine is not None
            definition = await engine.cache.version(
                store, instance.workflow_id, instance.workflow_version
            )
            transition = Transition(ctx, definition, instance, actor=actor)
            transition.cancel(reason)
            cancelled = await transition.save()
            # Once committed, a running action here stops at once; a worker elsewhere notices
            # within a second.
            ctx.tx.after_commit(lambda: engine.cancelled(instance_id))
        return cancelled

    async def pending_actions(
        self, *, min_age_seconds: float = PENDING_WARN_SECONDS
    ) -> builtins.list[PendingAction]:
        """Steps that have been due for at least ``min_age_seconds`` with no worker taking them,
        by action: no live worker serving this tenant has registered the action."""
        async with self._transaction(read_only=True) as ctx:
            return await WorkflowStore(ctx.tx, self._scope).pending_actions(
                float(min_age_seconds), at=self._core.clock.now()
            )

    async def wait(
        self,
        instance_id: str,
        *,
        statuses: Iterable[InstanceStatus | str] = _ENDED,
        timeout: float = 30.0,
        poll: float = 0.05,
    ) -> WorkflowInstance:
        """Wait until the instance reaches one of ``statuses`` (default: ended)."""
        wanted = {_status(s) for s in statuses}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            instance = await self.get(instance_id)
            if instance is None:
                raise NotFound(f"no workflow instance {instance_id!r}")
            if instance.status in wanted:
                return instance
            if loop.time() > deadline:
                raise TimeoutError(
                    f"instance {instance_id} still {instance.status.value} after {timeout}s"
                )
            await asyncio.sleep(poll)
