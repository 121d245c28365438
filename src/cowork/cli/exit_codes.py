"""Exit codes scripts can rely on (documented in the README)."""

from __future__ import annotations

from cowork.errors import (
    ConfigError,
    CoworkError,
    MigrationError,
    NotFound,
    PersistenceUnavailable,
    SchemaNotReady,
    ValidationError,
)

OK = 0
FAILURE = 1  # an operation failed for another reason
USAGE = 2  # bad flag or argument (click's own code)
UNAVAILABLE = 3  # the database cannot be reached
MIGRATIONS = 4  # migrations pending (migrate --check) or history/file mismatch
NOT_FOUND = 5  # the named workspace, artifact or instance does not exist
CONFIG = 6  # invalid configuration


def for_error(exc: CoworkError) -> int:
    if isinstance(exc, PersistenceUnavailable):
        return UNAVAILABLE
    if isinstance(exc, MigrationError | SchemaNotReady):
        return MIGRATIONS
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, ConfigError):
        return CONFIG
    if isinstance(exc, ValidationError):
        return USAGE
    return FAILURE
