"""Storage port contract: every adapter must pass these."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from cowork.errors import PersistenceUnavailable, StorageConflict, TenantViolation
from cowork.storage.port import Database, Json
from cowork.storage.postgres import PostgresDatabase
from cowork.storage.sqlite import SqliteDatabase

JSON_VALUES = [[], ["a"], {}, {"a": []}, {"nested": {"list": [1, "two", None, {}]}}, [[]], "s", 0]


def _snapshot(snapshot_id: str, content: object, tenant: str = "t1") -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "snapshot_id": snapshot_id,
        "workspace_id": "ws",
        "owner_id": "owner",
        "label": None,
        "created_by": "tester",
        "now": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "content": Json(content),
    }


async def _get(db: Database, snapshot_id: str, tenant: str = "t1") -> dict[str, object] | None:
    async with db.transaction(tenant_id=tenant) as tx:
        return await tx.fetch_one("snapshot_get", {"tenant_id": tenant, "snapshot_id": snapshot_id})


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
async def test_json_round_trips_exactly(database: Database, value: object) -> None:
    async with database.transaction(tenant_id="t1") as tx:
        await tx.execute("snapshot_insert", _snapshot("s1", value))
    row = await _get(database, "s1")
    assert row is not None
    assert row["content"] == value
    assert type(row["content"]) is type(value)


async def test_timestamps_round_trip_as_aware_utc(database: Database) -> None:
    async with database.transaction(tenant_id="t1") as tx:
        await tx.execute("snapshot_insert", _snapshot("s1", {}))
    row = await _get(database, "s1")
    assert row is not None
    assert row["created_at"] == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert row["created_at"].utcoffset().total_seconds() == 0  # type: ignore[attr-defined]


async def test_commit_makes_writes_visible(database: Database) -> None:
    async with database.transaction(tenant_id="t1") as tx:
        await tx.execute("snapshot_insert", _snapshot("s1", {"k": 1}))
        inside = await tx.fetch_one("snapshot_get", {"tenant_id": "t1", "snapshot_id": "s1"})
        assert inside is not None
    assert await _get(database, "s1") is not None


async def test_exception_rolls_back(database: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with database.transaction(tenant_id="t1") as tx:
            await tx.execute("snapshot_insert", _snapshot("s1", {"k": 1}))
            raise Boom
    assert await _get(database, "s1") is None


async def test_after_commit_runs_only_after_commit(database: Database) -> None:
    calls: list[str] = []
    async with database.transaction(tenant_id="t1") as tx:
        tx.after_commit(lambda: calls.append("committed"))
        await tx.execute("snapshot_insert", _snapshot("s1", {}))
        assert calls == []
    assert calls == ["committed"]

    with pytest.raises(RuntimeError):
        async with database.transaction(tenant_id="t1") as tx:
            tx.after_commit(lambda: calls.append("rolled back"))
            raise RuntimeError
    assert calls == ["committed"]


async def test_unique_violation_is_a_storage_conflict(database: Database) -> None:
    async with database.transaction(tenant_id="t1") as tx:
        await tx.execute("snapshot_insert", _snapshot("s1", {}))
    with pytest.raises(StorageConflict):
        async with database.transaction(tenant_id="t1") as tx:
            await tx.execute("snapshot_insert", _snapshot("s1", {}))
    # the failed transaction left nothing behind and the adapter still works
    async with database.transaction(tenant_id="t1") as tx:
        await tx.execute("snapshot_insert", _snapshot("s2", {}))
    assert await _get(database, "s2") is not None


async def test_concurrent_transactions_all_commit(database: Database) -> None:
    async def write(i: int) -> None:
        async with database.transaction(tenant_id="t1") as tx:
            await tx.execute("snapshot_insert", _snapshot(f"s{i}", {"i": i}))

    await asyncio.gather(*(write(i) for i in range(25)))
    for i in range(25):
        row = await _get(database, f"s{i}")
        assert row is not None and row["content"] == {"i": i}


async def test_health_reports_healthy_with_latency(database: Database) -> None:
    health = await database.health()
    assert health.healthy is True
    assert health.error is None
    assert health.latency_ms is not None and health.latency_ms >= 0
    assert health.backend == database.backend


async def test_health_after_close_reports_unhealthy_without_raising(database: Database) -> None:
    await database.close()
    health = await database.health()
    if database.backend == "postgresql":
        # A closed pool falls back to a direct probe, which still reaches the server.
        assert health.healthy is True
    else:
        assert health.healthy is False
        assert health.error


async def test_use_after_close_is_a_cowork_error(database: Database) -> None:
    await database.close()
    with pytest.raises(PersistenceUnavailable):
        async with database.transaction(tenant_id="t1") as tx:
            await tx.execute("snapshot_insert", _snapshot("s1", {}))


async def test_unhealthy_postgres_wrong_port_never_raises() -> None:
    db = PostgresDatabase(
        "postgresql://nobody:hunter2pw@127.0.0.1:1/none", connect_timeout_seconds=2
    )
    health = await db.health()
    assert health.healthy is False
    assert health.latency_ms is None
    assert health.error and "hunter2pw" not in health.error


async def test_unopenable_sqlite_is_unavailable(tmp_path: object) -> None:
    # The directory exists (a missing one is a ConfigError) but no file can be created in it.
    db = SqliteDatabase("sqlite:////proc/cowork.db")
    with pytest.raises(PersistenceUnavailable):
        await db.open()
    health = await db.health()
    assert health.healthy is False


async def test_row_level_security_scopes_an_unfiltered_query(database: Database) -> None:
    async with database.transaction(tenant_id="tenant-a") as tx:
        await tx.execute("snapshot_insert", _snapshot("a1", {}, tenant="tenant-a"))
    async with database.transaction(tenant_id="tenant-b") as tx:
        await tx.execute("snapshot_insert", _snapshot("b1", {}, tenant="tenant-b"))
        await tx.execute("snapshot_insert", _snapshot("b2", {}, tenant="tenant-b"))
    async with database.transaction(tenant_id="tenant-a") as tx:
        unfiltered = await tx.fetch_one("snapshot_count_unfiltered")
    async with database.transaction(tenant_id=None) as tx:
        everything = await tx.fetch_one("snapshot_count_unfiltered")
    assert everything == {"n": 3}
    if database.backend == "postgresql":
        # Enforced by the database even though the test connects as a superuser.
        assert unfiltered == {"n": 1}
        with pytest.raises(TenantViolation):
            async with database.transaction(tenant_id="tenant-a") as tx:
                await tx.execute("snapshot_insert", _snapshot("b3", {}, tenant="tenant-b"))
    else:
        assert unfiltered == {"n": 3}  # SQLite has no RLS: services always filter by tenant


# -- one-trip transactions ------------------------------------------------------------------------
async def test_a_one_trip_transaction_runs_its_statements_in_order_and_commits(
    database: Database,
) -> None:
    value = {"quote": "it's", "list": [], "nested": {"n": None}}
    results = await database.run_in_one_trip(
        [
            ("snapshot_insert", _snapshot("s1", value)),
            ("snapshot_get", {"tenant_id": "t1", "snapshot_id": "s1"}),
            ("snapshot_insert", _snapshot("s2", [])),
        ],
        tenant_id="t1",
    )
    assert len(results) == 3
    assert results[1][0]["content"] == value  # a later statement sees an earlier one's write
    assert results[1][0]["created_at"] == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    stored = await _get(database, "s2")
    assert stored is not None and stored["content"] == []


async def test_a_failing_one_trip_transaction_writes_nothing(database: Database) -> None:
    with pytest.raises(StorageConflict):
        await database.run_in_one_trip(
            [
                ("snapshot_insert", _snapshot("s1", {"first": True})),
                ("snapshot_insert", _snapshot("s1", {"duplicate": True})),  # same key
            ],
            tenant_id="t1",
        )
    assert await _get(database, "s1") is None
    # The connection is usable again.
    await database.run_in_one_trip([("snapshot_insert", _snapshot("s3", {}))], tenant_id="t1")
    assert await _get(database, "s3") is not None


async def test_a_one_trip_transaction_is_tenant_scoped(database: Database) -> None:
    await database.run_in_one_trip([("snapshot_insert", _snapshot("s1", {}))], tenant_id="t1")
    [rows] = await database.run_in_one_trip(
        [("snapshot_get", {"tenant_id": "t1", "snapshot_id": "s1"})], tenant_id="t1"
    )
    assert len(rows) == 1
    assert await _get(database, "s1", tenant="t2") is None
