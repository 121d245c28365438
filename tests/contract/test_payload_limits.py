"""Event payload limits and redaction on both backends.

A value over a limit is rejected with ``PayloadRejected`` naming the path, the limit and the
size, and nothing is stored; truncation happens only when the publisher asks for it, and the
stored event's metadata then lists every path cut. Limits and extra secret keys come from the
settings (environment, config file or ``cowork.open`` arguments).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import cowork
from cowork import ActionContext, ActionStep, InstanceStatus, NewEvent, WorkflowDefinition
from cowork.events.sanitize import MAX_DEPTH_MARKER, REDACTED, TRUNCATION_SUFFIX
from tests.support.events import eventually, read_through

KIB_100 = 100 * 1024


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1") as runtime:
        yield runtime


async def _log_after(rt: cowork.Runtime) -> list[cowork.EventEnvelope]:
    """The whole log, once a sentinel published now is readable (so nothing is in flight)."""
    sentinel = await rt.events.publish("test:sentinel")
    return await read_through(rt, sentinel)


async def _assert_nothing_stored(rt: cowork.Runtime) -> None:
    log = await _log_after(rt)
    assert [e.event_type for e in log] == ["test:sentinel"]


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"d": value}
    return value


# -- rejected by default -----------------------------------------------------------------------


async def test_a_100_kib_string_is_rejected_naming_path_and_limit_and_nothing_is_stored(
    rt: cowork.Runtime,
) -> None:
    payload = {"items": [{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": "x" * KIB_100}]}
    with pytest.raises(cowork.PayloadRejected) as info:
        await rt.events.publish("doc:stored", payload)
    message = str(info.value)
    assert message.startswith("payload.items[3].text: ")
    assert f"a string of {KIB_100} characters is over the limit of 4096 characters" in message
    assert "COWORK_EVENT_MAX_STRING_LENGTH" in message
    assert "truncate=True" in message
    assert "xxxx" not in message

    with pytest.raises(cowork.PayloadRejected, match=r"^metadata\.note: a string of 102400"):
        await rt.events.publish("doc:stored", {"ok": 1}, metadata={"note": "y" * KIB_100})
    await _assert_nothing_stored(rt)


async def test_one_rejected_event_stores_nothing_of_its_batch_or_transaction(
    rt: cowork.Runtime,
) -> None:
    good = NewEvent(event_type="doc:stored", payload={"text": "fine"})
    bad = NewEvent(event_type="doc:stored", payload={"text": "x" * KIB_100})
    with pytest.raises(cowork.PayloadRejected, match=r"^payload\.text: "):
        await rt.events.publish_many([good, good, bad])
    with pytest.raises(cowork.PayloadRejected, match=r"^payload\.text: "):
        async with rt.transaction() as tx:
            await tx.events.publish("doc:stored", {"text": "fine"})
            await tx.events.publish("doc:stored", {"text": "x" * KIB_100})
    await _assert_nothing_stored(rt)


async def test_nesting_deeper_than_the_limit_is_rejected(rt: cowork.Runtime) -> None:
    await rt.events.publish("tree:ok", _deep(8))  # exactly at the limit: kept whole
    with pytest.raises(cowork.PayloadRejected) as info:
        await rt.events.publish("tree:deep", _deep(9))
    message = str(info.value)
    assert message.startswith("payload" + ".d" * 8 + ": ")
    assert "nesting level 9 is over the limit of 8 levels" in message
    assert "COWORK_EVENT_MAX_DEPTH" in message
    log = await _log_after(rt)
    assert [e.event_type for e in log] == ["tree:ok", "test:sentinel"]
    assert log[0].payload == _deep(8)


# -- truncation when asked ---------------------------------------------------------------------


async def test_truncation_when_asked_is_stored_and_listed_in_the_metadata(
    rt: cowork.Runtime,
) -> None:
    payload = {"text": "x" * KIB_100, "title": "kept", "tree": _deep(9)}
    env = await rt.events.publish("doc:stored", payload, metadata={"by": "agent-7"}, truncate=True)
    text = env.payload["text"]
    assert len(text) == 4096 and text.endswith(TRUNCATION_SUFFIX)
    assert text.startswith("x" * 4000)
    assert env.payload["title"] == "kept"
    inner = env.payload["tree"]
    for _ in range(6):
        inner = inner["d"]
    assert inner == {"d": MAX_DEPTH_MARKER}
    assert env.metadata == {
        "by": "agent-7",
        "truncated": ["payload.text", "payload.tree" + ".d" * 7],
    }
    [stored] = [e for e in await _log_after(rt) if e.event_id == env.event_id]
    assert (stored.payload, stored.metadata) == (env.payload, env.metadata)


async def test_publish_many_truncates_only_the_events_that_need_it(rt: cowork.Runtime) -> None:
    events = [
        NewEvent(event_type="doc:stored", payload={"text": "short"}),
        NewEvent(event_type="doc:stored", payload={"a": ["x" * 5000]}, metadata={"n": "z" * 5000}),
    ]
    first, second = await rt.events.publish_many(events, truncate=True)
    assert first.payload == {"text": "short"} and first.metadata == {}
    assert len(second.payload["a"][0]) == 4096
    assert second.metadata["truncated"] == ["payload.a[0]", "metadata.n"]
    assert len(second.metadata["n"]) == 4096
    stored = {e.event_id: e for e in await _log_after(rt)}
    assert stored[first.event_id].metadata == {}
    assert stored[second.event_id].metadata == second.metadata


async def test_truncation_never_overwrites_a_metadata_key_of_the_caller(
    rt: cowork.Runtime,
) -> None:
    with pytest.raises(cowork.PayloadRejected, match=r"^metadata\.truncated: this key is reserved"):
        await rt.events.publish(
            "doc:stored", {"text": "x" * 5000}, metadata={"truncated": "no"}, truncate=True
        )
    # Nothing to cut: the caller's key is theirs.
    env = await rt.events.publish(
        "doc:stored", {"text": "short"}, metadata={"truncated": "no"}, truncate=True
    )
    assert env.metadata == {"truncated": "no"}
    log = await _log_after(rt)
    assert [e.event_id for e in log][:-1] == [env.event_id]


async def test_truncation_does_not_lift_the_byte_limit(rt: cowork.Runtime) -> None:
    payload = {f"k{i}": "x" * 1000 for i in range(100)}
    with pytest.raises(cowork.PayloadRejected, match="over the limit of 65536 bytes"):
        await rt.events.publish("doc:stored", payload, truncate=True)
    with pytest.raises(cowork.ValidationError, match="truncate must be True or False"):
        await rt.events.publish("doc:stored", {}, truncate="yes")  # type: ignore[arg-type]
    await _assert_nothing_stored(rt)


# -- configured limits and redaction ------------------------------------------------------------


async def test_limits_from_the_environment_take_effect(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COWORK_EVENT_MAX_STRING_LENGTH", "64")
    monkeypatch.setenv("COWORK_EVENT_MAX_DEPTH", "3")
    monkeypatch.setenv("COWORK_EVENT_MAX_BYTES", "512")
    async with await cowork.open(database_url, tenant_id="t1") as rt:
        assert rt.settings.event_max_string_length == 64
        await rt.events.publish("doc:stored", {"text": "x" * 64, "tree": _deep(2)})
        with pytest.raises(cowork.PayloadRejected) as info:
            await rt.events.publish("doc:stored", {"text": "x" * 65})
        assert "a string of 65 characters is over the limit of 64 characters" in str(info.value)
        with pytest.raises(cowork.PayloadRejected, match=r"^payload\.tree\.d\.d: .* limit of 3"):
            await rt.events.publish("doc:stored", {"tree": _deep(3)})
        with pytest.raises(cowork.PayloadRejected, match="over the limit of 512 bytes"):
            await rt.events.publish("doc:stored", {f"k{i}": "x" * 60 for i in range(10)})
        cut = await rt.events.publish("doc:stored", {"text": "y" * 100}, truncate=True)
        assert len(cut.payload["text"]) == 64
        assert cut.metadata == {"truncated": ["payload.text"]}
        log = await _log_after(rt)
        assert [e.event_type for e in log] == ["doc:stored", "doc:stored", "test:sentinel"]


async def test_limits_given_to_open_take_effect(database_url: str) -> None:
    async with await cowork.open(
        database_url, tenant_id="t1", event_max_string_length=10_000_000, event_max_bytes=1 << 21
    ) as rt:
        env = await rt.events.publish("doc:stored", {"text": "x" * KIB_100})
        assert env.payload["text"] == "x" * KIB_100
        assert env.metadata == {}
        [stored] = [e for e in await _log_after(rt) if e.event_id == env.event_id]
        assert stored.payload["text"] == "x" * KIB_100


async def test_extra_redaction_keys_from_the_environment_are_redacted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COWORK_REDACT_KEYS", "pin, ssn_hint")
    async with await cowork.open(database_url, tenant_id="t1") as rt:
        env = await rt.events.publish(
            "user:updated",
            {
                "PIN": "1234",
                "profile": {"ssnHint": "last four 6789", "pinned": True},
                "items": [{"Pin-Code": "9"}, {"pin": {"nested": "x"}}],
                "password": "still redacted",
                "name": "Ann",
            },
            metadata={"pin": "42", "by": "admin"},
        )
        expected = {
            "PIN": REDACTED,
            "profile": {"ssnHint": REDACTED, "pinned": True},
            "items": [{"Pin-Code": "9"}, {"pin": REDACTED}],
            "password": REDACTED,
            "name": "Ann",
        }
        assert env.payload == expected
        assert env.metadata == {"pin": REDACTED, "by": "admin"}
        [stored] = [e for e in await _log_after(rt) if e.event_id == env.event_id]
        assert (stored.payload, stored.metadata) == (expected, env.metadata)
    # Without the setting the same key is plain data.
    monkeypatch.delenv("COWORK_REDACT_KEYS")
    async with await cowork.open(database_url, tenant_id="t2") as rt:
        env = await rt.events.publish("user:updated", {"pin": "1234"})
        assert env.payload == {"pin": "1234"}


# -- what relied on silent truncation -----------------------------------------------------------


async def test_a_long_action_error_is_cut_in_the_workflow_event_and_listed(
    database_url: str,
) -> None:
    """The engine's own events carry library text (an exception message, up to 4000
    characters): under a smaller string limit they are cut and the cut is listed, and the
    instance still fails cleanly with its error kept in ``last_error`` and its history."""
    async with await cowork.open(database_url, tenant_id="t1", event_max_string_length=1000) as rt:

        @rt.workflows.action("loud.fail")
        async def loud(ctx: ActionContext) -> None:
            raise ValueError("E" * 10_000)

        await rt.workflows.register(
            WorkflowDefinition(
                workflow_id="loud",
                version=1,
                name="loud",
                correlation=("key",),
                steps=(ActionStep(name="call", action="loud.fail", max_attempts=1),),
            )
        )
        instance = await rt.workflows.start("loud", input={"key": "k"})
        failed = await rt.workflows.wait(instance.instance_id, timeout=10)
        assert failed.status is InstanceStatus.FAILED
        assert failed.last_error is not None and len(failed.last_error) > 4000

        async def failed_event() -> cowork.EventEnvelope | None:
            hits = [
                e
                async for e in rt.events.iterate()
                if e.event_type == "workflow:failed"
                and e.payload.get("instanceId") == instance.instance_id
            ]
            return hits[0] if hits else None

        event = await eventually(failed_event, timeout=10, what="workflow:failed")
        assert len(event.payload["error"]) == 1000
        assert event.payload["error"].endswith(TRUNCATION_SUFFIX)
        assert event.metadata["truncated"] == ["payload.error"]
