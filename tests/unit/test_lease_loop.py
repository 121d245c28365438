"""The one lease renewal loop (``cowork.kernel.lease.keep_lease``): it renews every third of
the lease, checks in between when asked to, stops when cancelled, and reports a lease taken
away or one left unrenewed for a whole TTL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from cowork.errors import CoworkError, PersistenceUnavailable
from cowork.kernel.lease import LeaseLoss, keep_lease

TTL = 0.3  # renewals every 0.1 s


class Holder:
    """Counts renewals and checks; answers as told."""

    def __init__(self, answers: list[bool | Exception | None] | None = None) -> None:
        self.renewals: list[float] = []
        self.checks: list[float] = []
        self.errors: list[CoworkError] = []
        self.answers = list(answers or [])
        self.renewed = asyncio.Event()

    async def renew(self) -> bool | None:
        self.renewals.append(time.monotonic())
        self.renewed.set()
        if not self.answers:
            return True
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def check(self) -> bool | None:
        self.checks.append(time.monotonic())
        return True

    def failed(self, exc: CoworkError) -> None:
        self.errors.append(exc)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def _cancel(task: asyncio.Task[LeaseLoss]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_it_renews_every_third_of_the_ttl() -> None:
    holder = Holder()
    started = time.monotonic()
    task = asyncio.create_task(keep_lease(holder.renew, ttl=TTL))
    await _until(lambda: len(holder.renewals) >= 4)
    await _cancel(task)
    gaps = [b - a for a, b in zip([started, *holder.renewals], holder.renewals, strict=False)]
    assert all(gap >= TTL / 3 * 0.9 for gap in gaps), gaps  # not more often than that
    assert holder.checks == []


async def test_cancelling_stops_the_renewals() -> None:
    holder = Holder()
    task = asyncio.create_task(keep_lease(holder.renew, ttl=TTL))
    await _until(lambda: len(holder.renewals) >= 1)
    await _cancel(task)
    count = len(holder.renewals)
    await asyncio.sleep(TTL)  # three intervals: a loop still running would renew again
    assert len(holder.renewals) == count
    assert task.cancelled()


async def test_a_renewal_that_finds_the_lease_gone_ends_the_loop() -> None:
    holder = Holder([True, False])
    loss = await asyncio.wait_for(keep_lease(holder.renew, ttl=TTL), 5)
    assert loss is LeaseLoss.TAKEN
    assert len(holder.renewals) == 2


async def test_failed_renewals_end_the_loop_once_a_whole_ttl_has_passed() -> None:
    holder = Holder([PersistenceUnavailable("down")] * 100)
    started = time.monotonic()
    loss = await asyncio.wait_for(keep_lease(holder.renew, ttl=TTL, on_error=holder.failed), 5)
    assert loss is LeaseLoss.LAPSED
    assert time.monotonic() - started > TTL
    assert len(holder.errors) == len(holder.renewals) >= 3  # each failure reported, retried


async def test_a_failed_renewal_followed_by_a_good_one_keeps_the_lease() -> None:
    holder = Holder([PersistenceUnavailable("blip"), True, PersistenceUnavailable("blip")])
    task = asyncio.create_task(keep_lease(holder.renew, ttl=TTL, on_error=holder.failed))
    await _until(lambda: len(holder.renewals) >= 6)
    assert not task.done(), "two failures in a row, each under a TTL, ended the loop"
    await _cancel(task)
    assert len(holder.errors) == 2


async def test_an_error_that_is_not_a_cowork_error_is_not_swallowed() -> None:
    holder = Holder([RuntimeError("bug")])
    with pytest.raises(RuntimeError, match="bug"):
        await asyncio.wait_for(keep_lease(holder.renew, ttl=TTL), 5)


async def test_between_renewals_it_checks_at_each_tick() -> None:
    holder = Holder()
    ttl = 0.6  # renewals every 0.2 s, checks every 0.04 s in between
    task = asyncio.create_task(keep_lease(holder.renew, check=holder.check, ttl=ttl, tick=0.04))
    await _until(lambda: len(holder.renewals) >= 2)
    await _cancel(task)
    assert len(holder.checks) >= 4, (holder.checks, holder.renewals)
    gaps = [b - a for a, b in zip(holder.renewals, holder.renewals[1:], strict=False)]
    assert all(gap >= ttl / 3 * 0.9 for gap in gaps), gaps


async def test_a_check_that_finds_the_lease_gone_ends_the_loop() -> None:
    holder = Holder()

    async def gone() -> bool:
        return False

    loss = await asyncio.wait_for(keep_lease(holder.renew, check=gone, ttl=6.0, tick=0.01), 5)
    assert loss is LeaseLoss.TAKEN
    assert holder.renewals == []


async def test_nothing_held_is_not_a_renewal() -> None:
    """An answer of None (no lease held right now) leaves the last renewal's time: the next
    ticks renew again rather than check, until a renewal answers True."""
    holder = Holder([None, None, None])
    ttl = 0.6  # a renewal is due 0.2 s after the last one; ticks every 0.03 s
    task = asyncio.create_task(keep_lease(holder.renew, check=holder.check, ttl=ttl, tick=0.03))
    await _until(lambda: len(holder.renewals) >= 4)
    await _cancel(task)
    first, fourth = holder.renewals[0], holder.renewals[3]
    assert holder.checks and holder.checks[0] < first, "no checks before the first renewal"
    assert not [c for c in holder.checks if first < c < fourth], "checked after a None"
    assert fourth - first < ttl / 3, "the renewals after a None were not on the next ticks"


async def test_it_waits_for_something_to_hold_before_each_tick() -> None:
    holder = Holder()
    holding = asyncio.Event()
    task = asyncio.create_task(keep_lease(holder.renew, ttl=TTL, wait_for_leases=holding.wait))
    await asyncio.sleep(TTL)
    assert holder.renewals == [], "it renewed while nothing was held"
    holding.set()
    await asyncio.wait_for(holder.renewed.wait(), 5)
    await _cancel(task)
