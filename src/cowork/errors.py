"""The one exception hierarchy of Cowork.

Every error a caller can see derives from :class:`CoworkError`; driver exceptions
(psycopg, sqlite3) are translated at the storage adapter edge and never leak.

::

    CoworkError
    ├── ConfigError                     bad or missing configuration (names the variable)
    ├── ValidationError                 a bad argument: empty/over-long id, wrong type
    │   ├── InvalidExpectedVersion      expected_version is negative, non-integer or a bool
    │   ├── InvalidEventType            an event name or pattern that breaks the grammar
    │   └── PayloadRejected             a payload that cannot be represented or is too big
    ├── PersistenceError                the database said no
    │   ├── PersistenceUnavailable      cannot connect / connection lost / pool timeout
    │   ├── StorageConflict             a unique or serialization conflict (retryable by services)
    │   ├── MigrationError              a migration could not be applied
    │   │   ├── MigrationIntegrityError applied history and files disagree (edited, missing, order)
    │   │   └── MigrationLockTimeout    another process held the migration lock too long
    │   └── SchemaNotReady              the schema is missing or behind (run `cowork migrate`)
    ├── NotFound                        an operation on something that does not exist
    ├── InvalidTransition               a lifecycle move the transition table forbids
    │   └── WorkspaceNotActive          an artifact write to a workspace that is not active
    ├── VersionConflict                 optimistic concurrency lost (carries current_version)
    ├── DefinitionConflict              a workflow version re-registered with other content
    ├── WorkflowError                   a workflow API used where it cannot work (ctx.tx in an
    │                                   action that runs outside any transaction)
    ├── TenantViolation                 an owner or tenant mismatch
    └── RuntimeClosed                   the runtime was used after close()

Messages say what to do. Secrets never appear in them: anything built from a connection
string goes through :func:`cowork.config.redact_url` first.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CoworkError",
    "DefinitionConflict",
    "InvalidEventType",
    "InvalidExpectedVersion",
    "InvalidTransition",
    "MigrationError",
    "MigrationIntegrityError",
    "MigrationLockTimeout",
    "NotFound",
    "PayloadRejected",
    "PersistenceError",
    "PersistenceUnavailable",
    "RuntimeClosed",
    "SchemaNotReady",
    "StorageConflict",
    "TenantViolation",
    "ValidationError",
    "VersionConflict",
    "WorkflowError",
    "WorkspaceNotActive",
]


class CoworkError(Exception):
    """Base class of every error raised by Cowork."""


class ConfigError(CoworkError):
    """The configuration is invalid; the message names the variable or setting."""


class ValidationError(CoworkError, ValueError):
    """An argument is not acceptable (empty, too long, wrong type)."""


class InvalidExpectedVersion(ValidationError):
    """``expected_version`` must be None, 0 or a positive integer (not a bool)."""


class InvalidEventType(ValidationError):
    """An event name or subscription pattern does not follow the grammar."""


class PayloadRejected(ValidationError):
    """A payload cannot be stored: not representable as JSON, or over the size cap."""


class PersistenceError(CoworkError):
    """The database refused or failed an operation."""


class PersistenceUnavailable(PersistenceError):
    """The database cannot be reached (connect failure, lost connection, pool timeout)."""


class StorageConflict(PersistenceError):
    """A uniqueness or serialization conflict; services translate it or retry."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class MigrationError(PersistenceError):
    """A migration file could not be applied."""


class MigrationIntegrityError(MigrationError):
    """The applied migration history disagrees with the migration files."""


class MigrationLockTimeout(MigrationError):
    """The migration lock was not acquired in time; nothing was applied."""


class SchemaNotReady(PersistenceError):
    """The database schema is missing or behind; run ``cowork migrate``."""


class NotFound(CoworkError, LookupError):
    """An operation named something that does not exist."""


class InvalidTransition(CoworkError):
    """The lifecycle transition table does not allow this move."""

    def __init__(self, message: str, *, current: str | None = None, action: str | None = None):
        super().__init__(message)
        self.current = current
        self.action = action


class WorkspaceNotActive(InvalidTransition):
    """Only an ``active`` workspace accepts artifact writes; open it first."""


class VersionConflict(CoworkError):
    """An optimistic write lost: ``current_version`` is the version now stored (None = missing)."""

    def __init__(self, message: str, *, current_version: int | None, expected_version: int | None):
        super().__init__(message)
        self.current_version = current_version
        self.expected_version = expected_version


class DefinitionConflict(CoworkError):
    """A workflow definition version is immutable: register new content as a new version."""


class TenantViolation(CoworkError):
    """A row belongs to another owner or tenant."""


class RuntimeClosed(CoworkError):
    """The runtime was used after it was closed."""


class WorkflowError(CoworkError):
    """A workflow API used where it cannot work; the message says what to use instead."""
