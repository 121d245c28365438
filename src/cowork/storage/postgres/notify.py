"""LISTEN/NOTIFY wake-ups across processes.

NOTIFY is sent after commit, from a dedicated connection, coalesced per tenant: sending it inside
the writer's transaction would take PostgreSQL's global notify lock at commit and serialise every
publishing transaction. The listener re-LISTENs after its connection drops (server restart,
``pg_terminate_backend``) and then wakes every local waiter, so events published meanwhile are
read from the log.

A payload is the tenant id, then the committed event types separated by spaces (neither may
contain a space), so listeners wake only the waiters those types interest; a payload with the
tenant alone wakes them all. A process ignores its own notifications: it woke its local waiters
when it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

import psycopg

from cowork.storage.wakeup import LocalWakeups

if TYPE_CHECKING:
    from psycopg.rows import DictRow

__all__ = ["CHANNEL", "PostgresWakeups"]

CHANNEL = "cowork_events"
_log = logging.getLogger("cowork.wakeups")
_NOTIFY_INTERVAL = 0.002  # seconds between two NOTIFYs of this process (at most 500/s)
_MAX_PAYLOAD = 7900  # PostgreSQL refuses payloads of 8000 bytes or more

Connect = Callable[[], Awaitable["psycopg.AsyncConnection[DictRow]"]]


class PostgresWakeups(LocalWakeups):
    def __init__(self, connect: Connect, *, retry_seconds: float = 0.5) -> None:
        super().__init__()
        self._connect = connect
        self._retry = retry_seconds
        self._pending: dict[str, set[str] | None] = {}
        self._notifier_pid: int | None = None
        self._notify_event = asyncio.Event()
        self._notifier: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listen_conn: psycopg.AsyncConnection[DictRow] | None = None
        self._closed = False
        self.listening = asyncio.Event()  # set while a LISTEN is active (tests wait on it)

    # -- sending ------------------------------------------------------------------------------
    def signal(self, tenant_id: str, event_types: Collection[str] | None = None) -> None:
        self.wake_local(tenant_id, event_types)
        if self._closed:
            return
        if tenant_id not in self._pending:
            self._pending[tenant_id] = None if event_types is None else set(event_types)
        else:
            known = self._pending[tenant_id]
            if known is not None and event_types is not None:
                known.update(event_types)
            else:
                self._pending[tenant_id] = None
        self._notify_event.set()
        if self._notifier is None or self._notifier.done():
            self._notifier = asyncio.get_running_loop().create_task(
                self._notify_loop(), name="cowork-notify"
            )

    async def _notify_loop(self) -> None:
        conn: psycopg.AsyncConnection[DictRow] | None = None
        try:
            while not self._closed:
                await self._notify_event.wait()
                self._notify_event.clear()
                pending, self._pending = self._pending, {}
                if not pending:
                    continue
                payloads = [encode_payload(t, pending[t]) for t in sorted(pending)]
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect()
                        self._notifier_pid = conn.info.backend_pid
                    await conn.execute(
                        "SELECT pg_notify(%(channel)s, t) FROM unnest(%(payloads)s::text[]) AS t",
                        {"channel": CHANNEL, "payloads": payloads},
                    )
                    # A burst of commits shares one NOTIFY per interval; a lone commit's
                    # NOTIFY still goes out at once.
                    await asyncio.sleep(_NOTIFY_INTERVAL)
                except Exception as exc:
                    # Other processes fall back to polling; local waiters were already woken.
                    _log.warning("could not send wake-up NOTIFY: %s", type(exc).__name__)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(self._retry)
        finally:
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    # -- receiving ----------------------------------------------------------------------------
    def _on_first_waiter(self) -> None:
        if self._closed or (self._listener is not None and not self._listener.done()):
            return
        self._listener = asyncio.get_running_loop().create_task(
            self._listen_loop(), name="cowork-listen"
        )

    async def _listen_loop(self) -> None:
        while not self._closed:
            try:
                conn = await self._connect()
            except Exception as exc:
                _log.warning("LISTEN connection failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._retry)
                continue
            self._listen_conn = conn
            try:
                await conn.execute(f"LISTEN {CHANNEL}".encode())
                self.listening.set()
                self.wake_all()  # anything published while we were not listening
                async for notify in conn.notifies():
                    if notify.pid != self._notifier_pid:
                        self.wake_local(*decode_payload(notify.payload))
            except (psycopg.Error, OSError) as exc:
                if not self._closed:
                    _log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
            finally:
                self.listening.clear()
                self._listen_conn = None
                with contextlib.suppress(psycopg.Error, OSError):
                    await conn.close()
            if not self._closed:
                await asyncio.sleep(self._retry)

    async def listener_backend_pid(self) -> int | None:
        """The server pid of the LISTEN connection (for tests and diagnostics)."""
        conn = self._listen_conn
        return None if conn is None else conn.info.backend_pid

    async def close(self) -> None:
        self._closed = True
        self._notify_event.set()
        for task in (self._listener, self._notifier):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await super().close()


def encode_payload(tenant_id: str, event_types: Collection[str] | None) -> str:
    """``tenant type type ...``; the tenant alone when the types are unknown or too many."""
    if not event_types:
        return tenant_id
    payload = " ".join((tenant_id, *sorted(event_types)))
    return payload if len(payload.encode()) <= _MAX_PAYLOAD else tenant_id


def decode_payload(payload: str) -> tuple[str, list[str] | None]:
    tenant_id, *event_types = payload.split(" ")
    return tenant_id, event_types or None
