"""Translation of sqlite3 exceptions into the Cowork hierarchy (the adapter edge)."""

from __future__ import annotations

import sqlite3

from cowork.errors import (
    CoworkError,
    PayloadRejected,
    PersistenceError,
    PersistenceUnavailable,
    SchemaNotReady,
    StorageConflict,
)

__all__ = ["translate"]


def translate(exc: BaseException) -> CoworkError:
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, sqlite3.IntegrityError):
        if "UNIQUE" in detail or "PRIMARY KEY" in detail:
            return StorageConflict(f"unique constraint violated: {detail}", constraint=detail)
        return PersistenceError(f"SQLite integrity error: {detail}")
    if isinstance(exc, sqlite3.OperationalError):
        if "no such table" in detail or "no such column" in detail:
            return SchemaNotReady(
                f"the database schema is not ready ({detail}); run `cowork migrate`"
            )
        if "locked" in detail or "busy" in detail:
            return StorageConflict(f"SQLite database is busy: {detail}")
        if "unable to open" in detail or "disk I/O" in detail or "readonly" in detail:
            return PersistenceUnavailable(f"SQLite database unavailable: {detail}")
        return PersistenceError(f"SQLite error: {detail}")
    if isinstance(exc, ValueError | TypeError | OverflowError | sqlite3.DataError):
        return PayloadRejected(f"the database rejected a value: {detail}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in detail:
        return PersistenceUnavailable(f"SQLite connection closed: {detail}")
    return PersistenceError(f"SQLite error: {detail}")
