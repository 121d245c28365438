"""Explicit regression cases for what the hostile-input suite found (one test per defect).

Each test holds the concrete input and the documented outcome: a call either succeeds and
round-trips exactly, or raises a :class:`cowork.CoworkError` subclass (here mostly
``ValidationError``/``PayloadRejected``); raw ``TypeError``/``ValueError``/``AttributeError``/
``UnicodeEncodeError`` must never reach a caller.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

import cowork
from cowork import (
    ActionStep,
    BranchCase,
    BranchStep,
    CompleteStep,
    NewEvent,
    WaitStep,
    WorkflowDefinition,
)


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="reg", owner_id="reg-owner") as runtime:
        yield runtime


@pytest.fixture
async def wid(rt: cowork.Runtime) -> str:
    ws = await rt.workspaces.create(name="regressions", actor="alice")
    await rt.blackboard.put(ws.workspace_id, "plan", {"v": 1}, actor="alice")
    return ws.workspace_id


def _definition(*steps: Any, **overrides: Any) -> WorkflowDefinition:
    values: dict[str, Any] = {
        "workflow_id": "reg-wf",
        "version": 1,
        "name": "regression",
        "steps": (*steps, CompleteStep(name="done")),
    }
    values.update(overrides)
    return WorkflowDefinition(**values)


# -- lone surrogates reach psycopg's encoder (PostgreSQL) ---------------------------------------


@pytest.mark.parametrize("field", ["name", "description"])
async def test_workspace_text_with_lone_surrogate_is_refused(
    rt: cowork.Runtime, field: str
) -> None:
    """PostgreSQL: raw UnicodeEncodeError from storage/postgres/adapter.py (the psycopg dumper
    raises it outside psycopg.Error); workspaces/service.py ``_text`` checks NUL but not lone
    surrogates (the blackboard's ``check_key`` does)."""
    kwargs: dict[str, Any] = {"name": "ok", "actor": "alice", field: "bad \ud800 text"}
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.create(**kwargs)


async def test_workflow_name_with_lone_surrogate_is_refused(rt: cowork.Runtime) -> None:
    """PostgreSQL: raw UnicodeEncodeError from ``register`` (the definition's name is not
    checked for valid Unicode and the adapter does not translate the encoder's error)."""
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.register(_definition(name="n\ud800"))


# -- events.publish: occurred_at of the wrong type --------------------------------------------


@pytest.mark.parametrize("occurred_at", ["2024-01-01T00:00:00Z", 1_700_000_000, b"x", True])
async def test_publish_with_non_datetime_occurred_at_is_refused(
    rt: cowork.Runtime, occurred_at: Any
) -> None:
    """events/log.py ``prepare_event`` reads ``occurred.tzinfo`` without a type check: raw
    AttributeError."""
    with pytest.raises(cowork.ValidationError):
        await rt.events.publish("reg:happened", {}, occurred_at=occurred_at)
    with pytest.raises(cowork.ValidationError):
        await rt.events.publish_many([NewEvent(event_type="reg:happened", occurred_at=occurred_at)])


# -- patterns of an unhashable type -------------------------------------------------------------


@pytest.mark.parametrize("pattern", [[], ["a"], bytearray(b"x"), {"a": 1}, {1, 2}])
async def test_unhashable_pattern_is_refused(rt: cowork.Runtime, pattern: Any) -> None:
    """events/patterns.py: ``EventPattern(text)`` passes a non-str to the lru_cached
    ``_compile`` before its isinstance check: raw TypeError "unhashable type"."""

    async def handler(event: cowork.EventEnvelope) -> None:
        return None

    with pytest.raises(cowork.InvalidEventType):
        rt.events.subscribe(pattern, handler)
    with pytest.raises(cowork.InvalidEventType):
        await rt.events.subscribe(pattern, handler, consumer_id="reg-durable")
    sub = await rt.events.subscribe("reg:*", handler, consumer_id="reg-known")
    try:
        with pytest.raises(cowork.InvalidEventType):
            await rt.consumers.reset("reg-known", pattern=pattern)
    finally:
        await sub.stop()


# -- durable consumer options -------------------------------------------------------------------


async def test_max_attempts_of_the_wrong_type_is_refused(rt: cowork.Runtime) -> None:
    """consumers/options.py ``__post_init__`` compares ``max_attempts < 1`` without a type
    check: raw TypeError for "3"."""

    async def handler(event: cowork.EventEnvelope) -> None:
        return None

    with pytest.raises(cowork.ValidationError):
        await rt.events.subscribe("reg:*", handler, consumer_id="reg-c1", max_attempts="3")


async def test_fractional_max_attempts_is_refused(rt: cowork.Runtime) -> None:
    """``max_attempts=1.5`` is accepted; the runner then dies on its first failing event
    (consumers/runner.py: "'float' object cannot be interpreted as an integer") and that raw
    TypeError comes out of ``await sub.stop()``."""

    async def failing(event: cowork.EventEnvelope) -> None:
        raise RuntimeError("always fails")

    with pytest.raises(cowork.ValidationError):
        sub = await rt.events.subscribe("reg:*", failing, consumer_id="reg-c2", max_attempts=1.5)
        await sub.stop()


# -- mappings and lists given something else ------------------------------------------------


@pytest.mark.parametrize("metadata", [[1], "ab", True, Decimal("1.5"), object(), [("a", 1)]])
async def test_workspace_metadata_that_is_not_a_mapping_is_refused(
    rt: cowork.Runtime, metadata: Any
) -> None:
    """workspaces/service.py ``create``: ``dict(metadata or {})`` raises raw TypeError/
    ValueError (and silently turns ``[("a", 1)]`` into ``{"a": 1}``)."""
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.create(name="n", actor="alice", metadata=metadata)


@pytest.mark.parametrize("metadata", [[1], "ab", Decimal("1.5")])
async def test_feedback_metadata_that_is_not_a_mapping_is_refused(
    rt: cowork.Runtime, wid: str, metadata: Any
) -> None:
    """blackboard/feedback.py ``add_feedback``: ``dict(metadata or {})`` raises raw
    TypeError/ValueError."""
    with pytest.raises(cowork.ValidationError):
        await rt.blackboard.add_feedback(wid, actor="bob", body="b", metadata=metadata)


@pytest.mark.parametrize("workflow_input", [[1, 2], "text", 1.5, [], False])
async def test_workflow_input_that_is_not_a_mapping_is_refused(
    rt: cowork.Runtime, workflow_input: Any
) -> None:
    """workflows/service.py ``start``: ``dict(input or {})`` raises raw TypeError/ValueError
    for a non-empty non-mapping and silently turns ``[]``/``False`` into ``{}`` (shown with a
    workflow without correlation keys, which an empty input satisfies)."""
    await rt.workflows.register(_definition())
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.start("reg-wf", input=workflow_input, idempotency_key="reg-start")


@pytest.mark.parametrize("members", [5, True, "alice"])
async def test_workspace_members_that_are_not_a_list_are_refused(
    rt: cowork.Runtime, members: Any
) -> None:
    """workspaces/service.py ``_members`` iterates without a type check: raw TypeError."""
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.create(name="n", actor="alice", members=members)


async def test_feedback_tags_that_are_not_a_list_are_refused(rt: cowork.Runtime, wid: str) -> None:
    """blackboard/feedback.py ``_tags`` iterates without a type check: raw TypeError."""
    with pytest.raises(cowork.ValidationError):
        await rt.blackboard.add_feedback(wid, actor="bob", body="b", tags=5)
    thread = await rt.blackboard.add_feedback(wid, actor="bob", body="b")
    with pytest.raises(cowork.ValidationError):
        await rt.blackboard.update_feedback(
            thread.workspace_id, thread.feedback_id, actor="bob", tags=5
        )


# -- workflow definitions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _definition("not a step"), id="step-is-a-string"),
        pytest.param(lambda: _definition(None), id="step-is-None"),
        pytest.param(lambda: _definition(correlation=None), id="correlation-None"),
        pytest.param(
            lambda: _definition(WaitStep(name="w", event="a:b", timeout_seconds="5")),
            id="timeout-is-a-string",
        ),
        pytest.param(
            lambda: _definition(ActionStep(name="a", action="act", max_attempts="3")),
            id="max-attempts-is-a-string",
        ),
    ],
)
def test_workflow_definition_of_the_wrong_shape_is_refused(build: Any) -> None:
    """workflows/definition.py ``__post_init__`` reads ``step.name``, iterates
    ``correlation`` and compares numbers without type checks: raw AttributeError/TypeError."""
    with pytest.raises(cowork.ValidationError):
        build()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: _definition(
                WaitStep(name="w", event="a:b", timeout_seconds=math.nan, on_timeout="done")
            ),
            id="timeout-nan",
        ),
        pytest.param(
            lambda: _definition(
                WaitStep(name="w", event="a:b", timeout_seconds=math.inf, on_timeout="done")
            ),
            id="timeout-inf",
        ),
        pytest.param(
            lambda: _definition(ActionStep(name="a", action="act", backoff_seconds=math.nan)),
            id="backoff-nan",
        ),
        pytest.param(
            lambda: _definition(
                BranchStep(
                    name="b", cases=(BranchCase(path="input.x", equals=math.nan, goto="done"),)
                )
            ),
            id="branch-equals-nan",
        ),
        pytest.param(
            lambda: _definition(
                BranchStep(
                    name="b", cases=(BranchCase(path="input.x", equals=object(), goto="done"),)
                )
            ),
            id="branch-equals-object",
        ),
    ],
)
async def test_workflow_definition_that_is_not_json_is_refused(
    rt: cowork.Runtime, build: Any
) -> None:
    """NaN/inf numbers and non-JSON branch values are accepted by the constructor. On register,
    SQLite raises a raw ValueError (storage/sqlite/convert.py: ``encode_params`` runs outside
    the adapter's translated ``run``), PostgreSQL a PayloadRejected; a non-JSON ``equals``
    raises a raw TypeError from ``WorkflowDefinition.checksum`` on both."""
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.register(build())


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(
            WaitStep(name="w", event="a:b", timeout_seconds=2**70, on_timeout="done"),
            id="timeout-2**70",
        ),
        pytest.param(ActionStep(name="a", action="act", backoff_seconds=2**70), id="backoff-2**70"),
    ],
)
def test_workflow_step_with_an_unrepresentable_delay_is_refused(step: Any) -> None:
    """A definition with ``timeout_seconds``/``backoff_seconds`` of 2**70 is accepted; every
    transition of its instances then fails in the engine with "OverflowError: Python int too
    large to convert to C int" (``utcnow() + timedelta(seconds=...)`` in workflows/machine.py),
    for ever: the instance stays ``running`` and the backoff case crash-loops the tenant's
    workflow executor. It must be refused when the definition is built."""
    with pytest.raises(cowork.ValidationError):
        _definition(step)


# -- SQLite parameter encoding outside the translated region -----------------------------------


@pytest.mark.parametrize("position", [dt.datetime(2024, 1, 1), "1", 1.5])
async def test_redrive_position_of_the_wrong_type_is_refused(
    rt: cowork.Runtime, position: Any
) -> None:
    """consumers/service.py ``redrive`` does not validate ``position``; on SQLite a naive
    datetime raises a raw ValueError from storage/sqlite/convert.py (``encode_params`` runs
    before the translated ``run``)."""

    async def handler(event: cowork.EventEnvelope) -> None:
        return None

    sub = await rt.events.subscribe("reg:*", handler, consumer_id="reg-redrive")
    try:
        with pytest.raises(cowork.ValidationError):
            await rt.consumers.redrive("reg-redrive", position=position)
    finally:
        await sub.stop()


# -- list limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [-1, 0, None, 1.5, "5", True, 2**70])
async def test_list_limit_is_validated(rt: cowork.Runtime, limit: Any) -> None:
    """``workspaces.list`` and ``workflows.list`` pass ``limit`` to SQL unchecked: SQLite returns
    every row for -1, accepts "5", and calls 1.5/None a "SQLite integrity error: datatype
    mismatch" (PersistenceError); PostgreSQL accepts None/1.5 and calls -1/2**70 "the database
    rejected a value". ``events.read`` shows the intended behaviour: ValidationError."""
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.list(limit=limit)
    with pytest.raises(cowork.ValidationError):
        await rt.workflows.list(limit=limit)


# -- JSON numbers through jsonb (PostgreSQL) --------------------------------------------------


FLOATS = {"big": 5.614946114533286e16, "round": 1e16, "max": 1.7976931348623157e308, "neg0": -0.0}


def _strictly_equal(got: Any, want: Any) -> bool:
    """Equal with the same JSON types (a float stays a float, with its sign, except that
    PostgreSQL's jsonb has no negative zero: -0.0 may come back as 0.0, documented)."""
    if isinstance(want, float):
        same_sign = math.copysign(1, got) == math.copysign(1, want) if type(got) is float else False
        return type(got) is float and got == want and (same_sign or want == 0.0)
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(_strictly_equal(got[k], v) for k, v in want.items())
        )
    return bool(got == want and type(got) is type(want))


async def test_float_payload_round_trips_exactly(rt: cowork.Runtime, wid: str) -> None:
    """PostgreSQL stores payloads as ``jsonb``, whose numbers are ``numeric``: 5.614946114533286e16
    reads back as the int 56149461145332860 (not equal to the float written, whose exact value is
    56149461145332856), 1e16 and 1.7976931348623157e308 come back as ints and -0.0 as 0.0.
    SQLite gives the floats back. Artifacts, metadata, workflow inputs and event payloads are all
    affected (and an event's envelope from ``publish`` differs from the same event read later)."""
    entry = await rt.blackboard.put(wid, "floats", FLOATS, actor="alice")
    assert _strictly_equal(entry.payload, FLOATS)
    got = await rt.blackboard.get(wid, "floats")
    assert got is not None
    assert _strictly_equal(got.payload, FLOATS), f"wrote {FLOATS!r}, read {got.payload!r}"


async def test_float_event_payload_reads_back_as_published(rt: cowork.Runtime) -> None:
    """The same ``jsonb`` numbers on the event log: the envelope ``publish`` returns (and hands
    to in-process subscribers) carries the floats, while every later read (``events.read``,
    durable consumers, workflows) gets ints, on PostgreSQL only."""
    published = await rt.events.publish("reg:floats", FLOATS)
    assert _strictly_equal(published.payload, FLOATS)
    deadline = time.monotonic() + 10  # a committed event becomes readable once no older
    while True:  # transaction is open (gap-free reads on PostgreSQL)
        events = await rt.events.read(limit=1000)
        stored = [e for e in events if e.event_id == published.event_id]
        if stored or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert stored, "the event never became readable"
    assert _strictly_equal(stored[0].payload, published.payload), (
        f"published {published.payload!r}, read {stored[0].payload!r}"
    )
