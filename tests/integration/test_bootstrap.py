"""cowork.open(): required mode, degradation, default database."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import cowork
from cowork.errors import (
    ConfigError,
    MigrationIntegrityError,
    PersistenceUnavailable,
    SchemaNotReady,
)

UNREACHABLE = "postgresql://agent:s3cr3t-pa55word@127.0.0.1:1/cowork"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "COWORK_DATABASE_URL",
        "COWORK_PERSISTENCE_CONNECTION_STRING",
        "COWORK_PERSISTENCE_REQUIRED",
        "COWORK_CONFIG_FILE",
        "COWORK_TENANT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COWORK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COWORK_PERSISTENCE_CONNECT_TIMEOUT_SECONDS", "2")


async def test_required_and_unreachable_fails_fast_with_reason_and_no_password() -> None:
    with pytest.raises(PersistenceUnavailable) as info:
        await cowork.open(UNREACHABLE, required=True)
    message = str(info.value)
    assert "required" in message
    assert "Connection refused" in message or "connection" in message.lower()
    assert "s3cr3t-pa55word" not in message
    assert "s3cr3t-pa55word" not in repr(info.value)


async def test_required_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COWORK_PERSISTENCE_REQUIRED", "YES")
    monkeypatch.setenv("COWORK_PERSISTENCE_CONNECTION_STRING", UNREACHABLE)
    with pytest.raises(PersistenceUnavailable, match="required"):
        await cowork.open()


async def test_required_with_memory_only_configuration_is_an_error() -> None:
    with pytest.raises(ConfigError, match="memory"):
        await cowork.open("memory://", required=True)


async def test_not_required_and_unreachable_degrades_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rt = await cowork.open(UNREACHABLE)
    async with rt:
        assert rt.durable is False
        assert rt.degraded_reason and "127.0.0.1" in rt.degraded_reason
        assert "s3cr3t-pa55word" not in rt.degraded_reason
        assert (await rt.health()).healthy
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "MEMORY" in warnings[0].getMessage()
    assert all("s3cr3t-pa55word" not in r.getMessage() for r in caplog.records)


async def test_default_database_is_a_durable_sqlite_file(tmp_path: Path) -> None:
    async with await cowork.open() as rt:
        assert rt.backend == "sqlite"
        assert rt.durable is True
        assert rt.degraded_reason is None
        assert rt.migrations is not None and rt.migrations.schema_version
    assert (tmp_path / "data" / "cowork.db").exists()


async def test_required_with_sqlite_file_is_fine(tmp_path: Path) -> None:
    async with await cowork.open(f"sqlite:///{tmp_path / 'x.db'}", required=True) as rt:
        assert rt.durable


async def test_postgres_open_migrates_and_reports_durable(pg_empty_url: str) -> None:
    async with await cowork.open(pg_empty_url, required=True) as rt:
        assert rt.backend == "postgresql"
        assert rt.durable
        assert rt.migrations is not None and rt.migrations.applied_now
        assert (await rt.health()).healthy


async def test_required_and_unmigratable_fails_with_reason(pg_empty_url: str) -> None:
    async with await cowork.open(pg_empty_url):
        pass
    import psycopg

    with psycopg.connect(pg_empty_url, autocommit=True) as conn:
        conn.execute("UPDATE cowork_migrations SET checksum = 'tampered'")
    with pytest.raises(MigrationIntegrityError, match="required.*0001_initial.sql"):
        await cowork.open(pg_empty_url, required=True)


async def test_auto_migrate_off_and_schema_behind_says_run_migrate(pg_empty_url: str) -> None:
    with pytest.raises(SchemaNotReady, match="cowork migrate"):
        await cowork.open(pg_empty_url, auto_migrate=False)


async def test_for_tenant_shares_the_database(tmp_path: Path) -> None:
    async with await cowork.open(f"sqlite:///{tmp_path / 'x.db'}", tenant_id="acme") as rt:
        other = rt.for_tenant("globex", owner_id="owner-g")
        assert (rt.tenant_id, other.tenant_id, other.owner_id) == ("acme", "globex", "owner-g")
        assert other._core.database is rt._core.database


async def test_closed_runtime_refuses_use(tmp_path: Path) -> None:
    rt = await cowork.open(f"sqlite:///{tmp_path / 'x.db'}")
    await rt.close()
    with pytest.raises(cowork.RuntimeClosed):
        _ = rt.events
