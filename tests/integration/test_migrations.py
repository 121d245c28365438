"""Migration runner on both backends: apply, check, checksums, concurrent runners."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from cowork.errors import MigrationError, MigrationIntegrityError, MigrationLockTimeout
from cowork.migrations import discover, migrate
from cowork.storage.port import Database
from cowork.storage.postgres.migrations_session import MIGRATION_LOCK_KEY
from tests.conftest import make_database

SEED_TABLES = {
    "cowork_workspace_state",
    "cowork_blackboard_entry",
    "cowork_blackboard_feedback",
    "cowork_workspace_snapshot",
    "cowork_event_log",
    "cowork_event_consumer_checkpoint",
    "cowork_workflow_definition",
    "cowork_workflow_instance",
    "cowork_workflow_history",
}
EXTRA_TABLES = {"cowork_blackboard_entry_version", "cowork_event_parked", "cowork_migrations"}


def _copy_migrations(backend: str, target: Path) -> Path:
    package = "postgres" if backend == "postgresql" else "sqlite"
    source = resources.files(f"cowork.storage.{package}").joinpath("migrations")
    target.mkdir()
    for entry in source.iterdir():
        if entry.name.endswith(".sql"):
            (target / entry.name).write_bytes(entry.read_bytes())
    return target


async def _tables(db: Database) -> set[str]:
    async with db.transaction(tenant_id=None) as tx:
        return {row["name"] for row in await tx.fetch_all("schema_tables")}


async def _ledger(db: Database) -> list[str]:
    async with db.migration_session() as session:
        return [m.name for m in await session.applied()]


@pytest.fixture
async def empty_db(empty_database_url: str):  # type: ignore[no-untyped-def]
    db = make_database(empty_database_url)
    await db.open()
    yield db
    await db.close()


async def test_fresh_database_gets_every_table_and_twice_applies_nothing(
    empty_db: Database,
) -> None:
    first = await migrate(empty_db)
    assert first.applied_now == tuple(f.name for f in discover(empty_db.backend))
    assert await _tables(empty_db) >= SEED_TABLES | EXTRA_TABLES
    second = await migrate(empty_db)
    assert second.applied_now == ()
    assert second.already_applied == first.applied_now
    check = await migrate(empty_db, check_only=True)
    assert check.up_to_date


async def test_check_only_reports_pending_without_applying(empty_db: Database) -> None:
    report = await migrate(empty_db, check_only=True)
    assert report.pending == tuple(f.name for f in discover(empty_db.backend))
    assert await _tables(empty_db) == set()


async def test_edited_applied_file_is_refused_by_name(empty_db: Database, tmp_path: Path) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    await migrate(empty_db, directory=folder)
    path = folder / "0001_initial.sql"
    path.write_text(path.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationIntegrityError, match="0001_initial.sql"):
        await migrate(empty_db, directory=folder)
    with pytest.raises(MigrationIntegrityError, match="0001_initial.sql"):
        await migrate(empty_db, directory=folder, check_only=True)


async def test_crlf_checkout_of_applied_file_is_accepted(
    empty_db: Database, tmp_path: Path
) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    await migrate(empty_db, directory=folder)
    path = folder / "0001_initial.sql"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert path.read_bytes() != original
    report = await migrate(empty_db, directory=folder)
    assert report.applied_now == ()


async def test_deleted_applied_file_is_refused(empty_db: Database, tmp_path: Path) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    (folder / "0900_extra.sql").write_text(
        "CREATE TABLE cowork_extra (tenant_id text PRIMARY KEY);\n"
    )
    await migrate(empty_db, directory=folder)
    (folder / "0900_extra.sql").unlink()
    with pytest.raises(MigrationIntegrityError, match="0900_extra.sql.*missing"):
        await migrate(empty_db, directory=folder)


async def test_new_file_sorting_before_last_applied_is_refused(
    empty_db: Database, tmp_path: Path
) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    (folder / "0900_late.sql").write_text(
        "CREATE TABLE cowork_late (tenant_id text PRIMARY KEY);\n"
    )
    await migrate(empty_db, directory=folder)
    (folder / "0500_early.sql").write_text(
        "CREATE TABLE cowork_early (tenant_id text PRIMARY KEY);\n"
    )
    with pytest.raises(MigrationIntegrityError, match="0500_early.sql"):
        await migrate(empty_db, directory=folder)
    assert "cowork_early" not in await _tables(empty_db)


async def test_failing_file_leaves_no_table_and_no_ledger_row(
    empty_db: Database, tmp_path: Path
) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    (folder / "0900_broken.sql").write_text(
        "CREATE TABLE cowork_half (tenant_id text PRIMARY KEY);\n"
        "INSERT INTO cowork_no_such_table VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match="0900_broken.sql"):
        await migrate(empty_db, directory=folder)
    assert "cowork_half" not in await _tables(empty_db)
    ledger = await _ledger(empty_db)
    assert "0900_broken.sql" not in ledger
    assert "0001_initial.sql" in ledger  # earlier files stay applied: one transaction per file


async def test_no_transaction_marker_runs_outside_a_transaction(
    empty_db: Database, tmp_path: Path
) -> None:
    folder = _copy_migrations(empty_db.backend, tmp_path / "m")
    if empty_db.backend == "postgresql":
        statement = (
            "CREATE INDEX CONCURRENTLY cowork_event_log_type_idx "
            "ON cowork_event_log (tenant_id, event_type);"
        )
    else:
        statement = (
            "CREATE INDEX cowork_event_log_type_idx ON cowork_event_log (tenant_id, event_type);"
        )
    (folder / "0900_concurrent_index.sql").write_text(
        f"-- builds an index without blocking writers\n-- cowork:no-transaction\n{statement}\n"
    )
    report = await migrate(empty_db, directory=folder)
    assert "0900_concurrent_index.sql" in report.applied_now


async def test_concurrent_index_without_marker_fails_cleanly(
    pg_empty_url: str, tmp_path: Path
) -> None:
    db = make_database(pg_empty_url)
    await db.open()
    try:
        folder = _copy_migrations("postgresql", tmp_path / "m")
        (folder / "0900_concurrent_index.sql").write_text(
            "CREATE INDEX CONCURRENTLY cowork_x_idx ON cowork_event_log (tenant_id, event_type);\n"
        )
        with pytest.raises(MigrationError, match="0900_concurrent_index.sql"):
            await migrate(db, directory=folder)
    finally:
        await db.close()


async def test_lock_timeout_fails_closed(pg_empty_url: str) -> None:
    holder = await psycopg.AsyncConnection.connect(pg_empty_url, autocommit=True)
    await holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    db = make_database(pg_empty_url)
    await db.open()
    try:
        with pytest.raises(MigrationLockTimeout):
            await migrate(db, lock_timeout_seconds=0.5)
        assert await _tables(db) == set()
        await holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
        assert (await migrate(db)).applied_now
    finally:
        await db.close()
        await holder.close()


def test_eight_processes_migrate_one_fresh_database(pg_empty_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cowork", "--database-url", pg_empty_url, "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    results = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0] * 8, results
    with psycopg.connect(pg_empty_url) as conn:
        rows = conn.execute("SELECT name, count(*) FROM cowork_migrations GROUP BY name").fetchall()
    expected = {f.name for f in discover("postgresql")}
    assert {name for name, _ in rows} == expected
    assert all(count == 1 for _, count in rows)


def test_cli_migrate_check_exit_codes(pg_empty_url: str) -> None:
    cmd = [sys.executable, "-m", "cowork", "--database-url", pg_empty_url, "migrate"]
    pending = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert pending.returncode == 4, pending.stderr
    assert "0001_initial.sql" in pending.stdout
    applied = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stderr
    clean = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stderr


def test_migration_files_are_shipped_for_both_backends() -> None:
    pg = [f.name for f in discover("postgresql")]
    lite = [f.name for f in discover("sqlite")]
    assert pg == lite and pg, "every migration needs a twin on the other backend"
    assert shutil.which  # keep import used in the helper above
