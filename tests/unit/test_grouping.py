"""Group commit (cowork.storage.grouping): statements that arrive while a trip is in flight go
together in the next one; a statement error fails only its caller; a lost connection is not
retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from cowork.errors import PersistenceError, PersistenceUnavailable
from cowork.storage.grouping import GroupedTrips
from cowork.storage.port import Database


class FakeDatabase:
    """Records each trip; a trip waits on ``gate`` so that tests decide when it ends."""

    def __init__(self) -> None:
        self.trips: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.bad: set[str] = set()  # statements (by their "n" parameter) the database refuses
        self.unavailable = False

    async def run_in_one_trip(
        self, statements: Sequence[tuple[str, dict[str, Any]]], *, tenant_id: str
    ) -> list[list[dict[str, Any]]]:
        names = [str(params["n"]) for _, params in statements]
        self.trips.append((tenant_id, names))
        self.entered.set()
        await self.gate.wait()
        if self.unavailable:
            raise PersistenceUnavailable("connection lost")
        if self.bad.intersection(names):
            raise PersistenceError("check constraint violated")
        return [[{"n": n, "tenant": tenant_id}] for n in names]


def grouped(db: FakeDatabase, **kwargs: Any) -> GroupedTrips:
    return GroupedTrips(cast(Database, db), **kwargs)


async def test_a_lone_statement_goes_at_once_in_its_own_trip() -> None:
    db = FakeDatabase()
    trips = grouped(db)
    rows = await trips.run("q", {"n": "a"}, tenant_id="t1")
    assert rows == [{"n": "a", "tenant": "t1"}]
    assert db.trips == [("t1", ["a"])]


async def test_statements_arriving_during_a_trip_share_the_next_one() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db)
    first = asyncio.ensure_future(trips.run("q", {"n": "a"}, tenant_id="t1"))
    await db.entered.wait()
    rest = [asyncio.ensure_future(trips.run("q", {"n": n}, tenant_id="t1")) for n in "bcd"]
    await asyncio.sleep(0)
    assert db.trips == [("t1", ["a"])], "a statement went before the trip in flight ended"
    db.gate.set()
    results = await asyncio.gather(first, *rest)
    assert [r[0]["n"] for r in results] == ["a", "b", "c", "d"]
    assert db.trips == [("t1", ["a"]), ("t1", ["b", "c", "d"])]
    assert (trips.trips, trips.statements) == (2, 4)


async def test_tenants_never_share_a_transaction() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db)
    calls = [
        asyncio.ensure_future(trips.run("q", {"n": f"{t}{i}"}, tenant_id=t))
        for i in range(3)
        for t in ("t1", "t2")
    ]
    await asyncio.sleep(0)
    db.gate.set()
    await asyncio.gather(*calls)
    for tenant, names in db.trips:
        assert all(n.startswith(tenant) for n in names), db.trips
    assert sorted(n for _, names in db.trips for n in names) == sorted(
        f"{t}{i}" for i in range(3) for t in ("t1", "t2")
    )


async def test_a_group_is_bounded() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db, max_group=3)
    calls = [asyncio.ensure_future(trips.run("q", {"n": str(i)}, tenant_id="t1")) for i in range(8)]
    await asyncio.sleep(0)
    db.gate.set()
    await asyncio.gather(*calls)
    assert [len(names) for _, names in db.trips] == [3, 3, 2]
    assert [n for _, names in db.trips for n in names] == [str(i) for i in range(8)]


async def test_a_bad_statement_fails_only_its_caller() -> None:
    db = FakeDatabase()
    db.gate.clear()
    db.bad = {"c"}
    trips = grouped(db)
    first = asyncio.ensure_future(trips.run("q", {"n": "a"}, tenant_id="t1"))
    await db.entered.wait()
    rest = {n: asyncio.ensure_future(trips.run("q", {"n": n}, tenant_id="t1")) for n in "bcd"}
    await asyncio.sleep(0)
    db.gate.set()
    assert (await first)[0]["n"] == "a"
    assert (await rest["b"])[0]["n"] == "b"
    assert (await rest["d"])[0]["n"] == "d"
    with pytest.raises(PersistenceError, match="check constraint"):
        await rest["c"]
    # The group was refused as a whole, then each statement went alone.
    assert db.trips[1:] == [("t1", ["b", "c", "d"]), ("t1", ["b"]), ("t1", ["c"]), ("t1", ["d"])]


async def test_a_lost_connection_is_not_retried() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db)
    first = asyncio.ensure_future(trips.run("q", {"n": "a"}, tenant_id="t1"))
    await db.entered.wait()
    rest = [asyncio.ensure_future(trips.run("q", {"n": n}, tenant_id="t1")) for n in "bc"]
    await asyncio.sleep(0)
    db.unavailable = True
    db.gate.set()
    for call in (first, *rest):
        with pytest.raises(PersistenceUnavailable):
            await call
    # Whether a group committed is unknown after a lost connection: never sent twice.
    assert db.trips == [("t1", ["a"]), ("t1", ["b", "c"])]


async def test_a_cancelled_caller_does_not_take_the_others_down() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db)
    first = asyncio.ensure_future(trips.run("q", {"n": "a"}, tenant_id="t1"))
    await db.entered.wait()
    second = asyncio.ensure_future(trips.run("q", {"n": "b"}, tenant_id="t1"))
    await asyncio.sleep(0)
    first.cancel()
    db.gate.set()
    assert (await second)[0]["n"] == "b"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert db.trips == [("t1", ["a"]), ("t1", ["b"])], "the cancelled caller's trip was cut short"


async def test_close_waits_for_the_trip_in_flight() -> None:
    db = FakeDatabase()
    db.gate.clear()
    trips = grouped(db)
    call = asyncio.ensure_future(trips.run("q", {"n": "a"}, tenant_id="t1"))
    await db.entered.wait()
    closing = asyncio.ensure_future(trips.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    db.gate.set()
    await closing
    assert (await call)[0]["n"] == "a"
