"""publish_many streams large batches to the database in chunks (the database inserts one
while the next is sanitised); the batch stays one all-or-nothing transaction in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import cowork
from cowork import NewEvent
from tests.support.events import read_through


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1") as runtime:
        yield runtime


def _batch(count: int) -> list[NewEvent]:
    return [
        NewEvent(event_type="chunk:item", payload={"i": i, "big": 1e16}, aggregate_id=f"a-{i}")
        for i in range(count)
    ]


async def test_a_batch_of_several_chunks_is_stored_whole_and_in_order(rt: cowork.Runtime) -> None:
    envelopes = await rt.events.publish_many(_batch(450))
    assert [e.payload["i"] for e in envelopes] == list(range(450))
    positions = [e.position for e in envelopes]
    assert positions == sorted(positions) and len(set(positions)) == 450
    stored = await read_through(rt, envelopes[-1])
    assert [e.event_id for e in stored] == [e.event_id for e in envelopes]
    assert [e.payload for e in stored] == [e.payload for e in envelopes]
    assert all(isinstance(e.payload["big"], float) for e in stored)


async def test_a_bad_event_in_a_later_chunk_stores_nothing(rt: cowork.Runtime) -> None:
    events = _batch(350)
    events[320] = NewEvent(event_type="chunk:item", payload={"thing": object()})
    with pytest.raises(cowork.PayloadRejected):
        await rt.events.publish_many(events)
    sentinel = await rt.events.publish("test:sentinel")
    assert await read_through(rt, sentinel) == [sentinel]


async def test_an_id_repeated_across_chunks_is_stored_once(rt: cowork.Runtime) -> None:
    events = _batch(260)
    events[5] = NewEvent(event_type="chunk:item", payload={"i": 5}, event_id="same-id")
    events[250] = NewEvent(event_type="chunk:item", payload={"i": 250}, event_id="same-id")
    envelopes = await rt.events.publish_many(events)
    assert envelopes[5] == envelopes[250]
    assert envelopes[250].payload == {"i": 5}  # the first one stored wins
    stored = await read_through(rt, envelopes[-1])
    assert len(stored) == 259
    again = await rt.events.publish_many([events[250], events[5]])
    assert again == [envelopes[5], envelopes[5]]  # stored before: the originals, not new rows
