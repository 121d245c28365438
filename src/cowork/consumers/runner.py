"""One durable consumer of one tenant, running in this process.

The runner reads the log from its checkpoint, in commit order, and never receives events any
other way: catch-up and live delivery are the same loop, so they cannot race or double-deliver.
At-least-once: the checkpoint moves only after the events before it were handled or parked, and
every checkpoint write is fenced by the lease owner and the consumer's generation (bumped by an
explicit reset), so a process that lost its lease can never move it.

The consumer's row and lease are :mod:`cowork.consumers.lease`; handling one event (retries,
parking, re-drives) is :mod:`cowork.consumers.delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

from cowork.consumers.delivery import Delivery, Handler, pause
from cowork.consumers.lease import ConsumerLease, LeaseLost
from cowork.consumers.options import ConsumerOptions
from cowork.errors import CoworkError, ValidationError
from cowork.events.log import START, Cursor, read_events
from cowork.events.patterns import EventPattern
from cowork.kernel.backoff import backoff_delay
from cowork.kernel.core import Core
from cowork.tenancy import TenantScope

__all__ = ["ConsumerRunner", "LeaseLost"]

_log = logging.getLogger("cowork.consumers")

_EMPTY_PAGE, _PARTIAL_PAGE, _FULL_PAGE = 0, 1, 2
_QUICK_REREAD = 0.002  # after a wake-up that found nothing yet, re-read this soon, doubling
_MAX_RECONNECT_ATTEMPT = 10  # reconnect delays stop growing after this many failures in a row


class ConsumerRunner:
    def __init__(
        self,
        core: Core,
        scope: TenantScope,
        *,
        consumer_id: str,
        pattern: EventPattern,
        handler: Handler,
        transactional: bool,
        start: Literal["beginning", "now"],
        options: ConsumerOptions,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        self.core = core
        self.scope = scope
        self.consumer_id = consumer_id
        self.pattern = pattern
        self.handler = handler
        self.transactional = transactional
        self.start_at = start
        self.options = options
        # A cheap in-memory pre-filter on event types: events it refuses are passed over like
        # non-matching ones (no handler call, no transaction); the checkpoint still moves past
        # them. Commits of only such events (or of non-matching ones) do not wake the runner:
        # it reads past them on its next wake-up or poll.
        self.accepts = accepts
        self.holding = False
        # The last acquire found the lease held by another process (which delivers).
        self.lease_elsewhere = False
        # Set whenever the cursor moves or the loop changes state (drain() waits on it).
        self._progress = asyncio.Event()
        self._cursor: Cursor = START
        self._stop = asyncio.Event()
        self._lease = ConsumerLease(core, scope, consumer_id, options)
        self._delivery = Delivery(
            core,
            scope,
            consumer_id=consumer_id,
            handler=handler,
            transactional=transactional,
            options=options,
            lease=self._lease,
            stop=self._stop,
        )
        self._registered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A registration error is raised by ``await sub``; don't also warn "never retrieved".
        self._registered.add_done_callback(lambda f: f.cancelled() or f.exception() is None or None)
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiter = core.database.wakeups.waiter(scope.tenant_id, wants=self.wants)
        self._last_redrive_check = 0.0

    def wants(self, event_type: str) -> bool:
        """Whether events of this type go to the handler."""
        return self.pattern.matches(event_type) and (
            self.accepts is None or self.accepts(event_type)
        )

    @property
    def handled(self) -> int:
        """Events handled successfully by this process."""
        return self._delivery.handled

    @property
    def parked(self) -> int:
        """Events this process parked after exhausting retries."""
        return self._delivery.parked

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, run: bool) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._main(run), name=f"cowork-consumer-{self.consumer_id}"
        )
        self._task.add_done_callback(lambda _: self._progress.set())

    async def ready(self) -> None:
        await asyncio.shield(self._registered)

    async def wait_caught_up(self, timeout: float) -> None:
        self._caught_up.clear()
        self._waiter.set()
        await asyncio.wait_for(self._caught_up.wait(), timeout)

    async def drain(self, until: Cursor, timeout: float) -> bool:
        """Before a stop: let the loop handle the events up to ``until`` (those committed
        before the runtime began to close), for at most ``timeout`` seconds. Returns at once
        when this process cannot deliver them: no worker here, the loop has ended, or another
        process holds the lease (that process delivers them). True when nothing is left."""
        deadline = time.monotonic() + timeout
        self._waiter.set()  # read now rather than at the next poll
        while True:
            self._progress.clear()
            if self._drained(until):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return self._drained(until)

    def _drained(self, until: Cursor) -> bool:
        if not self.running:
            return True
        if self.lease_elsewhere and not self.holding:
            return True
        return self._cursor >= until

    async def stop(self) -> None:
        self._stop.set()
        self._waiter.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._waiter.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        """True until the runner has stopped (or failed to register)."""
        return not self._stop.is_set() and self._task is not None and not self._task.done()

    # -- main loop ------------------------------------------------------------------------------
    async def _main(self, run: bool) -> None:
        try:
            await self._lease.register(self.pattern, self.start_at)
        except Exception as exc:  # surfaced through ready()/await sub
            if not self._registered.done():
                self._registered.set_exception(exc)
            _log.error("consumer %r could not register: %s", self.consumer_id, exc)
            self._stop.set()
            self._waiter.close()
            return
        self._registered.set_result(None)
        if not run:
            return
        failures = 0
        while not self.stopping:
            try:
                if not await self._acquire():
                    await self._waiter.wait(min(self.options.lease_ttl / 2, 1.0))
                    continue
                failures = 0
                await self._hold()
            except LeaseLost:
                _log.info("consumer %r lost its lease; will try to take it again", self.consumer_id)
            except CoworkError as exc:
                failures += 1
                delay = self.options.backoff(min(failures, _MAX_RECONNECT_ATTEMPT))
                _log.warning("consumer %r: %s; retrying in %.2fs", self.consumer_id, exc, delay)
                await pause(self._stop, delay)
            finally:
                self.holding = False
        await self._lease.release()

    async def _acquire(self) -> bool:
        held = await self._lease.acquire()
        self.lease_elsewhere = held is None
        self._progress.set()
        if held is None:
            return False
        if held.pattern != self.pattern.text:
            raise ValidationError(
                f"consumer {self.consumer_id!r} was reset to pattern {held.pattern!r}; "
                "this process subscribed with another pattern and stops"
            )
        self._cursor = held.cursor
        self._lease.held(held.generation)
        self.holding = True
        return True

    async def _hold(self) -> None:
        lease = self._lease
        heartbeat = asyncio.get_running_loop().create_task(lease.heartbeat())
        try:
            rereads = 0  # quick re-reads since a wake-up that found nothing (0: none pending)
            while not self.stopping:
                lease.check()
                read = await self._process_page()
                await self._maybe_redrive()
                if read == _FULL_PAGE:
                    rereads = 0
                    continue  # more may be there already
                # At the head of the log: wait for a wake-up (commits of wanted types) or the
                # poll, rather than chasing every commit of events this consumer skips.
                self._caught_up.set()
                if read == _PARTIAL_PAGE:
                    rereads = 0
                if lease.unsaved and self._checkpoint_due():
                    await lease.save_checkpoint(self._cursor)
                # Woken but nothing visible yet (an older transaction still open holds the
                # horizon back): re-read soon, backing off to the poll interval.
                timeout = self._reread_delay(rereads) if rereads else self.options.poll_interval
                if lease.unsaved:  # skipped events: their checkpoint goes out in a while
                    timeout = min(timeout, self._checkpoint_wait())
                woken = await self._waiter.wait(timeout)
                if woken:
                    rereads = 1
                elif rereads:
                    rereads += 1
                    if self._reread_delay(rereads) >= self.options.poll_interval:
                        rereads = 0
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if lease.unsaved and not lease.lost:
                with contextlib.suppress(CoworkError, LeaseLost):
                    await lease.save_checkpoint(self._cursor)

    def _reread_delay(self, rereads: int) -> float:
        return backoff_delay(rereads, initial=_QUICK_REREAD, cap=self.options.poll_interval)

    def _checkpoint_due(self) -> bool:
        return time.monotonic() - self._lease.saved_at >= self.options.checkpoint_interval

    def _checkpoint_wait(self) -> float:
        elapsed = time.monotonic() - self._lease.saved_at
        return max(0.001, self.options.checkpoint_interval - elapsed)

    # -- delivery -------------------------------------------------------------------------------
    async def _process_page(self) -> int:
        """Read and handle one page: _EMPTY_PAGE, _PARTIAL_PAGE (the head was reached) or
        _FULL_PAGE. The checkpoint of a page that only skipped events is saved lazily, at
        most ``checkpoint_interval`` later (or when the holder stops): re-reading skipped
        events after a crash costs nothing, writing a checkpoint per page of them does."""
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, read_only=True
        ) as tx:
            page = await read_events(
                tx, self.scope.tenant_id, self._cursor, self.options.batch_size
            )
        if not page:
            return _EMPTY_PAGE
        lease = self._lease
        saved = None if lease.unsaved else self._cursor
        delivered_any = False
        last_save = time.monotonic()
        for envelope in page:
            if self.stopping:
                break
            lease.check()
            if self.wants(envelope.event_type):
                delivered_any = True
                delivered = await self._delivery.deliver(envelope, checkpoint=True)
                if delivered is None:  # stopping mid-retry: leave it for the next holder
                    break
                if delivered is False or self.transactional:
                    saved = envelope.cursor  # committed with the parking or the handler
            self._cursor = envelope.cursor
            self._progress.set()
            if time.monotonic() - last_save > self.options.checkpoint_interval:
                await lease.save_checkpoint(self._cursor)
                saved = self._cursor
                last_save = time.monotonic()
        if saved != self._cursor:
            if delivered_any or self._checkpoint_due():
                await lease.save_checkpoint(self._cursor)
            else:
                lease.unsaved = True
        return _FULL_PAGE if len(page) >= self.options.batch_size else _PARTIAL_PAGE

    async def _maybe_redrive(self) -> None:
        now = time.monotonic()
        if now - self._last_redrive_check < self.options.redrive_interval:
            return
        self._last_redrive_check = now
        await self._delivery.redrive()

    def request_redrive_check(self) -> None:
        """Look for re-driven parked events now (the checkpoint owed for skipped events is
        kept: it is still written within the interval or when the consumer stops)."""
        self._last_redrive_check = 0.0
        self._waiter.set()
