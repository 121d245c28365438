"""The database's clock, as this process sees it.

Leases, heartbeats, timers and timeouts must not depend on a host's clock: a worker whose clock
runs ahead would think a healthy worker's lease had expired and run its step a second time.
Lease expiry is computed by the database itself (``now()`` in the queries); timestamps that
Python computes (a wait's deadline, a retry's wake-up time) come from :class:`DatabaseClock`:
this host's time corrected by its offset from the database server's clock, measured at start
and refreshed every minute. On SQLite the database's clock is this host's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cowork.kernel.database_store import database_time
from cowork.storage.port import Database

__all__ = ["DatabaseClock"]

_REFRESH_SECONDS = 60.0


class DatabaseClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._synced_at = -_REFRESH_SECONDS

    def now(self) -> datetime:
        """The database server's time now (aware UTC)."""
        return datetime.now(UTC) + self.offset

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._synced_at >= _REFRESH_SECONDS

    async def sync(self, database: Database) -> None:
        """Measure the offset: the server's clock against the midpoint of the round trip."""
        before = time.time()
        async with database.transaction(tenant_id=None, read_only=True) as tx:
            server = await database_time(tx)
        after = time.time()
        self._synced_at = time.monotonic()
        if server is not None:
            local = datetime.fromtimestamp((before + after) / 2, UTC)
            self.offset = server.astimezone(UTC) - local
