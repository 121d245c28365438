"""Operator-wide work across tenants: ``op = await cowork.open_operator(...)``.

A :class:`~cowork.runtime.Runtime` acts for one tenant at a time, and nothing reachable from it
opens the cross-tenant scope (the ``'*'`` scope that the row-level security policies let read
every tenant's rows). What must look across tenants, the worker's tenant discovery and
``cowork tenants``, goes through this explicit API instead::

    async with await cowork.open_operator("postgresql://…") as op:
        for tenant_id in await op.tenants():
            rt = op.runtime(tenant_id)          # an ordinary, tenant-scoped runtime
            print(tenant_id, await rt.events.count())

An operator holds one connection pool for every runtime it hands out; closing it closes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cowork.closing import AsyncClosing
from cowork.config import SecretProvider, Settings
from cowork.errors import RuntimeClosed
from cowork.kernel.core import Core
from cowork.kernel.database_store import known_tenants
from cowork.runtime.runtime import Runtime, connect_core
from cowork.tenancy import TenantScope, validate_id
from cowork.workflows.manager import WorkflowManager

__all__ = ["Operator", "open_operator"]


class Operator(AsyncClosing):
    """Cross-tenant operations for operators: list the tenants, hand out tenant runtimes."""

    def __init__(self, core: Core, default: TenantScope) -> None:
        self._core = core
        self._default = default

    @property
    def settings(self) -> Settings:
        return self._core.settings

    @property
    def display_url(self) -> str:
        """The database URL with its password masked."""
        return self._core.database.display_url

    @property
    def closed(self) -> bool:
        return self._core.closed

    async def tenants(self) -> list[str]:
        """Every tenant with events in the database, in id order (a cross-tenant read)."""
        core = self._open_core()
        async with core.database.transaction(tenant_id=None, read_only=True) as tx:
            return await known_tenants(tx)

    def runtime(self, tenant_id: str | None = None, *, owner_id: str | None = None) -> Runtime:
        """A runtime acting for ``tenant_id`` (the configured tenant when None), sharing this
        operator's connections. Its workflow engine is not started: see :meth:`serve`."""
        core = self._open_core()
        if tenant_id is None:
            return Runtime(core, self._default)
        validate_id(tenant_id, "tenant_id")
        return Runtime(core, TenantScope(tenant_id, owner_id or self._default.owner_id))

    async def serve(self, tenant_id: str | None = None, *, owner_id: str | None = None) -> Runtime:
        """:meth:`runtime`, with the tenant's built-in workflows registered and, when this
        operator was opened with ``worker=True``, its workflow engine running here."""
        rt = self.runtime(tenant_id, owner_id=owner_id)
        await WorkflowManager.of(self._core).engine(rt.scope)
        return rt

    def _open_core(self) -> Core:
        if self._core.closed:
            raise RuntimeClosed("this operator is closed; open a new one with open_operator()")
        return self._core

    async def close(self) -> None:
        """Stop the workers of every runtime handed out and close the database."""
        await self._core.close()


async def open_operator(
    database_url: str | None = None,
    *,
    required: bool | None = None,
    config_file: str | Path | None = None,
    secret_provider: SecretProvider | None = None,
    worker: bool = False,
    **config: Any,
) -> Operator:
    """Load configuration, connect and migrate as :func:`cowork.open` does, and return an
    :class:`Operator`. ``worker=True`` runs the durable consumers and workflow engines of the
    tenants it :meth:`~Operator.serve` s in this process (``cowork worker`` does)."""
    core, scope = await connect_core(
        database_url,
        required=required,
        config_file=config_file,
        secret_provider=secret_provider,
        worker=worker,
        **config,
    )
    return Operator(core, scope)
