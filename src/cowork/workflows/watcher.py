"""The executor's watcher: keeps the leases of the steps running in this process
(:func:`~cowork.kernel.lease.keep_lease`) and takes away the ones that are no longer ours.

Every third of the lease it renews them all in one statement (database time); in between,
twice a second, it checks that each is still leased to us and active. A step that was
cancelled, ended elsewhere or taken over by another worker has its action cancelled (it sees
``CancelledError``); when no renewal has succeeded for a whole lease, every step it was
watching is cancelled, since another worker may have claimed them by then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cowork.errors import CoworkError
from cowork.kernel.lease import keep_lease
from cowork.kernel.unit import open_transaction
from cowork.tenancy import TenantScope
from cowork.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from cowork.kernel.core import Core

__all__ = ["WATCH_INTERVAL", "LeaseWatcher"]

_log = logging.getLogger("cowork.workflows")
WATCH_INTERVAL = 0.5  # how often running steps are checked for a cancel or a lost lease
_TAKEN_AWAY = "cancelled, ended or taken over"


class LeaseWatcher:
    def __init__(
        self,
        core: Core,
        scope: TenantScope,
        running: Mapping[str, object],
        has_running: asyncio.Event,
        cancel: Callable[[str, str], None],
    ) -> None:
        self.core = core
        self.scope = scope
        self._running = running  # instance id -> its lane, as the executor keeps them
        self._has_running = has_running
        self._cancel = cancel
        self._watched: list[str] = []  # the steps of the last renewal or check

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await keep_lease(
                self._renew,
                check=self._check,
                ttl=self.core.settings.workflow_lease_seconds,
                tick=WATCH_INTERVAL,
                wait_for_leases=self._has_running.wait,
                on_error=self._failed,
            )
            # Not renewed for a whole lease: other workers may have the steps now.
            for instance_id in self._watched:
                self._cancel(instance_id, _TAKEN_AWAY)

    async def _renew(self) -> bool | None:
        return await self._still_ours(renew=True)

    async def _check(self) -> bool | None:
        return await self._still_ours(renew=False)

    async def _still_ours(self, *, renew: bool) -> bool | None:
        """Renew (or only check) the leases of the running steps; cancel the ones not held."""
        ids = self._watched = sorted(self._running)
        if not ids:
            return None
        owner = self.core.worker_id
        async with open_transaction(
            self.core, self.scope, read_only=not renew, appends=False
        ) as ctx:
            store = WorkflowStore(ctx.tx, self.scope)
            if renew:
                held = await store.heartbeat(
                    ids,
                    owner,
                    self.core.settings.workflow_lease_seconds,
                    at=self.core.clock.now(),
                )
            else:
                held = await store.still_held(ids, owner)
        for instance_id in ids:
            if instance_id not in held:
                self._cancel(instance_id, _TAKEN_AWAY)
        return True

    def _failed(self, exc: CoworkError) -> None:
        _log.warning("workflow leases (%s): %s", self.scope.tenant_id, exc)
