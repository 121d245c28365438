"""Hostile input for durable consumers: ``rt.events.subscribe(..., consumer_id=...)`` and
``rt.consumers`` (list/parked/redrive/reset).

A model of every registered consumer (per tenant) and its pattern predicts the answers: a
pattern is part of a consumer's identity, positions of another tenant's log are unknown here,
and a consumer of one tenant is invisible to the others. One consumer parks every event whose
payload says ``fail`` so that parked events exist to list and re-drive.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import strategies as st

import cowork
from tests.hostile.harness import SENTINEL, Harness, hostile_run, tenant_view
from tests.hostile.strategies import Arg, Drawer, ids, junk, patterns

MAX_RUNNING = 4
PARKER = "parker"


def _model(h: Harness) -> dict[tuple[str, str], str]:
    model: dict[tuple[str, str], str] = h.state.setdefault("consumers", {})
    return model


async def _failing(event: cowork.EventEnvelope) -> None:
    if event.payload.get("fail"):
        raise RuntimeError("this event always fails (hostile test)")


async def setup(h: Harness) -> None:
    h.state["running"] = []
    sentinel = h.rt.for_tenant(SENTINEL)
    h.state["sentinel_positions"] = [e.position for e in await sentinel.events.read(limit=50)]
    for i in range(6):
        await h.rt.events.publish("hostile:seed", {"i": i, "fail": i % 2 == 0})
    sub = await h.rt.events.subscribe("hostile:*", _failing, consumer_id=PARKER, max_attempts=1)
    h.state["parker"] = sub
    _model(h)[("hostile", PARKER)] = "hostile:*"
    deadline = time.monotonic() + 30
    while len(await h.rt.consumers.parked(PARKER)) < 3:
        if time.monotonic() > deadline:
            raise AssertionError("the parking consumer never parked its failing events")
        await asyncio.sleep(0.05)


def _pick_consumer(h: Harness, d: Drawer) -> Arg:
    kind, index = d.raw(st.tuples(st.sampled_from(["known", "known", "other"]), st.integers()))
    other = d(ids)
    known = sorted(cid for (_, cid) in _model(h))
    if kind == "known" and known:
        return Arg(known[index % len(known)], True)
    return other


def _handler(kind: str) -> Any:
    async def plain(event: cowork.EventEnvelope) -> None:
        return None

    async def transactional(event: cowork.EventEnvelope, tx: cowork.TransactionContext) -> None:
        return None

    def sync(event: cowork.EventEnvelope) -> None:
        return None

    return {
        "async": plain,
        "tx": transactional,
        "sync": sync,
        "junk": "not callable",
        "failing": _failing,
    }[kind]


async def _subscribe(rt: cowork.Runtime, pattern: Any, handler: Any, **kwargs: Any) -> Any:
    subscription = rt.events.subscribe(pattern, handler, **kwargs)
    if kwargs.get("consumer_id") is None:  # an in-process subscription: nothing durable
        await subscription.stop()
        return None
    return await subscription


async def _stop(subscription: Any) -> None:
    await subscription.stop()


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(st.sampled_from(["subscribe", "subscribe", "list", "parked", "redrive", "reset"]))
    publish = d.raw(st.integers(0, 9)) == 0
    if publish:
        h.read("publish", rt.events.publish, "hostile:seed", {"fail": True})
    model = _model(h)
    if op == "subscribe":
        pattern = d(patterns)
        consumer = _pick_consumer(h, d)
        start = d.raw(
            st.one_of(st.sampled_from(["beginning", "now"]), st.sampled_from(["end", "", 0, None]))
        )
        transactional = d.raw(st.sampled_from([None, None, True, False, "yes", 1]))
        attempts = d.raw(st.sampled_from([None, None, 1, 3, 0, -1, 2**70, "3", 1.5, True]))
        handler_kind = d.raw(st.sampled_from(["async", "async", "tx", "sync", "junk", "failing"]))
        kwargs: dict[str, Any] = {"consumer_id": consumer.value, "start": start}
        if transactional is not None:
            kwargs["transactional"] = transactional
        if attempts is not None:
            kwargs["max_attempts"] = attempts
        out = h.call(
            "events.subscribe (durable)",
            _subscribe,
            rt,
            pattern.value,
            _handler(handler_kind),
            **kwargs,
        )
        key = (tenant, consumer.value) if isinstance(consumer.value, str) else None
        existing = model.get(key) if key else None
        if out.ok and consumer.value is None:
            pass
        elif out.ok:
            subscription = out.value
            h.check(
                pattern.valid is True and consumer.valid is True and handler_kind != "junk",
                "events.subscribe (durable)",
                f"accepted pattern {pattern.value!r}, id {consumer.value!r}, {handler_kind}",
            )
            if existing is not None:
                h.same(
                    pattern.value,
                    existing,
                    "a consumer's pattern is part of its identity",
                    consumer.value,
                )
            if key is not None:
                model[key] = pattern.value
            running: list[Any] = h.state["running"]
            running.append(subscription)
            while len(running) > MAX_RUNNING:
                h.read("stop", _stop, running.pop(0))
        elif (
            existing is None
            and pattern.valid
            and consumer.valid
            and handler_kind in ("async", "sync", "failing")
            and start in ("beginning", "now")
            and (attempts is None or (type(attempts) is int and attempts in (1, 3)))
            and transactional in (None, False)
        ):
            h.finding("valid input refused", "events.subscribe (durable)", repr(out.error))
    elif op == "list":
        out = h.call("consumers.list", rt.consumers.list)
        if out.ok:
            got = {c.consumer_id: c.pattern for c in out.value}
            want = {cid: p for (t, cid), p in model.items() if t == tenant}
            h.same(
                {k: v for k, v in got.items() if k != "cowork.workflows"},
                want,
                "consumers.list",
                tenant,
            )
    elif op == "parked":
        consumer = d.raw(st.one_of(st.just(Arg(None, True)), st.just(Arg(PARKER, True))))
        other = _pick_consumer(h, d)
        if d.raw(st.booleans()):
            consumer = other
        out = h.call("consumers.parked", rt.consumers.parked, consumer.value)
        if out.ok:
            h.check(
                all(consumer.value in (None, p.consumer_id) for p in out.value),
                "consumers.parked",
                "parked events of another consumer",
            )
            if tenant != "hostile":
                h.check(
                    all(p.consumer_id != PARKER for p in out.value),
                    "consumers.parked",
                    f"tenant {tenant} sees the hostile tenant's parked events",
                )
    elif op == "redrive":
        consumer = _pick_consumer(h, d)
        position = d.raw(
            st.one_of(
                st.none(),
                st.integers(0, 40),
                st.sampled_from([-1, 2**63, 2**70, "1", 1.5]),
                junk(),
            )
        )
        out = h.call("consumers.redrive", rt.consumers.redrive, consumer.value, position=position)
        known = isinstance(consumer.value, str) and (tenant, consumer.value) in model
        if out.ok:
            h.check(known, "consumers.redrive", f"redrove unknown consumer {consumer.value!r}")
            h.check(
                isinstance(out.value, int) and out.value >= 0,
                "consumers.redrive",
                f"returned {out.value!r}",
            )
        elif known and (position is None or (type(position) is int and 0 <= position < 2**62)):
            h.finding("valid input refused", "consumers.redrive", repr(out.error))
    else:
        consumer = _pick_consumer(h, d)
        to_kind, index = d.raw(
            st.tuples(
                st.sampled_from(["beginning", "now", "sentinel", "int", "junk"]),
                st.integers(0, 100),
            )
        )
        junk_to = d.raw(st.one_of(junk(), st.sampled_from(["BEGINNING", "end", -1, 2**70])))
        new_pattern = d.opt(patterns)
        sentinel_positions: list[int] = h.state["sentinel_positions"]
        to: Any = {
            "beginning": "beginning",
            "now": "now",
            "sentinel": sentinel_positions[index % len(sentinel_positions)],
            "int": index,
            "junk": junk_to,
        }[to_kind]
        out = h.call(
            "consumers.reset", rt.consumers.reset, consumer.value, to=to, pattern=new_pattern.value
        )
        key = (tenant, consumer.value) if isinstance(consumer.value, str) else None
        known = key is not None and key in model
        if out.ok:
            h.check(known, "consumers.reset", f"reset unknown consumer {consumer.value!r}")
            h.check(
                to_kind != "sentinel" or tenant == SENTINEL,
                "consumers.reset",
                f"accepted position {to} of the sentinel's log in tenant {tenant}",
            )
            h.check(new_pattern.valid is not False, "consumers.reset", "accepted a bad pattern")
            if known and new_pattern.value is not None:
                model[key] = new_pattern.value  # type: ignore[index]
            if known:
                listed = h.read("consumers.list", rt.consumers.list) or []
                got = {c.consumer_id: c.pattern for c in listed}.get(consumer.value)
                h.same(got, model[key], "consumers.reset then list", consumer.value)  # type: ignore[index]
        elif known and to_kind in ("beginning", "now") and new_pattern.valid:
            h.finding("valid input refused", "consumers.reset", repr(out.error))


async def verify(h: Harness) -> None:
    for subscription in h.state["running"]:
        await subscription.stop()
    await h.state["parker"].stop()


async def test_hostile_consumers(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "consumers", body, setup=setup, verify=verify)
