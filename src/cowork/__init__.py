"""Cowork foundation: durable, tenant-isolated workspaces, a versioned blackboard, an
append-only event log with durable consumers, and a workflow engine that resumes after a crash.

Start with :func:`open`::

    import cowork

    async with await cowork.open() as rt:      # embedded SQLite file by default
        print(rt.durable, await rt.health())
"""

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
from cowork.config import Settings, load_settings
from cowork.consumers import ConsumerOptions, DurableSubscription
from cowork.consumers.service import ConsumerInfo, ParkedEvent
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
from cowork.runtime import Runtime
from cowork.runtime import open_runtime as open
from cowork.snapshots import Snapshot
from cowork.storage.port import Health
from cowork.tenancy import TenantScope
from cowork.transaction import TransactionContext
from cowork.workflows import (
    ActionContext,
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
from cowork.workspaces import Workspace, WorkspaceStatus

__version__ = "0.1.0"

__all__ = [
    "ActionContext",
    "ActionStep",
    "ArtifactDiff",
    "ArtifactVersion",
    "BlackboardEntry",
    "BranchCase",
    "BranchStep",
    "CompleteStep",
    "ConfigError",
    "ConsumerInfo",
    "ConsumerOptions",
    "CoworkError",
    "DefinitionConflict",
    "DiffChange",
    "DurableSubscription",
    "EventEnvelope",
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
    "NewEvent",
    "NotFound",
    "ParkedEvent",
    "PayloadRejected",
    "PersistenceError",
    "PersistenceUnavailable",
    "Runtime",
    "RuntimeClosed",
    "SchemaNotReady",
    "Settings",
    "Snapshot",
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
    "Workspace",
    "WorkspaceNotActive",
    "WorkspaceStatus",
    "__version__",
    "load_settings",
    "open",
]
