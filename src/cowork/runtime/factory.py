"""Choose and build the adapter for a database URL."""

from __future__ import annotations

import os

from cowork.config import Settings, default_data_dir
from cowork.errors import ConfigError
from cowork.redaction import redact_url
from cowork.storage.port import Database
from cowork.storage.sqlite import MEMORY, SqliteDatabase, sqlite_path_from_url

__all__ = ["create_database"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEMES = ("sqlite://", "memory://")


def create_database(url: str, settings: Settings) -> Database:
    """The (not yet opened) adapter for ``url``.

    :class:`~cowork.errors.ConfigError` for an unsupported scheme, a malformed SQLite URL, or an
    in-memory database when ``settings.persistence_required`` (the message says what made
    persistence required). A SQLite file's directory must exist, except the default data
    directory, which is created when the database opens.
    """
    if url.startswith(_POSTGRES_SCHEMES):
        # Imported here: psycopg is not loaded by a process that runs on SQLite, and need not
        # be installed for one (it comes with the postgres extra).
        try:
            from cowork.storage.postgres import PostgresDatabase
        except ImportError as exc:
            raise ConfigError(
                f"{redact_url(url)} needs the PostgreSQL driver, which could not be loaded "
                f"({exc}); install the postgres extra and a psycopg implementation: "
                "pip install 'cowork-foundation[postgres]' 'psycopg[binary]' (or [all])"
            ) from None

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
        path = sqlite_path_from_url(url)
        if path == MEMORY and settings.persistence_required:
            raise ConfigError(
                f"persistence is required ({settings.required_reason()}) but "
                f"{redact_url(url)} is an in-memory database (nothing would survive the "
                "process); set COWORK_DATABASE_URL (or --database-url) to postgresql://… or "
                f"sqlite:///path/to/cowork.db{settings.required_remedy()}"
            )
        data_dir = os.path.abspath(default_data_dir(settings.data_dir))
        in_data_dir = path != MEMORY and os.path.dirname(os.path.abspath(path)) == data_dir
        return SqliteDatabase(
            url,
            busy_timeout_seconds=settings.connect_timeout_seconds,
            create_directory=in_data_dir,
        )
    raise ConfigError(
        f"unsupported database URL {redact_url(url)!r}: use postgresql://user@host/db, "
        "sqlite:///path/to/cowork.db or memory:// (set COWORK_DATABASE_URL)"
    )
