"""What every view of one runtime shares: settings, database, buses and workers.

Services receive the core and a tenant scope; they never import the runtime or an adapter.
Domain packages attach what they keep per process (a consumer manager, a workflow manager)
as parts (:meth:`Core.part`), so the core knows none of them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from cowork.config import Settings
from cowork.events.bus import LocalBus
from cowork.events.envelope import EventEnvelope
from cowork.events.sanitize import SanitizePolicy
from cowork.ids import new_id
from cowork.kernel.clock import DatabaseClock
from cowork.kernel.unit import UnitOfWork
from cowork.migrations import MigrationReport
from cowork.storage.grouping import GroupedTrips
from cowork.storage.port import Database

__all__ = ["Core"]

_Part = TypeVar("_Part")


class Core:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        degraded_reason: str | None,
        migrations: MigrationReport | None,
        run_worker: bool,
    ) -> None:
        self.settings = settings
        self.database = database
        # One-statement writes (workflow starts, step checkpoints) of concurrent callers
        # share a transaction (group commit).
        self.trips = GroupedTrips(database)
        self.degraded_reason = degraded_reason
        self.migrations = migrations
        self.run_worker = run_worker
        self.closed = False
        self.bus = LocalBus()
        # Identifies this process's leases: host, pid and a random part (pids are reused).
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        # Per tenant, the commit-order cursor of the last event this process committed: reads
        # wait (briefly) until the horizon has passed it (read-your-writes).
        self.own_heads: dict[str, tuple[int, int]] = {}
        # One instance per core of each part a domain package adds (its consumer manager,
        # workflow manager, action registry), made on first use; see part().
        self._parts: dict[type, object] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # The class open_transaction() makes: the runtime installs its UnitOfWork,
        # which binds the services to the transaction.
        self.context_class: type[UnitOfWork] = UnitOfWork
        self.clock = DatabaseClock()
        # How every event is sanitised (limits and extra secret keys from the settings): over
        # a limit is rejected, unless a caller asks for truncation (then it is recorded in
        # the event's metadata).
        self.event_policy = SanitizePolicy(
            max_bytes=settings.event_max_bytes,
            max_string=settings.event_max_string_length,
            max_depth=settings.event_max_depth,
            extra_secret_keys=frozenset(settings.redact_keys),
        )
        self.truncating_event_policy = replace(self.event_policy, truncate=True)

    def part(self, kind: type[_Part], make: Callable[[Core], _Part]) -> _Part:
        """The one ``kind`` of this core, made by ``make(core)`` on first use. A part with an
        async ``close()`` is closed with the core, in the reverse order of making (so a part
        that makes the parts it needs in its constructor is closed before them)."""
        found = self._parts.get(kind)
        if found is None:
            found = make(self)
            self._parts[kind] = found
            close = getattr(found, "close", None)
            if close is not None:
                self._closers.append(close)
        if not isinstance(found, kind):  # pragma: no cover - part() is the only writer
            raise TypeError(f"core part {kind.__name__} is a {type(found).__name__}")
        return found

    def committed(self, tenant_id: str, envelopes: Sequence[EventEnvelope]) -> None:
        """Events of ``tenant_id`` were committed: feed in-process subscribers, wake consumers."""
        if envelopes:
            head = max(e.cursor for e in envelopes)
            if head > self.own_heads.get(tenant_id, (0, 0)):
                self.own_heads[tenant_id] = head
            self.bus.dispatch(envelopes)
            self.database.wakeups.signal(tenant_id, {e.event_type for e in envelopes})

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for close in reversed(self._closers):
            await close()
        await self.bus.close()
        await self.trips.close()
        await self.database.close()
