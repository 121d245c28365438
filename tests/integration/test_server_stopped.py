"""A PostgreSQL server that goes away: health reports it, nothing raises."""

from __future__ import annotations

import pytest

from cowork.errors import PersistenceUnavailable
from cowork.migrations import migrate
from cowork.storage.postgres import PostgresDatabase
from tests.support.postgres import Cluster, db_required, start_throwaway_cluster


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    started = start_throwaway_cluster()
    if started is None:
        if db_required():
            pytest.fail("could not start a throwaway cluster with initdb/pg_ctl")
        pytest.skip("no initdb/pg_ctl to start a throwaway cluster")
    return started


async def test_health_turns_unhealthy_when_the_server_stops_and_recovers(cluster: Cluster) -> None:
    db = PostgresDatabase(cluster.url, connect_timeout_seconds=2, pool_min_size=1)
    await db.open()
    try:
        await migrate(db)
        assert (await db.health()).healthy
        cluster.stop("fast")
        health = await db.health()
        assert health.healthy is False
        assert health.error
        assert health.latency_ms is None
        with pytest.raises(PersistenceUnavailable):
            async with db.transaction(tenant_id="t") as tx:
                await tx.fetch_one("health_check")
        cluster.start()
        # the pool replaces its broken connections by itself
        for _ in range(3):
            if (await db.health()).healthy:
                break
        assert (await db.health()).healthy
        async with db.transaction(tenant_id="t") as tx:
            assert await tx.fetch_one("health_check") == {"ok": 1}
    finally:
        await db.close()
