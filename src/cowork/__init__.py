"""Cowork foundation: durable, tenant-isolated workspaces, a versioned blackboard, an
append-only event log with durable consumers, and a workflow engine that resumes after a crash.

Start with :func:`open`::

    import cowork

    async with await cowork.open() as rt:      # embedded SQLite file by default
        print(rt.durable, await rt.health())

``cowork.open`` is not in ``__all__``: ``from cowork import *`` must not shadow the builtin
``open``. The names below are imported on first use (PEP 562), so that ``import cowork`` and the
``cowork`` command line start fast: the drivers, pydantic and the services load only when
something asks for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cowork.blackboard import (
        ArtifactDiff,
        ArtifactVersion,
        BlackboardEntry,
        DiffChange,
        Feedback,
        FeedbackComment,
        FeedbackSeverity,
        FeedbackStatus,
    )
    from cowork.blackboard.service import BlackboardService
    from cowork.config import SecretProvider, Settings, load_settings
    from cowork.consumers import ConsumerOptions, DurableSubscription
    from cowork.consumers.service import ConsumerInfo, ConsumersService, ParkedEvent
    from cowork.errors import (
        ConfigError,
        CoworkError,
        DefinitionConflict,
        InvalidEventType,
        InvalidExpectedVersion,
        InvalidTransition,
        MigrationError,
        MigrationIntegrityError,
        MigrationLockTimeout,
        NotFound,
        PayloadRejected,
        PersistenceError,
        PersistenceUnavailable,
        RuntimeClosed,
        SchemaNotReady,
        StorageConflict,
        TenantViolation,
        ValidationError,
        VersionConflict,
        WorkflowError,
        WorkspaceNotActive,
    )
    from cowork.events.envelope import EventEnvelope, NewEvent
    from cowork.migrations import MigrationReport
    from cowork.runtime import Runtime, open_runtime
    from cowork.runtime.actions import ActionContext
    from cowork.runtime.events import EventsService
    from cowork.runtime.operator import Operator, open_operator
    from cowork.runtime.transaction import TransactionContext
    from cowork.snapshots import Snapshot
    from cowork.snapshots.service import SnapshotsService
    from cowork.storage.port import Health
    from cowork.tenancy import TenantScope
    from cowork.workflows import (
        ActionStep,
        BranchCase,
        BranchStep,
        CompleteStep,
        FailStep,
        HistoryEntry,
        InstanceStatus,
        WaitStep,
        WorkflowDefinition,
        WorkflowInstance,
    )
    from cowork.workflows.service import WorkflowsService
    from cowork.workspaces import Workspace, WorkspaceStatus
    from cowork.workspaces.service import WorkspacesService

    open = open_runtime  # cowork.open: exported to type checkers, not in __all__

__all__ = [
    "ActionContext",
    "ActionStep",
    "ArtifactDiff",
    "ArtifactVersion",
    "BlackboardEntry",
    "BlackboardService",
    "BranchCase",
    "BranchStep",
    "CompleteStep",
    "ConfigError",
    "ConsumerInfo",
    "ConsumerOptions",
    "ConsumersService",
    "CoworkError",
    "DefinitionConflict",
    "DiffChange",
    "DurableSubscription",
    "EventEnvelope",
    "EventsService",
    "FailStep",
    "Feedback",
    "FeedbackComment",
    "FeedbackSeverity",
    "FeedbackStatus",
    "Health",
    "HistoryEntry",
    "InstanceStatus",
    "InvalidEventType",
    "InvalidExpectedVersion",
    "InvalidTransition",
    "MigrationError",
    "MigrationIntegrityError",
    "MigrationLockTimeout",
    "MigrationReport",
    "NewEvent",
    "NotFound",
    "Operator",
    "ParkedEvent",
    "PayloadRejected",
    "PersistenceError",
    "PersistenceUnavailable",
    "Runtime",
    "RuntimeClosed",
    "SchemaNotReady",
    "SecretProvider",
    "Settings",
    "Snapshot",
    "SnapshotsService",
    "StorageConflict",
    "TenantScope",
    "TenantViolation",
    "TransactionContext",
    "ValidationError",
    "VersionConflict",
    "WaitStep",
    "WorkflowDefinition",
    "WorkflowError",
    "WorkflowInstance",
    "WorkflowsService",
    "Workspace",
    "WorkspaceNotActive",
    "WorkspaceStatus",
    "WorkspacesService",
    "__version__",
    "load_settings",
    "open_operator",
]

# name -> (module, attribute): what ``cowork.<name>`` resolves to on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "ActionContext": ("cowork.runtime.actions", "ActionContext"),
    "ActionStep": ("cowork.workflows", "ActionStep"),
    "ArtifactDiff": ("cowork.blackboard", "ArtifactDiff"),
    "ArtifactVersion": ("cowork.blackboard", "ArtifactVersion"),
    "BlackboardEntry": ("cowork.blackboard", "BlackboardEntry"),
    "BranchCase": ("cowork.workflows", "BranchCase"),
    "BranchStep": ("cowork.workflows", "BranchStep"),
    "CompleteStep": ("cowork.workflows", "CompleteStep"),
    "ConfigError": ("cowork.errors", "ConfigError"),
    "ConsumerInfo": ("cowork.consumers.service", "ConsumerInfo"),
    "ConsumerOptions": ("cowork.consumers", "ConsumerOptions"),
    "CoworkError": ("cowork.errors", "CoworkError"),
    "DefinitionConflict": ("cowork.errors", "DefinitionConflict"),
    "DiffChange": ("cowork.blackboard", "DiffChange"),
    "DurableSubscription": ("cowork.consumers", "DurableSubscription"),
    "EventEnvelope": ("cowork.events.envelope", "EventEnvelope"),
    "FailStep": ("cowork.workflows", "FailStep"),
    "Feedback": ("cowork.blackboard", "Feedback"),
    "FeedbackComment": ("cowork.blackboard", "FeedbackComment"),
    "FeedbackSeverity": ("cowork.blackboard", "FeedbackSeverity"),
    "FeedbackStatus": ("cowork.blackboard", "FeedbackStatus"),
    "Health": ("cowork.storage.port", "Health"),
    "HistoryEntry": ("cowork.workflows", "HistoryEntry"),
    "InstanceStatus": ("cowork.workflows", "InstanceStatus"),
    "InvalidEventType": ("cowork.errors", "InvalidEventType"),
    "InvalidExpectedVersion": ("cowork.errors", "InvalidExpectedVersion"),
    "InvalidTransition": ("cowork.errors", "InvalidTransition"),
    "load_settings": ("cowork.config", "load_settings"),
    "MigrationError": ("cowork.errors", "MigrationError"),
    "MigrationIntegrityError": ("cowork.errors", "MigrationIntegrityError"),
    "MigrationLockTimeout": ("cowork.errors", "MigrationLockTimeout"),
    "NewEvent": ("cowork.events.envelope", "NewEvent"),
    "NotFound": ("cowork.errors", "NotFound"),
    "open": ("cowork.runtime", "open_runtime"),
    "open_operator": ("cowork.runtime.operator", "open_operator"),
    "Operator": ("cowork.runtime.operator", "Operator"),
    "ParkedEvent": ("cowork.consumers.service", "ParkedEvent"),
    "PayloadRejected": ("cowork.errors", "PayloadRejected"),
    "PersistenceError": ("cowork.errors", "PersistenceError"),
    "PersistenceUnavailable": ("cowork.errors", "PersistenceUnavailable"),
    "Runtime": ("cowork.runtime", "Runtime"),
    "RuntimeClosed": ("cowork.errors", "RuntimeClosed"),
    "SchemaNotReady": ("cowork.errors", "SchemaNotReady"),
    "Settings": ("cowork.config", "Settings"),
    "Snapshot": ("cowork.snapshots", "Snapshot"),
    "StorageConflict": ("cowork.errors", "StorageConflict"),
    "TenantScope": ("cowork.tenancy", "TenantScope"),
    "TenantViolation": ("cowork.errors", "TenantViolation"),
    "TransactionContext": ("cowork.runtime.transaction", "TransactionContext"),
    "ValidationError": ("cowork.errors", "ValidationError"),
    "VersionConflict": ("cowork.errors", "VersionConflict"),
    "WaitStep": ("cowork.workflows", "WaitStep"),
    "WorkflowDefinition": ("cowork.workflows", "WorkflowDefinition"),
    "WorkflowError": ("cowork.errors", "WorkflowError"),
    "WorkflowInstance": ("cowork.workflows", "WorkflowInstance"),
    "Workspace": ("cowork.workspaces", "Workspace"),
    "WorkspaceNotActive": ("cowork.errors", "WorkspaceNotActive"),
    "WorkspaceStatus": ("cowork.workspaces", "WorkspaceStatus"),
    "BlackboardService": ("cowork.blackboard.service", "BlackboardService"),
    "ConsumersService": ("cowork.consumers.service", "ConsumersService"),
    "EventsService": ("cowork.runtime.events", "EventsService"),
    "MigrationReport": ("cowork.migrations", "MigrationReport"),
    "SecretProvider": ("cowork.config", "SecretProvider"),
    "SnapshotsService": ("cowork.snapshots.service", "SnapshotsService"),
    "WorkflowsService": ("cowork.workflows.service", "WorkflowsService"),
    "WorkspacesService": ("cowork.workspaces.service", "WorkspacesService"),
}


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cowork-foundation")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()[name] = _version()
        return value
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'cowork' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
