"""The workflow engine of one tenant: its definitions, its trigger consumer and its executor.

- :mod:`cowork.workflows.definitions`: the registered versions, cached (shared by the other
  two);
- :mod:`cowork.workflows.triggers`: the durable consumer (``cowork.workflows``, all events,
  transactional) that starts instances for trigger events and advances waiting instances
  correlated with an event, in the same transaction as its checkpoint;
- :mod:`cowork.workflows.executor`: claims due steps (actions this process offers, timers
  that fired, fresh starts) and runs them outside any transaction, each step checkpointed in
  its own short one.

The engine only composes them: it starts and stops them together, and routes the service's
calls (starts handed over, cancels, wake-ups) to the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from cowork.kernel.unit import open_transaction
from cowork.tenancy import TenantScope
from cowork.workflows.actions import ActionRegistry
from cowork.workflows.builtins import BUILTIN_WORKFLOWS
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.definitions import DefinitionCache, register_definition
from cowork.workflows.executor import Executor
from cowork.workflows.records import WorkflowInstance
from cowork.workflows.store import WorkflowStore
from cowork.workflows.triggers import TriggerConsumer

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["WorkflowEngine"]


class WorkflowEngine:
    def __init__(self, core: Core, scope: TenantScope, *, run: bool) -> None:
        self.core = core
        self.scope = scope
        self.cache = DefinitionCache()
        self.executor = Executor(core, scope, self.cache)
        self.triggers = TriggerConsumer(core, scope, self.cache)
        self._waiter = self.executor.waiter
        self._run = run
        self._stopped = False
        self._executor: asyncio.Task[None] | None = None

    @property
    def transitions(self) -> int:
        """Transitions this engine committed (the consumer's and the executor's)."""
        return self.triggers.transitions + self.executor.transitions

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        async with open_transaction(self.core, self.scope) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            for definition in BUILTIN_WORKFLOWS:
                await register_definition(ctx, definition, announce=False)
            await self.cache.refresh(store, force=True)
        if not self._run:
            return
        await self.triggers.subscribe()
        self._executor = asyncio.get_running_loop().create_task(
            self.executor.run(), name=f"cowork-workflows-{self.scope.tenant_id}"
        )

    async def stop(self) -> None:
        """Stop: a running step may finish within the grace period; after it, the step is
        cancelled (nothing of it commits) and its lease released for another worker."""
        self._stopped = True
        self.executor.stop()
        await self.triggers.stop()
        if self._executor is not None:
            done, _ = await asyncio.wait(
                {self._executor}, timeout=self.core.settings.stop_grace_seconds
            )
            if not done:
                self._executor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._executor
        await self.executor.close()

    def wake(self) -> None:
        self.executor.wake()

    @property
    def executes(self) -> bool:
        """Whether this engine's executor runs here (and so can take started instances)."""
        return self._run and self._executor is not None and not self._stopped

    def lease_for_start(self, definition: WorkflowDefinition) -> tuple[str, float] | None:
        """The lease a start in this process gives its instance: this executor's, so that it
        runs the instance without claiming it; None when the executor does not run here or
        the first step is an action this process does not offer (a worker that does claims it)."""
        if not self.executes:
            return None
        first = definition.steps[0]
        action = getattr(first, "action", None)
        if (
            action is not None
            and ActionRegistry.of(self.core).get(self.scope.tenant_id, action) is None
        ):
            return None
        return (self.core.worker_id, self.executor.lease_seconds)

    def take_over(self, instance: WorkflowInstance) -> None:
        self.executor.take_over(instance)

    def cancelled(self, instance_id: str) -> None:
        """An instance was cancelled in this process: stop its running action, if here."""
        self.executor.cancel_running(instance_id, "cancelled")
