"""Test harness: PostgreSQL discovery, per-test databases, and the two-backend contract fixture.

Every test that takes ``database`` (or ``database_url``) runs once on SQLite and once on
PostgreSQL. Without a reachable PostgreSQL the PostgreSQL half skips, unless ``CI=true`` or
``COWORK_INTEGRATION_REQUIRE_DB=true`` (or its older name ``COWORK_INTEGRATION_REQUIRE_DOCKER``),
where it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cowork.migrations import migrate
from cowork.storage.port import Database
from cowork.storage.postgres import PostgresDatabase
from cowork.storage.sqlite import SqliteDatabase
from tests.support.postgres import DatabaseFactory, db_required, find_server

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

_server: tuple[str | None, str] | None = None


def _pg_server() -> tuple[str | None, str]:
    global _server
    if _server is None:
        _server = find_server()
    return _server


def pytest_report_header(config: pytest.Config) -> str:
    url, how = _pg_server()
    required = " (required)" if db_required() else ""
    return f"cowork PostgreSQL{required}: {how if url else 'NONE: ' + how}"


@pytest.fixture(scope="session")
def pg_factory() -> DatabaseFactory:
    url, how = _pg_server()
    if url is None:
        if db_required():
            pytest.fail(
                f"PostgreSQL is required (CI=true or COWORK_INTEGRATION_REQUIRE_DB) "
                f"but none was found: {how}"
            )
        pytest.skip(f"no PostgreSQL available: {how}")
    return DatabaseFactory(url)


@pytest.fixture
def pg_url(pg_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (cloned from the template)."""
    url = pg_factory.create(migrated=True)
    yield url
    pg_factory.drop(url)


@pytest.fixture
def pg_empty_url(pg_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema at all."""
    url = pg_factory.create(migrated=False)
    yield url
    pg_factory.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh (empty) SQLite file URL."""
    return f"sqlite:///{tmp_path / 'cowork.db'}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database URL on each backend."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'contract.db'}"


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An unmigrated database URL on each backend."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_empty_url")
        return url
    return f"sqlite:///{tmp_path / 'empty.db'}"


def make_database(url: str) -> Database:
    if url.startswith("postgresql"):
        return PostgresDatabase(url, pool_min_size=1, pool_max_size=20)
    return SqliteDatabase(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open, migrated storage adapter on each backend."""
    db = make_database(database_url)
    await db.open()
    await migrate(db)
    try:
        yield db
    finally:
        await db.close()
