"""The workflow engines of one process, one per tenant served."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from cowork.consumers.manager import ConsumerManager
from cowork.tenancy import TenantScope
from cowork.workflows.engine import WorkflowEngine

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["WorkflowManager"]


class WorkflowManager:
    def __init__(self, core: Core) -> None:
        # Made first, so that the core closes the engines (and their trigger subscriptions)
        # before the consumers they subscribe through.
        ConsumerManager.of(core)
        self._core = core
        self._engines: dict[str, WorkflowEngine] = {}
        self._starting: dict[str, asyncio.Task[WorkflowEngine]] = {}

    @classmethod
    def of(cls, core: Core) -> WorkflowManager:
        """The process's workflow manager (one per core, made on first use)."""
        return core.part(cls, cls)

    async def engine(self, scope: TenantScope) -> WorkflowEngine:
        """The tenant's engine, started on first use (built-ins registered, worker running
        when this runtime runs a worker)."""
        engine = self._engines.get(scope.tenant_id)
        if engine is not None:
            return engine
        task = self._starting.get(scope.tenant_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._start(scope))
            self._starting[scope.tenant_id] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(scope.tenant_id, None)

    async def _start(self, scope: TenantScope) -> WorkflowEngine:
        engine = WorkflowEngine(self._core, scope, run=self._core.run_worker)
        await engine.start()
        self._engines[scope.tenant_id] = engine
        return engine

    def running(self, tenant_id: str) -> WorkflowEngine | None:
        return self._engines.get(tenant_id)

    async def close(self) -> None:
        for task in self._starting.values():
            task.cancel()
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            await engine.stop()
