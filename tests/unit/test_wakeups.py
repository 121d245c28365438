"""Typed wake-ups: waiters woken only by the event types they want, the NOTIFY payload that
carries those types between processes, and a durable consumer's wake-up filter."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from cowork.consumers.options import ConsumerOptions
from cowork.consumers.runner import ConsumerRunner
from cowork.events.patterns import EventPattern
from cowork.storage.postgres.notify import _MAX_PAYLOAD, decode_payload, encode_payload
from cowork.storage.wakeup import ALL_TENANTS, LocalWakeups, Waiter
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.kernel.core import Core

# A waiter is checked with a short timeout: a flag that was set returns at once, and one that
# was not costs only this long.
QUIET = 0.02


def workspace_only(event_type: str) -> bool:
    return event_type.startswith("workspace:")


async def woken(waiter: Waiter) -> bool:
    return await waiter.wait(QUIET)


# -- Waiter.offer ---------------------------------------------------------------------------------
async def test_an_offer_wakes_a_waiter_only_when_it_wants_one_of_the_types() -> None:
    hub = LocalWakeups()
    waiter = hub.waiter("t1", wants=workspace_only)
    waiter.offer({"bench:tick", "bench:tock"})
    assert not await woken(waiter), "types it does not want woke it"
    waiter.offer(set())
    assert not await woken(waiter), "an empty set of types woke it"
    waiter.offer({"bench:tick", "workspace:created"})
    assert await woken(waiter), "one wanted type among others must wake it"
    assert not await woken(waiter), "wait() clears the flag"
    waiter.offer(None)
    assert await woken(waiter), "unknown types wake every waiter"


async def test_a_waiter_without_wants_is_woken_by_any_offer() -> None:
    hub = LocalWakeups()
    waiter = hub.waiter("t1")
    waiter.offer({"bench:tick"})
    assert await woken(waiter)
    waiter.offer(None)
    assert await woken(waiter)


async def test_a_waiter_sleeps_until_its_timeout_when_nothing_is_offered() -> None:
    waiter = LocalWakeups().waiter("t1", wants=workspace_only)
    assert await waiter.wait(0.01) is False


# -- LocalWakeups.signal --------------------------------------------------------------------------
async def test_signal_with_types_wakes_only_the_waiters_that_want_them() -> None:
    hub = LocalWakeups()
    workspace = hub.waiter("t1", wants=workspace_only)
    bench = hub.waiter("t1", wants=lambda t: t.startswith("bench:"))
    everything = hub.waiter("t1")
    hub.signal("t1", {"bench:tick"})
    assert [await woken(w) for w in (workspace, bench, everything)] == [False, True, True]
    hub.signal("t1", ["workspace:created", "workspace:member:added"])
    assert [await woken(w) for w in (workspace, bench, everything)] == [True, False, True]


@pytest.mark.parametrize("how", ["no-argument", "none"])
async def test_signal_without_types_wakes_every_waiter_of_the_tenant(how: str) -> None:
    hub = LocalWakeups()
    picky = hub.waiter("t1", wants=lambda t: False)
    workspace = hub.waiter("t1", wants=workspace_only)
    plain = hub.waiter("t1")
    if how == "none":
        hub.signal("t1", None)
    else:
        hub.signal("t1")
    assert [await woken(w) for w in (picky, workspace, plain)] == [True, True, True]


async def test_waiters_of_every_tenant_get_the_offers_of_each_tenant() -> None:
    hub = LocalWakeups()
    star = hub.waiter(ALL_TENANTS, wants=workspace_only)
    star_plain = hub.waiter(ALL_TENANTS)
    hub.signal("t1", {"bench:tick"})
    assert not await woken(star), "the * waiter got a wake-up for types it does not want"
    assert await woken(star_plain)
    hub.signal("t2", {"workspace:created"})
    assert await woken(star) and await woken(star_plain)
    hub.signal("t3")
    assert await woken(star) and await woken(star_plain)


async def test_other_tenants_waiters_are_not_woken() -> None:
    hub = LocalWakeups()
    mine = hub.waiter("t1", wants=workspace_only)
    mine_plain = hub.waiter("t1")
    theirs = hub.waiter("t2", wants=workspace_only)
    theirs_plain = hub.waiter("t2")
    hub.signal("t1", {"workspace:created"})
    assert await woken(mine) and await woken(mine_plain)
    assert not await woken(theirs) and not await woken(theirs_plain)
    hub.signal("t1")
    assert not await woken(theirs) and not await woken(theirs_plain)


async def test_a_closed_waiter_is_no_longer_offered_anything() -> None:
    hub = LocalWakeups()
    waiter = hub.waiter("t1")
    waiter.close()
    hub.signal("t1")
    assert not await woken(waiter)


async def test_wake_all_and_close_wake_even_picky_waiters() -> None:
    hub = LocalWakeups()
    picky = hub.waiter("t1", wants=lambda t: False)
    star = hub.waiter(ALL_TENANTS, wants=lambda t: False)
    hub.wake_all()
    assert await woken(picky) and await woken(star)
    await hub.close()
    assert await woken(picky) and await woken(star)


# -- the NOTIFY payload ---------------------------------------------------------------------------
def test_a_payload_carries_the_tenant_and_its_types() -> None:
    payload = encode_payload("t1", {"workspace:created", "bench:tick", "a.b:c-d"})
    assert payload == "t1 a.b:c-d bench:tick workspace:created", "types are sorted"
    tenant, types = decode_payload(payload)
    assert tenant == "t1"
    assert types is not None and sorted(types) == ["a.b:c-d", "bench:tick", "workspace:created"]
    assert decode_payload(encode_payload("t1", ["x"])) == ("t1", ["x"])


@pytest.mark.parametrize("types", [None, set(), [], ()], ids=["none", "set", "list", "tuple"])
def test_unknown_or_no_types_send_the_tenant_alone(types: Any) -> None:
    assert encode_payload("tenant-a", types) == "tenant-a"
    assert decode_payload("tenant-a") == ("tenant-a", None), "the tenant alone wakes everyone"


def test_too_many_types_send_the_tenant_alone() -> None:
    many = {f"bench:type-{i:05d}" for i in range(1000)}
    assert len(" ".join(("t1", *many)).encode()) > _MAX_PAYLOAD
    assert encode_payload("t1", many) == "t1"
    assert decode_payload(encode_payload("t1", many)) == ("t1", None)


def test_the_payload_limit_is_inclusive() -> None:
    tenant = "t1"
    fits = "x" * (_MAX_PAYLOAD - len(tenant) - 1)  # "t1 xxx…" is exactly _MAX_PAYLOAD bytes
    assert encode_payload(tenant, {fits}) == f"{tenant} {fits}"
    assert len(encode_payload(tenant, {fits}).encode()) == _MAX_PAYLOAD
    assert encode_payload(tenant, {fits + "x"}) == tenant
    assert _MAX_PAYLOAD < 8000, "PostgreSQL refuses payloads of 8000 bytes or more"


async def test_a_decoded_payload_wakes_like_the_signal_it_came_from() -> None:
    hub = LocalWakeups()
    workspace = hub.waiter("t1", wants=workspace_only)
    hub.wake_local(*decode_payload(encode_payload("t1", {"bench:tick"})))
    assert not await woken(workspace)
    hub.wake_local(*decode_payload(encode_payload("t1", {"bench:tick", "workspace:created"})))
    assert await woken(workspace)
    hub.wake_local(*decode_payload(encode_payload("t1", None)))
    assert await woken(workspace)


# -- ConsumerRunner.wants -------------------------------------------------------------------------
def _runner(hub: LocalWakeups, pattern: str, accepts: Any = None) -> ConsumerRunner:
    core = cast("Core", SimpleNamespace(database=SimpleNamespace(wakeups=hub)))

    async def handler(event: Any) -> None:
        return None

    return ConsumerRunner(
        core,
        TenantScope("t1", "owner"),
        consumer_id="c1",
        pattern=EventPattern.parse(pattern),
        handler=handler,
        transactional=False,
        start="beginning",
        options=ConsumerOptions(),
        accepts=accepts,
    )


async def test_a_runner_wants_what_its_pattern_matches_without_a_prefilter() -> None:
    runner = _runner(LocalWakeups(), "workspace:*")
    assert runner.wants("workspace:created")
    assert runner.wants("workspace:member:added")
    assert not runner.wants("bench:tick")
    assert not runner.wants("blackboard:entry:created")


async def test_a_runner_wants_what_both_its_pattern_and_its_prefilter_accept() -> None:
    seen: list[str] = []

    def accepts(event_type: str) -> bool:
        seen.append(event_type)
        return event_type != "workspace:deleted"

    runner = _runner(LocalWakeups(), "workspace:*", accepts)
    assert runner.wants("workspace:created")
    assert not runner.wants("workspace:deleted"), "the pre-filter refused it"
    assert not runner.wants("bench:tick"), "the pattern does not match it"
    assert "workspace:created" in seen and "workspace:deleted" in seen


async def test_a_prefilter_accepting_everything_does_not_widen_the_pattern() -> None:
    runner = _runner(LocalWakeups(), "order:placed", lambda t: True)
    assert runner.wants("order:placed")
    assert not runner.wants("order:paid")


async def test_a_runners_waiter_is_woken_only_by_types_it_wants() -> None:
    hub = LocalWakeups()
    runner = _runner(hub, "workspace:*", lambda t: t != "workspace:deleted")
    waiter = runner._waiter
    hub.signal("t1", {"bench:tick", "workspace:deleted"})
    assert not await woken(waiter), "a commit of only unwanted types woke the runner"
    hub.signal("t1", {"bench:tick", "workspace:created"})
    assert await woken(waiter)
    hub.signal("t1")
    assert await woken(waiter), "a wake-up without types wakes the runner"
    hub.signal("t2", {"workspace:created"})
    assert not await woken(waiter), "another tenant's commit woke the runner"
    waiter.close()


# -- the NOTIFY sender: a burst shares NOTIFYs, nothing is lost ---------------------------------
class _FakeNotifyConnection:
    """Records the payloads each NOTIFY statement would send."""

    def __init__(self, sent: list[list[str]]) -> None:
        self.sent = sent
        self.closed = False
        self.info = SimpleNamespace(backend_pid=4242)

    async def execute(self, query: str, params: dict[str, Any]) -> None:
        self.sent.append(list(params["payloads"]))

    async def close(self) -> None:
        self.closed = True


async def test_a_burst_of_commits_shares_notifies_and_every_type_is_sent() -> None:
    import asyncio

    from cowork.storage.postgres.notify import PostgresWakeups

    sent: list[list[str]] = []

    async def connect() -> Any:
        return _FakeNotifyConnection(sent)

    hub = PostgresWakeups(connect)
    try:
        for i in range(200):
            hub.signal("t1", {f"burst:type{i % 7}"})
            hub.signal("t2", {"other:thing"})
            await asyncio.sleep(0)  # the sender may run between any two commits
        for _ in range(100):
            await asyncio.sleep(0.005)
            if sent and not hub._pending:
                break
    finally:
        await hub.close()
    assert 1 <= len(sent) <= 20, f"{len(sent)} NOTIFY statements for one burst"
    delivered = [decode_payload(p) for batch in sent for p in batch]
    types_t1 = {t for tenant, types in delivered if tenant == "t1" for t in types or ()}
    assert types_t1 == {f"burst:type{i}" for i in range(7)}
    assert any(tenant == "t2" for tenant, _ in delivered)
