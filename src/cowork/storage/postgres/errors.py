"""Translation of psycopg exceptions into the Cowork hierarchy (the adapter edge)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
import psycopg.errors as pg_errors
import psycopg_pool

from cowork.errors import (
    CoworkError,
    PayloadRejected,
    PersistenceError,
    PersistenceUnavailable,
    SchemaNotReady,
    StorageConflict,
    TenantViolation,
)
from cowork.redaction import scrub

__all__ = ["translate"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: BaseException, *, secrets: Iterable[str] = ()) -> CoworkError:
    """Map a driver exception to a CoworkError whose message holds no secret."""
    detail = scrub(_first_line(exc), secrets)
    if isinstance(exc, UnicodeError):
        return PayloadRejected(f"a value is not valid Unicode (lone surrogate?): {detail}")
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return PersistenceUnavailable(
            f"no PostgreSQL connection became available in time ({detail}); "
            "check that the server is up or raise COWORK_PERSISTENCE_POOL_SIZE"
        )
    if isinstance(exc, pg_errors.UniqueViolation):
        constraint = exc.diag.constraint_name
        return StorageConflict(f"unique constraint {constraint} violated", constraint=constraint)
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return StorageConflict(f"concurrent update conflict: {detail}")
    if isinstance(exc, pg_errors.LockNotAvailable):
        return StorageConflict(f"lock not available: {detail}")
    if isinstance(exc, pg_errors.InsufficientPrivilege) and "row-level security" in detail:
        return TenantViolation(f"write outside the transaction's tenant refused: {detail}")
    if isinstance(exc, pg_errors.QueryCanceled):
        return PersistenceError(
            f"statement cancelled ({detail}); raise COWORK_PERSISTENCE_STATEMENT_TIMEOUT_SECONDS "
            "if this work is expected to take longer"
        )
    if isinstance(
        exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn | pg_errors.UndefinedFunction
    ):
        return SchemaNotReady(f"the database schema is not ready ({detail}); run `cowork migrate`")
    if isinstance(exc, psycopg.DataError):
        return PayloadRejected(f"the database rejected a value: {detail}")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return PersistenceUnavailable(f"PostgreSQL is unavailable: {detail}")
    return PersistenceError(f"PostgreSQL error: {detail}")
