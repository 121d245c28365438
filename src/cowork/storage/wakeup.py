"""Wake-ups: telling waiting consumers that a tenant's log may have grown.

A wake-up is only a hint: consumers always read the log from their checkpoint, and they also
poll, so a lost wake-up costs latency, never an event. :class:`LocalWakeups` serves one process
(enough for SQLite and ``memory://``); the PostgreSQL adapter extends it with LISTEN/NOTIFY.

A wake-up may name the event types that were committed. A waiter that gave a ``wants``
predicate is then woken only when one of them is of interest (a consumer of ``workspace:*``
sleeps through a burst of ``bench:*`` events and reads them later, on its poll); a wake-up
without types wakes every waiter of the tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

__all__ = ["ALL_TENANTS", "LocalWakeups", "TypeFilter", "Waiter"]

ALL_TENANTS = "*"

TypeFilter = Callable[[str], bool]


class Waiter:
    """One consumer's wake-up flag for one tenant (or ``*`` for every tenant)."""

    __slots__ = ("_event", "_hub", "tenant_id", "wants")

    def __init__(self, hub: LocalWakeups, tenant_id: str, wants: TypeFilter | None = None) -> None:
        self._hub = hub
        self.tenant_id = tenant_id
        self.wants = wants
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def offer(self, event_types: Collection[str] | None) -> None:
        """Wake if any of ``event_types`` is of interest (always when they are unknown)."""
        wants = self.wants
        if event_types is None or wants is None or any(wants(t) for t in event_types):
            self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken. Clears the flag."""
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                return False
        self._event.clear()
        return True

    def close(self) -> None:
        self._hub.remove(self)


class LocalWakeups:
    """In-process wake-ups."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[Waiter]] = {}

    def waiter(self, tenant_id: str, *, wants: TypeFilter | None = None) -> Waiter:
        waiter = Waiter(self, tenant_id, wants)
        self._waiters.setdefault(tenant_id, set()).add(waiter)
        self._on_first_waiter()
        return waiter

    def remove(self, waiter: Waiter) -> None:
        waiters = self._waiters.get(waiter.tenant_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[waiter.tenant_id]

    def _on_first_waiter(self) -> None:
        """Hook for adapters that listen for other processes."""

    def wake_local(self, tenant_id: str, event_types: Collection[str] | None = None) -> None:
        for waiter in self._waiters.get(tenant_id, ()):
            waiter.offer(event_types)
        for waiter in self._waiters.get(ALL_TENANTS, ()):
            waiter.offer(event_types)

    def wake_all(self) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()

    def signal(self, tenant_id: str, event_types: Collection[str] | None = None) -> None:
        """A transaction that appended events for ``tenant_id`` (of ``event_types``, when
        known) has committed, or a consumer's position changed (no types: wake everyone)."""
        self.wake_local(tenant_id, event_types)

    async def close(self) -> None:
        self.wake_all()
