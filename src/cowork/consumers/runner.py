"""One durable consumer of one tenant, running in this process.

The runner reads the log from its checkpoint, in commit order, and never receives events any
other way: catch-up and live delivery are the same loop, so they cannot race or double-deliver.
At-least-once: the checkpoint moves only after the events before it were handled or parked, and
every checkpoint write is fenced by the lease owner and the consumer's generation (bumped by an
explicit reset), so a process that lost its lease can never move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cowork.consumers.options import ConsumerOptions
from cowork.errors import CoworkError, PersistenceUnavailable, ValidationError
from cowork.events.envelope import EventEnvelope
from cowork.events.log import START, Cursor, envelope_from_row, head_cursor, read_events
from cowork.events.patterns import EventPattern
from cowork.kernel.core import Core
from cowork.kernel.unit import open_transaction
from cowork.logs import describe_error
from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope

__all__ = ["ConsumerRunner", "LeaseLost"]

_log = logging.getLogger("cowork.consumers")
Handler = Callable[..., Awaitable[Any] | Any]


_EMPTY_PAGE, _PARTIAL_PAGE, _FULL_PAGE = 0, 1, 2


class LeaseLost(Exception):
    """This process no longer holds the consumer's lease (or the consumer was reset)."""


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
        self.handled = 0
        self.parked = 0
        self.holding = False
        # The last acquire found the lease held by another process (which delivers).
        self.lease_elsewhere = False
        # Set whenever the cursor moves or the loop changes state (drain() waits on it).
        self._progress = asyncio.Event()
        self._is_async = inspect.iscoroutinefunction(handler)
        self._cursor: Cursor = START
        self._generation = 0
        self._lease_lost = False
        self._stop = asyncio.Event()
        self._registered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A registration error is raised by ``await sub``; don't also warn "never retrieved".
        self._registered.add_done_callback(lambda f: f.cancelled() or f.exception() is None or None)
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiter = core.database.wakeups.waiter(scope.tenant_id, wants=self.wants)
        self._last_redrive_check = 0.0
        self._unsaved = False  # the cursor moved past skipped events; checkpoint not yet saved
        self._last_save = 0.0

    def wants(self, event_type: str) -> bool:
        """Whether events of this type go to the handler."""
        return self.pattern.matches(event_type) and (
            self.accepts is None or self.accepts(event_type)
        )

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

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # -- parameters -----------------------------------------------------------------------------
    def _params(self, **extra: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "tenant_id": self.scope.tenant_id,
            "consumer_id": self.consumer_id,
            "owner": self.core.worker_id,
            "ttl": self.options.lease_ttl,
            "now": now,
            "expires": now + timedelta(seconds=self.options.lease_ttl),
            **extra,
        }

    # -- main loop ------------------------------------------------------------------------------
    async def _main(self, run: bool) -> None:
        try:
            await self._register()
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
                delay = self.options.backoff(min(failures, 10))
                _log.warning("consumer %r: %s; retrying in %.2fs", self.consumer_id, exc, delay)
                await self._sleep(delay)
            finally:
                self.holding = False
        await self._release()

    async def _register(self) -> None:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            start = START
            if self.start_at == "now":
                start = await head_cursor(tx, self.scope.tenant_id)
            await tx.execute(
                "consumer_register",
                self._params(pattern=self.pattern.text, after_tx=start[0], after_position=start[1]),
            )
            row = await tx.fetch_one("consumer_get", self._params())
        assert row is not None
        if row["pattern"] != self.pattern.text:
            raise ValidationError(
                f"consumer {self.consumer_id!r} exists with pattern {row['pattern']!r}, not "
                f"{self.pattern.text!r}; a consumer's pattern is part of its identity: call "
                f"rt.consumers.reset({self.consumer_id!r}, pattern=...) to change it"
            )

    async def _acquire(self) -> bool:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            row = await tx.fetch_one("consumer_acquire", self._params())
        self.lease_elsewhere = row is None
        self._progress.set()
        if row is None:
            return False
        if row["pattern"] != self.pattern.text:
            raise ValidationError(
                f"consumer {self.consumer_id!r} was reset to pattern {row['pattern']!r}; "
                "this process subscribed with another pattern and stops"
            )
        self._cursor = (row["last_tx_id"], row["last_position"])
        self._unsaved = False
        self._generation = row["generation"]
        self._lease_lost = False
        self.holding = True
        return True

    async def _release(self) -> None:
        with contextlib.suppress(CoworkError):
            async with self.core.database.transaction(
                tenant_id=self.scope.tenant_id, appends=False
            ) as tx:
                await tx.execute("consumer_release", self._params())

    async def _hold(self) -> None:
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat())
        try:
            quick = 0.0
            while not self.stopping:
                self._check_lease()
                read = await self._process_page()
                await self._maybe_redrive()
                if read == _FULL_PAGE:
                    quick = 0.0
                    continue  # more may be there already
                # At the head of the log: wait for a wake-up (commits of wanted types) or the
                # poll, rather than chasing every commit of events this consumer skips.
                self._caught_up.set()
                if read == _PARTIAL_PAGE:
                    quick = 0.0
                if self._unsaved and self._checkpoint_due():
                    await self._save_checkpoint(self._cursor)
                # Woken but nothing visible yet (an older transaction still open holds the
                # horizon back): re-read soon, backing off to the poll interval.
                timeout = quick if quick else self.options.poll_interval
                if self._unsaved:  # skipped events: their checkpoint goes out in a while
                    timeout = min(timeout, self._checkpoint_wait())
                woken = await self._waiter.wait(timeout)
                if woken:
                    quick = 0.002
                elif quick:
                    quick = min(quick * 2, self.options.poll_interval)
                    if quick >= self.options.poll_interval:
                        quick = 0.0
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if self._unsaved and not self._lease_lost:
                with contextlib.suppress(CoworkError, LeaseLost):
                    await self._save_checkpoint(self._cursor)

    def _checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_save >= self.options.checkpoint_interval

    def _checkpoint_wait(self) -> float:
        return max(0.001, self.options.checkpoint_interval - (time.monotonic() - self._last_save))

    async def _heartbeat(self) -> None:
        interval = self.options.lease_ttl / 3
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.core.database.transaction(
                    tenant_id=self.scope.tenant_id, appends=False
                ) as tx:
                    renewed = await tx.execute("consumer_heartbeat", self._params())
            except CoworkError as exc:
                _log.warning("consumer %r heartbeat failed: %s", self.consumer_id, exc)
                renewed = -1
            if renewed > 0:
                last_ok = time.monotonic()
            elif renewed == 0 or time.monotonic() - last_ok > self.options.lease_ttl:
                self._lease_lost = True
                return

    def _check_lease(self) -> None:
        if self._lease_lost:
            raise LeaseLost

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
        saved = None if self._unsaved else self._cursor
        delivered_any = False
        last_save = time.monotonic()
        for envelope in page:
            if self.stopping:
                break
            self._check_lease()
            if self.wants(envelope.event_type):
                delivered_any = True
                delivered = await self._deliver(envelope, checkpoint=True)
                if delivered is None:  # stopping mid-retry: leave it for the next holder
                    break
                if delivered is False or self.transactional:
                    saved = envelope.cursor  # committed with the parking or the handler
            self._cursor = envelope.cursor
            self._progress.set()
            if time.monotonic() - last_save > self.options.checkpoint_interval:
                await self._save_checkpoint(self._cursor)
                saved = self._cursor
                last_save = time.monotonic()
        if saved != self._cursor:
            if delivered_any or self._checkpoint_due():
                await self._save_checkpoint(self._cursor)
            else:
                self._unsaved = True
        return _FULL_PAGE if len(page) >= self.options.batch_size else _PARTIAL_PAGE

    async def _deliver(self, envelope: EventEnvelope, *, checkpoint: bool) -> bool | None:
        """Handle with retries. True: handled. False: parked. None: stopped before finishing.

        With ``checkpoint``, a transactional handler's transaction and a parking also move the
        checkpoint to this event (fenced); for a re-drive they resolve the parked row instead.
        """
        error: BaseException | None = None
        attempts = 0
        for attempt in range(1, self.options.max_attempts + 1):
            attempts = attempt
            try:
                if self.transactional:
                    async with open_transaction(self.core, self.scope) as ctx:
                        await self.handler(envelope, ctx)
                        await self._after_handled(ctx.tx, envelope, checkpoint)
                else:
                    await self._call_plain(envelope)
                    if not checkpoint:
                        async with self.core.database.transaction(
                            tenant_id=self.scope.tenant_id
                        ) as tx:
                            await self._after_handled(tx, envelope, checkpoint)
                self.handled += 1
                return True
            except (LeaseLost, PersistenceUnavailable):
                raise  # not the handler's fault: the outer loop backs off and reacquires
            except Exception as exc:
                error = exc
                _log.warning(
                    "consumer %r failed on %s at position %d (attempt %d/%d): %s",
                    self.consumer_id,
                    envelope.event_type,
                    envelope.position,
                    attempt,
                    self.options.max_attempts,
                    describe_error(exc),
                )
                if attempt < self.options.max_attempts:
                    await self._sleep(self.options.backoff(attempt))
                    if self.stopping:
                        return None
                    self._check_lease()
        await self._park(envelope, attempts, error, checkpoint=checkpoint)
        return False

    async def _call_plain(self, envelope: EventEnvelope) -> None:
        if self._is_async:
            await self.handler(envelope)
            return
        result = await asyncio.to_thread(self.handler, envelope)
        if inspect.isawaitable(result):
            await result

    async def _after_handled(
        self, tx: Transaction, envelope: EventEnvelope, checkpoint: bool
    ) -> None:
        if checkpoint:
            await self._save_checkpoint_in(tx, envelope.cursor)
        else:
            await tx.execute("parked_resolve", self._params(position=envelope.position))

    async def _park(
        self,
        envelope: EventEnvelope,
        attempts: int,
        error: BaseException | None,
        *,
        checkpoint: bool,
    ) -> None:
        message = f"{type(error).__name__}: {error}" if error else "unknown error"
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            await tx.execute(
                "parked_upsert",
                self._params(
                    position=envelope.position,
                    event_id=envelope.event_id,
                    attempts=attempts,
                    last_error=message[:4000],
                ),
            )
            if checkpoint:
                await self._save_checkpoint_in(tx, envelope.cursor)
        self.parked += 1
        _log.error(
            "consumer %r parked %s at position %d after %d attempts: %s",
            self.consumer_id,
            envelope.event_type,
            envelope.position,
            attempts,
            describe_error(error) if error else message,
        )

    async def _save_checkpoint(self, cursor: Cursor) -> None:
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            await self._save_checkpoint_in(tx, cursor)

    async def _save_checkpoint_in(self, tx: Transaction, cursor: Cursor) -> None:
        self._unsaved = False
        self._last_save = time.monotonic()
        moved = await tx.execute(
            "consumer_checkpoint",
            self._params(after_tx=cursor[0], after_position=cursor[1], generation=self._generation),
        )
        if moved == 0:
            self._lease_lost = True
            raise LeaseLost

    async def _maybe_redrive(self) -> None:
        now = time.monotonic()
        if now - self._last_redrive_check < self.options.redrive_interval:
            return
        self._last_redrive_check = now
        async with self.core.database.transaction(
            tenant_id=self.scope.tenant_id, appends=False
        ) as tx:
            due = await tx.fetch_all("parked_due_redrive", self._params(limit=50))
            rows = [
                await tx.fetch_one(
                    "event_get_by_position",
                    {"tenant_id": self.scope.tenant_id, "position": r["position"]},
                )
                for r in due
            ]
        for row in rows:
            if row is None or self.stopping:
                continue
            self._check_lease()
            await self._deliver(envelope_from_row(row), checkpoint=False)

    def request_redrive_check(self) -> None:
        self._last_redrive_check = 0.0
        self._unsaved = False  # the cursor moved past skipped events; checkpoint not yet saved
        self._last_save = 0.0
        self._waiter.set()
