"""Hostile input for ``rt.events`` (publish/publish_many/read/subscribe).

An accepted event must come back equal to the *sanitised* payload and metadata (computed
independently with :func:`cowork.events.sanitize.sanitize_object_encoded`; truncation is asked
for at random, and then the metadata lists what was cut, see
:func:`cowork.events.sanitize.record_truncation`); a refused batch must leave no trace; an
``event_id`` is an idempotency key per tenant (a sentinel's event id reused by another tenant
makes a new event there and never returns the sentinel's). At the end every tenant's whole log
is read back and compared with everything that was accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from typing import Any

from hypothesis import strategies as st

import cowork
from cowork import NewEvent
from cowork.errors import PayloadRejected
from cowork.events.sanitize import (
    DEFAULT_POLICY,
    Sanitized,
    SanitizePolicy,
    record_truncation,
    sanitize_object_encoded,
)
from tests.hostile.harness import HOSTILE_TENANT, Harness, hostile_run, tenant_view
from tests.hostile.strategies import Arg, Drawer, event_names, ids, junk, patterns, payloads

SENTINEL_EVENT_IDS = ("sentinel-event-0", "sentinel-event-1")


TRUNCATING = SanitizePolicy(truncate=True)
_EXPECTED: dict[tuple[int, str, bool], tuple[Any, tuple[bool, Any]]] = {}


def expected_object(value: Any, what: str, truncate: bool) -> tuple[bool, Any]:
    """(accepted, :class:`Sanitized`) by the documented sanitiser, independent of the service
    (remembered for the value last asked about, which is asked about several times)."""
    key = (id(value), what, truncate)
    cached = _EXPECTED.get(key)
    if cached is not None and cached[0] is value:
        return cached[1]
    result = _sanitised(value, what, truncate)
    if len(_EXPECTED) > 16:
        _EXPECTED.clear()
    _EXPECTED[key] = (value, result)
    return result


def _sanitised(value: Any, what: str, truncate: bool) -> tuple[bool, Any]:
    policy = TRUNCATING if truncate else DEFAULT_POLICY
    try:
        return True, sanitize_object_encoded(value, policy=policy, what=what)
    except PayloadRejected:
        return False, None
    except Exception as exc:  # the sanitiser itself must only ever raise PayloadRejected
        return False, exc


def expected_event(kwargs: dict[str, Any], truncate: bool) -> tuple[bool, Any, Any]:
    """(accepted, payload, metadata) as the documented sanitiser makes them: with truncation
    asked for, the metadata lists every path cut in the payload or the metadata."""
    ok_payload, payload = expected_object(kwargs["payload"], "payload", truncate)
    ok_meta, metadata = expected_object(kwargs["metadata"], "metadata", truncate)
    if not (ok_payload and ok_meta):
        return False, payload, metadata
    assert isinstance(payload, Sanitized) and isinstance(metadata, Sanitized)
    cut = payload.truncated + metadata.truncated
    if cut:
        try:
            metadata = record_truncation(metadata, cut, policy=TRUNCATING)
        except PayloadRejected:
            return False, None, None
    return True, payload.value, metadata.value


@functools.cache
def occurred(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    aware = st.datetimes(
        min_value=dt.datetime(1970, 1, 2),
        max_value=dt.datetime(9998, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-11, minutes=-30))]),
    )
    valid = st.one_of(st.none(), aware).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        st.datetimes().map(lambda v: Arg(v, False)),  # naive
        junk().map(lambda v: Arg(v, v is None)),
        st.sampled_from(["2024-01-01T00:00:00Z", 1700000000, dt.date(2024, 1, 1)]).map(
            lambda v: Arg(v, False)
        ),
    )


def _state(h: Harness) -> dict[str, Any]:
    return h.state.setdefault(
        "events", {"accepted": {}, "refused": set(), "ids": {}}
    )  # accepted: (tenant, event_id) -> (type, payload, metadata)


def draw_event(h: Harness, d: Drawer, tenant: str) -> tuple[dict[str, Any], bool]:
    """Keyword arguments of one publish, and whether they are all valid."""
    event_type = d(event_names)
    payload = d(payloads)
    metadata_kind = d.raw(st.sampled_from(["none", "payload", "junk"]))
    metadata = d(payloads) if metadata_kind == "payload" else None
    if metadata_kind == "junk":
        metadata = d.raw(junk())
    aggregate_type = d.opt(ids)
    aggregate_id = d.opt(ids)
    correlation_id = d.opt(ids)
    causation_id = d.opt(ids)
    when = d(occurred)
    id_kind, index = d.raw(
        st.tuples(st.sampled_from(["none", "none", "fresh", "reuse", "sentinel"]), st.integers())
    )
    fresh = d(ids)
    known = sorted(_state(h)["ids"].get(tenant, ()))
    event_id = {
        "none": Arg(None, True),
        "fresh": fresh,
        "reuse": Arg(known[index % len(known)], True) if known else Arg(None, True),
        "sentinel": Arg(SENTINEL_EVENT_IDS[index % 2], True),
    }[id_kind]
    kwargs = {
        "event_type": event_type.value,
        "payload": payload,
        "aggregate_type": aggregate_type.value,
        "aggregate_id": aggregate_id.value,
        "metadata": metadata,
        "event_id": event_id.value,
        "correlation_id": correlation_id.value,
        "causation_id": causation_id.value,
        "occurred_at": when.value,
    }
    valid = all(
        a.valid
        for a in (event_type, aggregate_type, aggregate_id, correlation_id, causation_id, when)
    ) and (event_id.valid is True or event_id.value is None)
    valid = valid and event_id.valid is not False
    return kwargs, bool(valid)


def _judge(
    h: Harness,
    tenant: str,
    kwargs: dict[str, Any],
    valid: bool,
    envelope: Any,
    label: str,
    truncate: bool,
) -> None:
    """Check one accepted envelope against the sanitiser and the idempotency rule."""
    state = _state(h)
    ok, payload, metadata = expected_event(kwargs, truncate)
    for what, result in (("payload", payload), ("metadata", metadata)):
        if isinstance(result, Exception):
            h.finding(
                "sanitiser raised",
                "sanitize_object_encoded",
                f"{what}: {type(result).__name__}: {result}",
                (kwargs[what],),
            )
    event_id = kwargs["event_id"]
    previous = state["accepted"].get((tenant, envelope.event_id))
    if event_id is not None and previous is not None and previous[3] != envelope.position:
        h.finding("wrong result", label, "an event id was stored twice", (event_id,))
    if event_id is not None and previous is not None:
        h.same(
            (envelope.event_type, envelope.payload, envelope.metadata),
            previous[:3],
            f"{label} (idempotent republish returns the original)",
            event_id,
        )
        return
    if not ok:
        h.finding("wrong result", label, "accepted a payload the sanitiser rejects", (), kwargs)
        return
    h.same(envelope.payload, payload, f"{label} (payload = sanitised)", kwargs["payload"])
    h.same(envelope.metadata, metadata, f"{label} (metadata = sanitised)", kwargs["metadata"])
    h.same(
        (envelope.tenant_id, envelope.event_type, envelope.aggregate_id),
        (tenant, kwargs["event_type"], kwargs["aggregate_id"]),
        f"{label} (envelope)",
    )
    if event_id is not None:
        h.same(envelope.event_id, event_id, f"{label} (event id)")
    state["accepted"][(tenant, envelope.event_id)] = (
        envelope.event_type,
        envelope.payload,
        envelope.metadata,
        envelope.position,
    )
    state["ids"].setdefault(tenant, set()).add(envelope.event_id)


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(st.sampled_from(["publish", "publish", "publish", "many", "read", "subscribe"]))
    if op == "publish":
        kwargs, valid = draw_event(h, d, tenant)
        truncate = d.raw(st.booleans())
        event_type = kwargs.pop("event_type")
        payload = kwargs.pop("payload")
        out = h.call(
            "events.publish", rt.events.publish, event_type, payload, truncate=truncate, **kwargs
        )
        kwargs.update(event_type=event_type, payload=payload)
        if out.ok:
            _judge(h, tenant, kwargs, valid, out.value, "events.publish", truncate)
        elif valid and expected_event(kwargs, truncate)[0]:
            h.finding("valid input refused", "events.publish", repr(out.error), (), kwargs)
    elif op == "many":
        count = d.raw(st.integers(0, 4))
        batch = [draw_event(h, d, tenant) for _ in range(count)]
        shape = d.raw(st.sampled_from(["list", "list", "list", "tuple", "junk-item", "generator"]))
        items: Any = [NewEvent(**kwargs) for kwargs, _ in batch]
        if shape == "tuple":
            items = tuple(items)
        elif shape == "junk-item":
            items = [*items, {"event_type": "x"}]
        elif shape == "generator":
            items = (i for i in items)
        truncate = d.raw(st.booleans())
        out = h.call("events.publish_many", rt.events.publish_many, items, truncate=truncate)
        all_valid = shape in ("list", "tuple") and all(
            v and expected_event(k, truncate)[0] for k, v in batch
        )
        if out.ok:
            h.check(len(out.value) == count, "events.publish_many", f"{len(out.value)} != {count}")
            seen: dict[str, Any] = {}
            for (kwargs, valid), envelope in zip(batch, out.value, strict=False):
                if kwargs["event_id"] is not None and kwargs["event_id"] in seen:
                    h.same(envelope, seen[kwargs["event_id"]], "publish_many duplicate id")
                    continue
                _judge(h, tenant, kwargs, valid, envelope, "events.publish_many", truncate)
                seen[envelope.event_id] = envelope
        else:
            if all_valid and count:
                h.finding("valid input refused", "events.publish_many", repr(out.error))
            for kwargs, _ in batch:
                event_id = kwargs["event_id"]
                if isinstance(event_id, str) and (tenant, event_id) not in _state(h)["accepted"]:
                    _state(h)["refused"].add((tenant, event_id))
    elif op == "read":
        kind = d.raw(st.sampled_from(["none", "int", "junk", "envelope"]))
        after: Any = {
            "none": None,
            "int": d.raw(st.one_of(st.integers(0, 50), st.integers(-(2**70), 2**70))),
            "junk": d.raw(junk()),
            "envelope": None,
        }[kind]
        limit = d.raw(
            st.one_of(st.integers(1, 50), st.sampled_from([0, -1, 10_001, 2**70, 1.5, "5", None]))
        )
        out = h.call("events.read", rt.events.read, after=after, limit=limit)
        if out.ok:
            h.check(
                all(e.tenant_id == tenant for e in out.value),
                "events.read",
                "read another tenant's events",
            )
            if isinstance(limit, int) and not isinstance(limit, bool):
                h.check(len(out.value) <= limit, "events.read", "more events than limit")
    else:
        pattern = d(patterns)
        handler_kind = d.raw(st.sampled_from(["async", "sync", "junk"]))
        seen_events: list[Any] = []

        async def async_handler(event: Any) -> None:
            seen_events.append(event)

        handler: Any = {"async": async_handler, "sync": seen_events.append, "junk": "handler"}[
            handler_kind
        ]
        out = h.call("events.subscribe", rt.events.subscribe, pattern.value, handler)
        if out.ok:
            h.check(
                pattern.valid is True and handler_kind != "junk",
                "events.subscribe",
                f"accepted pattern {pattern.value!r} / handler {handler_kind}",
            )
            subscription = out.value
            h.read("unsubscribe", subscription.stop)
        elif pattern.valid and handler_kind != "junk":
            h.finding("valid input refused", "events.subscribe", repr(out.error))


async def _settled_log(rt: cowork.Runtime) -> list[cowork.EventEnvelope]:
    marker = await rt.events.publish("hostile:marker")
    deadline = time.monotonic() + 20
    while True:
        events = [e async for e in rt.events.iterate()]
        if any(e.event_id == marker.event_id for e in events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError("the marker event never became readable")
        await asyncio.sleep(0.05)


async def verify(h: Harness) -> None:
    """Every accepted event is in its tenant's log exactly as accepted; refused ones are not."""
    state = _state(h)
    views: dict[str, cowork.Runtime] = h.state.get("views", {HOSTILE_TENANT: h.rt})
    for tenant, rt in views.items():
        log = {e.event_id: e for e in await _settled_log(rt)}
        for (t, event_id), (kind, payload, metadata, position) in state["accepted"].items():
            if t != tenant:
                continue
            stored = log.get(event_id)
            if stored is None:
                h.finding(
                    "log verification",
                    "events (end of run)",
                    f"{tenant}: accepted event {event_id} is not in the log",
                    site="accepted event missing",
                )
                continue
            accepted = {"type": kind, "payload": payload, "metadata": metadata, "pos": position}
            read = {
                "type": stored.event_type,
                "payload": stored.payload,
                "metadata": stored.metadata,
                "pos": stored.position,
            }
            for field, value in accepted.items():
                if read[field] != value:
                    h.finding(
                        "log verification",
                        "events (end of run)",
                        f"{tenant}: event {event_id} {field}: publish returned {value!r:.300}, "
                        f"the log holds {read[field]!r:.300}",
                        site=f"{field} differs from the envelope publish returned",
                    )
        for t, event_id in state["refused"]:
            if t == tenant and event_id in log and (t, event_id) not in state["accepted"]:
                h.finding(
                    "log verification",
                    "events (end of run)",
                    f"{tenant}: event {event_id} of a refused batch was stored",
                    site="refused batch stored",
                )
        if any(e.tenant_id != tenant for e in log.values()):
            h.finding(
                "log verification", "events (end of run)", f"{tenant}: another tenant's events"
            )


async def test_hostile_events(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "events", body, verify=verify)
