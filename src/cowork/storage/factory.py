"""Choose and build the adapter for a database URL."""

from __future__ import annotations

from cowork.config import Settings
from cowork.errors import ConfigError
from cowork.redaction import redact_url
from cowork.storage.port import Database
from cowork.storage.postgres import PostgresDatabase
from cowork.storage.sqlite import SqliteDatabase

__all__ = ["create_database"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEMES = ("sqlite://", "memory://")


def create_database(url: str, settings: Settings) -> Database:
    """The (not yet opened) adapter for ``url``; ConfigError for an unsupported scheme."""
    if url.startswith(_POSTGRES_SCHEMES):
        return PostgresDatabase(
            url,
            pool_min_size=settings.pool_min_size,
            pool_max_size=settings.pool_max_size,
            idle_timeout_seconds=settings.pool_idle_timeout_seconds,
            connect_timeout_seconds=settings.connect_timeout_seconds,
            statement_timeout_seconds=settings.statement_timeout_seconds,
            extra_secrets=settings.secret_values(),
        )
    if url.startswith(_SQLITE_SCHEMES):
        return SqliteDatabase(url, busy_timeout_seconds=settings.connect_timeout_seconds)
    raise ConfigError(
        f"unsupported database URL {redact_url(url)!r}: use postgresql://user@host/db, "
        "sqlite:///path/to/cowork.db or memory:// (set COWORK_DATABASE_URL)"
    )
