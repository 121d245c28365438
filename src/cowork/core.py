"""What every view of one runtime shares: settings, database, buses and workers.

Services receive the core and a tenant scope; they never import the runtime or an adapter.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from cowork.clock import DatabaseClock
from cowork.config import Settings
from cowork.events.bus import LocalBus
from cowork.events.envelope import EventEnvelope
from cowork.events.sanitize import SanitizePolicy
from cowork.ids import new_id
from cowork.migrations import MigrationReport
from cowork.storage.grouping import GroupedTrips
from cowork.storage.port import Database
from cowork.workflows.actions import ActionRegistry

if TYPE_CHECKING:
    from cowork.consumers.manager import ConsumerManager
    from cowork.workflows.manager import WorkflowManager

__all__ = ["Core"]


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
        self._consumers: ConsumerManager | None = None
        self._workflows: WorkflowManager | None = None
        self.actions = ActionRegistry()
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

    @property
    def consumers(self) -> ConsumerManager:
        if self._consumers is None:
            from cowork.consumers.manager import ConsumerManager

            self._consumers = ConsumerManager(self)
        return self._consumers

    @property
    def workflows(self) -> WorkflowManager:
        if self._workflows is None:
            from cowork.workflows.manager import WorkflowManager

            self._workflows = WorkflowManager(self)
        return self._workflows

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
        if self._workflows is not None:
            await self._workflows.close()
        if self._consumers is not None:
            await self._consumers.close()
        await self.bus.close()
        await self.trips.close()
        await self.database.close()
