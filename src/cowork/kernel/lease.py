"""Keeping a lease: the one renewal loop of every lease holder (a durable consumer's lease on
its checkpoint row, the workflow executor's leases on the steps it runs).

A lease lasts ``ttl`` seconds from its last renewal. The loop renews it every third of that,
so that a renewal may fail twice before the lease lapses. A holder that must notice sooner
that a lease was taken away (a cancelled workflow step) runs a cheaper ``check`` every
``tick`` in between. The loop ends, and reports the loss, when a renewal or a check answers
that the lease is not held any more, or when no renewal has succeeded for a whole ``ttl``
(the database could not be reached: another holder may have taken the lease meanwhile).
Cancelling the task that runs it stops it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable

from cowork.errors import CoworkError

__all__ = ["LeaseLoss", "Renewal", "keep_lease"]

# Answers True (held, renewed or checked), False (no longer held) or None (nothing is held
# right now: nothing was renewed, and the time of the last renewal stays).
Renewal = Callable[[], Awaitable[bool | None]]


class LeaseLoss(enum.Enum):
    """Why :func:`keep_lease` ended."""

    TAKEN = "taken"  # a renewal or check answered that the lease is not ours any more
    LAPSED = "lapsed"  # renewals failed for a whole ttl


async def keep_lease(
    renew: Renewal,
    *,
    ttl: float,
    check: Renewal | None = None,
    tick: float | None = None,
    wait_for_leases: Callable[[], Awaitable[object]] | None = None,
    on_error: Callable[[CoworkError], None] | None = None,
) -> LeaseLoss:
    """Renew every third of ``ttl`` until the lease is lost (the reason is returned) or the
    task is cancelled. With ``check``, the loop wakes every ``tick`` seconds and checks when
    no renewal is due; without, every tick (a third of ``ttl`` by default) renews.
    ``wait_for_leases`` is awaited before each tick (an executor running no step sleeps
    there). A :class:`CoworkError` from ``renew`` or ``check`` goes to ``on_error`` and the
    loop goes on, until the last successful renewal is a whole ``ttl`` old."""
    interval = ttl / 3
    period = interval if tick is None else tick
    renewed_at = time.monotonic()
    while True:
        if wait_for_leases is not None:
            await wait_for_leases()
        await asyncio.sleep(period)
        call = renew
        if check is not None and time.monotonic() - renewed_at < interval:
            call = check
        try:
            held = await call()
        except CoworkError as exc:
            if on_error is not None:
                on_error(exc)
            if time.monotonic() - renewed_at > ttl:
                return LeaseLoss.LAPSED
            continue
        if held is False:
            return LeaseLoss.TAKEN
        if held and call is renew:
            renewed_at = time.monotonic()
