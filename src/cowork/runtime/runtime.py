"""Bootstrap and the runtime object: ``rt = await cowork.open(...)``.

``open`` loads the configuration, connects the configured database (the embedded SQLite file
when none is configured), applies pending migrations (``COWORK_PERSISTENCE_AUTO_MIGRATE``) and
returns a :class:`Runtime`.

Required mode (``COWORK_PERSISTENCE_REQUIRED=true``, the config file's ``persistence_required``
or ``required=True``) fails fast when the database cannot be reached or migrated, or is in
memory; the message names which of the three made persistence required. Without it, an
unreachable database degrades to ``memory://`` with one loud warning, and the runtime reports
``durable == False`` with the reason in ``degraded_reason``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cowork.closing import AsyncClosing
from cowork.config import SecretProvider, Settings, load_settings
from cowork.errors import (
    ConfigError,
    CoworkError,
    MigrationError,
    PersistenceUnavailable,
    RuntimeClosed,
    SchemaNotReady,
)
from cowork.kernel.core import Core
from cowork.kernel.database_store import event_log_distributed
from cowork.migrations import MigrationReport, migrate
from cowork.runtime.events import EventsService
from cowork.runtime.factory import create_database
from cowork.runtime.transaction import TransactionContext, install, open_context
from cowork.storage.port import Database, Health
from cowork.storage.sqlite import SqliteDatabase
from cowork.tenancy import TenantScope

if TYPE_CHECKING:  # the services are imported on first use: a command loads what it uses
    from cowork.blackboard.service import BlackboardService
    from cowork.consumers.service import ConsumersService
    from cowork.snapshots.service import SnapshotsService
    from cowork.workflows.service import WorkflowsService
    from cowork.workspaces.service import WorkspacesService

__all__ = ["HORIZON_WARN_SECONDS", "Runtime", "open_runtime"]

_log = logging.getLogger("cowork")
# A transaction holding a tenant's read horizon back this long is named by rt.health() and
# `cowork status`.
HORIZON_WARN_SECONDS = 5.0


class Runtime(AsyncClosing):
    """A connected Cowork runtime scoped to one tenant; ``for_tenant`` gives other views."""

    def __init__(self, core: Core, scope: TenantScope) -> None:
        self._core = core
        self._scope = scope
        self._events: EventsService | None = None
        self._consumers: ConsumersService | None = None
        self._workspaces: WorkspacesService | None = None
        self._blackboard: BlackboardService | None = None
        self._snapshots: SnapshotsService | None = None
        self._workflows: WorkflowsService | None = None

    # -- identity and state -------------------------------------------------------------------
    @property
    def scope(self) -> TenantScope:
        return self._scope

    @property
    def tenant_id(self) -> str:
        return self._scope.tenant_id

    @property
    def owner_id(self) -> str:
        return self._scope.owner_id

    @property
    def settings(self) -> Settings:
        return self._core.settings

    @property
    def display_url(self) -> str:
        """The database URL with its password masked (for logs and status lines).

        The database itself is not reachable from a runtime: its cross-tenant scope is for
        operator-wide work, through :func:`cowork.open_operator`."""
        return self._core.database.display_url

    @property
    def backend(self) -> str:
        return self._core.database.backend

    @property
    def durable(self) -> bool:
        """True when work survives the process (a PostgreSQL or SQLite-file database)."""
        return self._core.database.durable

    @property
    def degraded_reason(self) -> str | None:
        """Why the runtime fell back to memory, if it did."""
        return self._core.degraded_reason

    @property
    def migrations(self) -> MigrationReport | None:
        return self._core.migrations

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __repr__(self) -> str:
        return (
            f"Runtime(tenant={self.tenant_id!r}, database={self._core.database.display_url!r}, "
            f"durable={self.durable})"
        )

    # -- tenancy ------------------------------------------------------------------------------
    def for_tenant(self, tenant_id: str, *, owner_id: str | None = None) -> Runtime:
        """The same runtime acting for another tenant (sharing connections and workers).

        With the embedded worker, the tenant's workflow engine starts in the background."""
        scope = TenantScope(tenant_id, owner_id or self._scope.owner_id)
        core = self._open_core()
        from cowork.workflows.manager import WorkflowManager

        if core.run_worker and WorkflowManager.of(core).running(tenant_id) is None:
            task = asyncio.get_running_loop().create_task(WorkflowManager.of(core).engine(scope))
            task.add_done_callback(_log_engine_failure)
        return Runtime(core, scope)

    # -- services -----------------------------------------------------------------------------
    def _open_core(self) -> Core:
        if self._core.closed:
            raise RuntimeClosed("this runtime is closed; open a new one with cowork.open()")
        return self._core

    @property
    def events(self) -> EventsService:
        """Publish, read and subscribe (``rt.events.publish(...)``)."""
        if self._events is None:
            self._events = EventsService(self._open_core(), self._scope)
        return self._events

    @property
    def consumers(self) -> ConsumersService:
        """Inspect and operate durable consumers (list, parked, redrive, reset)."""
        if self._consumers is None:
            from cowork.consumers.service import ConsumersService

            self._consumers = ConsumersService(self._open_core(), self._scope)
        return self._consumers

    @property
    def workspaces(self) -> WorkspacesService:
        """Workspace lifecycle, members and metadata."""
        if self._workspaces is None:
            from cowork.workspaces.service import WorkspacesService

            self._workspaces = WorkspacesService(self._open_core(), self._scope)
        return self._workspaces

    @property
    def blackboard(self) -> BlackboardService:
        """Versioned artifacts and feedback threads."""
        if self._blackboard is None:
            from cowork.blackboard.service import BlackboardService

            self._blackboard = BlackboardService(self._open_core(), self._scope)
        return self._blackboard

    @property
    def snapshots(self) -> SnapshotsService:
        """Workspace snapshots and restore."""
        if self._snapshots is None:
            from cowork.snapshots.service import SnapshotsService

            self._snapshots = SnapshotsService(self._open_core(), self._scope)
        return self._snapshots

    @property
    def workflows(self) -> WorkflowsService:
        """Workflow definitions, actions and instances."""
        if self._workflows is None:
            from cowork.workflows.service import WorkflowsService

            self._workflows = WorkflowsService(self._open_core(), self._scope)
        return self._workflows

    def transaction(self) -> AbstractAsyncContextManager[TransactionContext]:
        """``async with rt.transaction() as tx``: the same services, one commit."""
        return open_context(self._open_core(), self._scope)

    # -- operations ---------------------------------------------------------------------------
    async def health(self) -> Health:
        """Database round-trip check, and the transactions that have held this tenant's
        read horizon back for over 5 seconds (``horizon_held_by``); never raises."""
        health = await self._core.database.health()
        if not health.healthy:
            return health
        try:
            holders = await self.events.horizon_holders(min_age_seconds=HORIZON_WARN_SECONDS)
        except CoworkError as exc:
            return replace(health, healthy=False, error=str(exc))
        return replace(health, horizon_held_by=tuple(holders))

    def database_now(self) -> datetime:
        """The database server's time, as this process sees it (leases and timers use it)."""
        return self._core.clock.now()

    async def close(self) -> None:
        """Stop this runtime's workers and close the database (every view of it at once).

        Running workflow steps get ``stop_grace_seconds`` to finish. Durable consumers running
        here first handle the events committed before the close, for at most another
        ``stop_grace_seconds``, and save their checkpoints; what is left (or held by a consumer
        whose lease another process has) is delivered by the next process that runs them."""
        await self._core.close()


async def _prepare_schema(db: Database, settings: Settings) -> MigrationReport:
    if settings.auto_migrate or not db.durable:
        report = await migrate(db, lock_timeout_seconds=settings.migration_lock_timeout_seconds)
    else:
        report = await migrate(db, check_only=True)
        if report.pending:
            raise SchemaNotReady(
                f"{len(report.pending)} migration(s) pending ({', '.join(report.pending)}) and "
                "COWORK_PERSISTENCE_AUTO_MIGRATE is false; run `cowork migrate`"
            )
    await refuse_distributed_event_log(db)
    return report


async def refuse_distributed_event_log(db: Database) -> None:
    """Fail closed on an event log distributed by Citus: its commit order rests on
    transaction ids and locks of one node (docs/operations.md says what breaks)."""
    async with db.transaction(tenant_id=None, read_only=True) as tx:
        distributed = await event_log_distributed(tx)
    if distributed:
        raise ConfigError(
            "cowork_event_log is distributed by Citus, which this version does not support: "
            "its commit-order reads rely on one node's transaction ids and locks, so events "
            "could be skipped. Keep the cowork_* tables local to one node (see "
            "docs/operations.md, 'Scaling to a tenant-sharded PostgreSQL')"
        )


async def open_runtime(
    database_url: str | None = None,
    *,
    tenant_id: str | None = None,
    owner_id: str | None = None,
    required: bool | None = None,
    config_file: str | Path | None = None,
    secret_provider: SecretProvider | None = None,
    worker: bool = True,
    **config: Any,
) -> Runtime:
    """Load configuration, connect, migrate, and return a :class:`Runtime`.

    ``worker=True`` (the default) runs durable consumers (and, later, workflows) in this
    process; with ``worker=False`` they are registered but run only in a ``cowork worker``.
    """
    core, scope = await connect_core(
        database_url,
        tenant_id=tenant_id,
        owner_id=owner_id,
        required=required,
        config_file=config_file,
        secret_provider=secret_provider,
        worker=worker,
        **config,
    )
    runtime = Runtime(core, scope)
    if not worker:
        # No worker here: the tenant's workflow engine (built-in definitions, the definition
        # cache) starts when this process first uses rt.workflows; a command that only reads
        # workspaces or events never loads it.
        return runtime
    from cowork.workflows.manager import WorkflowManager

    try:
        # Built-ins registered and the worker started.
        await WorkflowManager.of(core).engine(scope)
    except BaseException:
        await core.close()
        raise
    return runtime


async def connect_core(
    database_url: str | None = None,
    *,
    tenant_id: str | None = None,
    owner_id: str | None = None,
    required: bool | None = None,
    config_file: str | Path | None = None,
    secret_provider: SecretProvider | None = None,
    worker: bool = True,
    **config: Any,
) -> tuple[Core, TenantScope]:
    """Load configuration, connect, migrate and sync the clock: the process's :class:`Core`
    and the configured tenant scope (for :func:`open_runtime` and :func:`open_operator`)."""
    settings = load_settings(
        config_file=config_file,
        secret_provider=secret_provider,
        database_url=database_url,
        tenant_id=tenant_id,
        owner_id=owner_id,
        persistence_required=required,
        **config,
    )
    scope = TenantScope(settings.tenant_id, settings.owner_id)
    url = settings.effective_database_url()
    db = create_database(url, settings)  # required mode: refuses an in-memory database
    degraded: str | None = None
    try:
        await db.open()
    except PersistenceUnavailable as exc:
        if settings.persistence_required:
            raise PersistenceUnavailable(
                f"persistence is required ({settings.required_reason()}) and the database is "
                f"unreachable: {exc}"
            ) from None
        degraded = str(exc)
        _log.warning(
            "DATABASE UNREACHABLE, RUNNING IN MEMORY: nothing will survive this process. %s. "
            "Set COWORK_PERSISTENCE_REQUIRED=true to fail instead.",
            degraded,
        )
        db = SqliteDatabase("memory://")
        await db.open()
    try:
        report = await _prepare_schema(db, settings)
    except CoworkError as exc:
        await db.close()
        if settings.persistence_required and isinstance(exc, MigrationError | SchemaNotReady):
            raise type(exc)(
                f"persistence is required ({settings.required_reason()}) and the database "
                f"could not be migrated: {exc}"
            ) from None
        raise
    core = Core(settings, db, degraded_reason=degraded, migrations=report, run_worker=worker)
    install(core)
    try:
        await core.clock.sync(db)  # leases and timers use the database's clock
    except BaseException:
        await core.close()
        raise
    return core, scope


def _log_engine_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("could not start a tenant's workflow engine: %s", task.exception())
