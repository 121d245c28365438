"""Blackboard and feedback contract: versions, optimistic writes,
history that survives restarts, feedback, atomicity of state and events, transactions, bad
input and tenancy. Runs on both backends through ``database_url``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import cowork
import cowork.events.log
import cowork.kernel.service
from cowork import BlackboardEntry, EventEnvelope, FeedbackSeverity, FeedbackStatus
from cowork.jsondoc import DEFAULT_DOCUMENT_BYTES
from cowork.kernel.service import TenantService
from tests.support.domain import log_since, settled_log

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1", owner_id="owner-a") as runtime:
        yield runtime


@pytest.fixture
async def wid(rt: cowork.Runtime) -> str:
    ws = await rt.workspaces.create(name="Plan", actor="alice", members=["alice"])
    return ws.workspace_id


def kinds(events: list[EventEnvelope]) -> list[str]:
    return [e.event_type for e in events]


async def state(rt: cowork.Runtime) -> dict[str, Any]:
    """Everything the read API shows of the tenant's collaboration data."""
    result: dict[str, Any] = {"workspaces": await rt.workspaces.list(include_deleted=True)}
    for ws in result["workspaces"]:
        wid = ws.workspace_id
        entries = await rt.blackboard.list(wid, include_deleted=True)
        result[wid] = {
            "entries": entries,
            "history": {
                e.artifact_key: await rt.blackboard.history(wid, e.artifact_key) for e in entries
            },
            "feedback": await rt.blackboard.list_feedback(wid),
            "snapshots": await rt.snapshots.list(wid),
        }
    return result


# -- put: versions and events --------------------------------------------------------------------


async def test_put_creates_then_updates_with_events_carrying_the_artifact(
    rt: cowork.Runtime, wid: str
) -> None:
    seen = len(await settled_log(rt))
    first = await rt.blackboard.put(wid, "notes/plan.md", {"a": 1}, actor="agent-1")
    assert (first.version, first.deleted, first.payload) == (1, False, {"a": 1})
    assert (first.workspace_id, first.artifact_key, first.tenant_id) == (wid, "notes/plan.md", "t1")
    assert (first.actor, first.artifact_type, first.owner_id) == ("agent-1", "document", "owner-a")
    second = await rt.blackboard.put(
        wid, "notes/plan.md", {"a": 2}, actor="agent-2", artifact_type="markdown"
    )
    assert (second.version, second.artifact_id) == (2, first.artifact_id)
    assert (second.actor, second.artifact_type) == ("agent-2", "markdown")
    assert await rt.blackboard.get(wid, "notes/plan.md") == second

    events = await log_since(rt, seen)
    assert kinds(events) == [
        "blackboard:entry:created",
        "workspace:artifact:updated",
        "blackboard:entry:updated",
        "workspace:artifact:updated",
    ]
    for event, version in zip(events, [1, 1, 2, 2], strict=True):
        assert event.payload["workspaceId"] == wid
        assert event.payload["artifactKey"] == "notes/plan.md"
        assert event.payload["artifactId"] == first.artifact_id
        assert event.payload["version"] == version
    assert events[0].payload["operation"] == "create"
    assert events[2].payload["operation"] == "update"
    assert events[2].payload["previousVersion"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"l": [], "d": {}, "n": None, "t": True, "f": False, "x": 1.5, "i": 2**53, "s": "ü✓ 键"},
        [],
        {},
        [[], {}, [None]],
        "just text",
        0,
        False,
    ],
    ids=lambda p: type(p).__name__,
)
async def test_payloads_round_trip_exactly(rt: cowork.Runtime, wid: str, payload: Any) -> None:
    entry = await rt.blackboard.put(wid, "doc", payload, actor="s")
    for got in (
        entry.payload,
        (await rt.blackboard.get(wid, "doc")).payload,  # type: ignore[union-attr]
        (await rt.blackboard.get_version(wid, "doc", 1)).payload,  # type: ignore[union-attr]
    ):
        assert got == payload
        assert json.dumps(got, sort_keys=True) == json.dumps(payload, sort_keys=True)


async def test_a_payload_just_under_the_cap_is_stored(rt: cowork.Runtime, wid: str) -> None:
    payload = {"blob": "x" * (DEFAULT_DOCUMENT_BYTES - 100)}
    entry = await rt.blackboard.put(wid, "big", payload, actor="s")
    stored = await rt.blackboard.get(wid, "big")
    assert entry.version == 1 and stored is not None and stored.payload == payload


async def test_list_orders_by_key_and_hides_tombstones(rt: cowork.Runtime, wid: str) -> None:
    for key in ("b", "a", "c"):
        await rt.blackboard.put(wid, key, {"k": key}, actor="s")
    await rt.blackboard.delete(wid, "b", actor="s")
    assert [e.artifact_key for e in await rt.blackboard.list(wid)] == ["a", "c"]
    every = await rt.blackboard.list(wid, include_deleted=True)
    assert [(e.artifact_key, e.deleted) for e in every] == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]
    assert await rt.blackboard.get(wid, "missing") is None


# -- expected_version, case by case ------------------------------------------------------------


async def test_expected_version_none_writes_unconditionally(rt: cowork.Runtime, wid: str) -> None:
    assert (await rt.blackboard.put(wid, "k", 1, actor="s", expected_version=None)).version == 1
    assert (await rt.blackboard.put(wid, "k", 2, actor="s", expected_version=None)).version == 2
    assert (await rt.blackboard.put(wid, "k", 3, actor="s")).version == 3


async def test_expected_version_zero_only_creates(rt: cowork.Runtime, wid: str) -> None:
    created = await rt.blackboard.put(wid, "k", {"v": 1}, actor="s", expected_version=0)
    assert created.version == 1
    seen = len(await settled_log(rt))
    with pytest.raises(cowork.VersionConflict) as info:
        await rt.blackboard.put(wid, "k", {"v": 2}, actor="s", expected_version=0)
    assert (info.value.current_version, info.value.expected_version) == (1, 0)
    assert [v.version for v in await rt.blackboard.history(wid, "k")] == [1]
    assert await log_since(rt, seen) == []

    await rt.blackboard.delete(wid, "k", actor="s")
    recreated = await rt.blackboard.put(wid, "k", {"v": 3}, actor="s", expected_version=0)
    assert recreated.version == 3 and recreated.artifact_id == created.artifact_id
    assert not recreated.deleted
    history = await rt.blackboard.history(wid, "k")
    assert [(v.version, v.operation, v.deleted) for v in history] == [
        (1, "create", False),
        (2, "delete", True),
        (3, "recreate", False),
    ]
    assert kinds(await log_since(rt, seen)) == [
        "blackboard:entry:deleted",
        "blackboard:entry:created",
        "workspace:artifact:updated",
    ]


async def test_expected_version_n_writes_only_on_a_match(rt: cowork.Runtime, wid: str) -> None:
    await rt.blackboard.put(wid, "k", {"v": 1}, actor="s")
    second = await rt.blackboard.put(wid, "k", {"v": 2}, actor="s", expected_version=1)
    assert second.version == 2
    seen = len(await settled_log(rt))
    for stale in (1, 3, 99):
        with pytest.raises(cowork.VersionConflict) as info:
            await rt.blackboard.put(wid, "k", {"v": "x"}, actor="s", expected_version=stale)
        assert (info.value.current_version, info.value.expected_version) == (2, stale)
        assert "2" in str(info.value)
    with pytest.raises(cowork.VersionConflict) as info:
        await rt.blackboard.delete(wid, "k", actor="s", expected_version=1)
    assert info.value.current_version == 2
    with pytest.raises(cowork.VersionConflict) as info:
        await rt.blackboard.rollback(wid, "k", 1, actor="s", expected_version=1)
    assert info.value.current_version == 2
    entry = await rt.blackboard.get(wid, "k")
    assert entry is not None and (entry.version, entry.payload) == (2, {"v": 2})
    assert len(await rt.blackboard.history(wid, "k")) == 2
    assert await log_since(rt, seen) == []

    assert (await rt.blackboard.delete(wid, "k", actor="s", expected_version=2)).version == 3


async def test_expected_version_n_on_a_missing_artifact_reports_missing(
    rt: cowork.Runtime, wid: str
) -> None:
    with pytest.raises(cowork.VersionConflict) as info:
        await rt.blackboard.put(wid, "never", {"v": 1}, actor="s", expected_version=1)
    assert (info.value.current_version, info.value.expected_version) == (None, 1)
    assert await rt.blackboard.get(wid, "never", include_deleted=True) is None
    assert await rt.blackboard.history(wid, "never") == []

    await rt.blackboard.put(wid, "gone", {"v": 1}, actor="s")
    await rt.blackboard.delete(wid, "gone", actor="s")
    for expected in (1, 2):
        with pytest.raises(cowork.VersionConflict) as info:
            await rt.blackboard.put(wid, "gone", {"v": 9}, actor="s", expected_version=expected)
        assert info.value.current_version is None
    assert len(await rt.blackboard.history(wid, "gone")) == 2


@pytest.mark.parametrize("bad", [-1, 1.5, True, False, "2", 1.0, [1]])
async def test_invalid_expected_versions_are_rejected_before_anything_is_written(
    rt: cowork.Runtime, wid: str, bad: Any
) -> None:
    await rt.blackboard.put(wid, "k", {"v": 1}, actor="s")
    before = await state(rt)
    seen = len(await settled_log(rt))
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: rt.blackboard.put(wid, "k", {"v": 2}, actor="s", expected_version=bad),
        lambda: rt.blackboard.put(wid, "new", {"v": 2}, actor="s", expected_version=bad),
        lambda: rt.blackboard.delete(wid, "k", actor="s", expected_version=bad),
        lambda: rt.blackboard.rollback(wid, "k", 1, actor="s", expected_version=bad),
    ]
    for call in calls:
        with pytest.raises(cowork.InvalidExpectedVersion):
            await call()
    assert await state(rt) == before
    assert await log_since(rt, seen) == []


async def test_concurrent_writers_with_one_expected_version_have_one_winner(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "k", {"v": 0}, actor="s")
    results = await asyncio.gather(
        *(
            rt.blackboard.put(wid, "k", {"writer": i}, actor=f"w{i}", expected_version=1)
            for i in range(6)
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, BlackboardEntry)]
    losses = [r for r in results if isinstance(r, cowork.VersionConflict)]
    assert len(wins) == 1 and len(losses) == 5, results
    assert all(loss.current_version == 2 for loss in losses)
    assert [v.version for v in await rt.blackboard.history(wid, "k")] == [1, 2]


# -- history, get_version, diff, rollback, delete --------------------------------------------


async def test_rollback_writes_a_new_version_with_the_old_content(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "k", {"v": 1, "l": []}, actor="s", artifact_type="plan")
    await rt.blackboard.put(wid, "k", {"v": 2}, actor="s", artifact_type="draft")
    seen = len(await settled_log(rt))
    rolled = await rt.blackboard.rollback(wid, "k", 1, actor="reviewer")
    assert (rolled.version, rolled.payload, rolled.actor) == (3, {"v": 1, "l": []}, "reviewer")
    assert rolled.artifact_type == "plan"
    [*_, last] = await rt.blackboard.history(wid, "k")
    assert (last.version, last.operation, last.based_on) == (3, "rollback", 1)

    events = await log_since(rt, seen)
    assert kinds(events) == [
        "blackboard:entry:updated",
        "workspace:artifact:updated",
        "workspace:artifact:rollback",
    ]
    assert events[2].payload["rolledBackTo"] == 1
    assert all(e.payload["version"] == 3 and e.payload["workspaceId"] == wid for e in events)

    with pytest.raises(cowork.NotFound):
        await rt.blackboard.rollback(wid, "k", 9, actor="s")
    with pytest.raises(cowork.NotFound):
        await rt.blackboard.rollback(wid, "missing", 1, actor="s")
    bad_versions: list[Any] = [0, -1, True, 1.5]
    for bad in bad_versions:
        with pytest.raises(cowork.ValidationError):
            await rt.blackboard.rollback(wid, "k", bad, actor="s")
    await rt.blackboard.delete(wid, "k", actor="s")
    await rt.blackboard.put(wid, "k", {"v": 5}, actor="s")
    with pytest.raises(cowork.ValidationError):
        await rt.blackboard.rollback(wid, "k", 4, actor="s")  # version 4 is the tombstone
    assert len(await rt.blackboard.history(wid, "k")) == 5


async def test_delete_writes_a_tombstone_and_hides_the_artifact(
    rt: cowork.Runtime, wid: str
) -> None:
    created = await rt.blackboard.put(wid, "k", {"v": 1}, actor="s")
    seen = len(await settled_log(rt))
    tomb = await rt.blackboard.delete(wid, "k", actor="remover")
    assert (tomb.version, tomb.deleted, tomb.artifact_id) == (2, True, created.artifact_id)
    assert await rt.blackboard.get(wid, "k") is None
    shown = await rt.blackboard.get(wid, "k", include_deleted=True)
    assert shown is not None and shown.deleted and shown.version == 2
    [event] = await log_since(rt, seen)
    assert event.event_type == "blackboard:entry:deleted"
    assert event.payload["workspaceId"] == wid
    assert (event.payload["artifactKey"], event.payload["version"]) == ("k", 2)
    assert event.payload["artifactId"] == created.artifact_id

    with pytest.raises(cowork.NotFound):
        await rt.blackboard.delete(wid, "k", actor="s")
    with pytest.raises(cowork.NotFound):
        await rt.blackboard.delete(wid, "never", actor="s")
    assert len(await rt.blackboard.history(wid, "k")) == 2


async def test_get_version_and_diff(rt: cowork.Runtime, wid: str) -> None:
    await rt.blackboard.put(wid, "k", {"title": "a", "tags": ["x"], "gone": 1}, actor="s")
    await rt.blackboard.put(wid, "k", {"title": "b", "tags": ["x", "y"], "new": {}}, actor="s")
    v1 = await rt.blackboard.get_version(wid, "k", 1)
    assert v1 is not None and v1.payload["title"] == "a" and v1.operation == "create"
    assert await rt.blackboard.get_version(wid, "k", 3) is None
    assert await rt.blackboard.get_version(wid, "never", 1) is None
    bad_versions: list[Any] = [0, -1, True, "1"]
    for bad in bad_versions:
        with pytest.raises(cowork.ValidationError):
            await rt.blackboard.get_version(wid, "k", bad)

    diff = await rt.blackboard.diff(wid, "k", 1, 2)
    assert (diff.from_version, diff.to_version, diff.identical) == (1, 2, False)
    assert [(c.op, c.path, c.old, c.new) for c in diff.changes] == [
        ("remove", "/gone", 1, None),
        ("add", "/new", None, {}),
        ("add", "/tags/1", None, "y"),
        ("replace", "/title", "a", "b"),
    ]
    assert (await rt.blackboard.diff(wid, "k", 2, 2)).identical
    with pytest.raises(cowork.NotFound):
        await rt.blackboard.diff(wid, "k", 1, 7)
    with pytest.raises(cowork.NotFound):
        await rt.blackboard.diff(wid, "never", 1, 2)


# -- everything survives a restart ------------------------------------------------------------


async def build_history(url: str) -> tuple[str, str]:
    """Write a history with every operation, then close the runtime. Returns (workspace, id)."""
    async with await cowork.open(url, tenant_id="t1", owner_id="owner-a") as rt:
        ws = await rt.workspaces.create(name="Persist", actor="alice")
        wid = ws.workspace_id
        first = await rt.blackboard.put(wid, "doc", {"v": 1, "l": []}, actor="a")
        await rt.blackboard.put(wid, "doc", {"v": 2, "extra": {"x": 1}}, actor="b")
        await rt.blackboard.put(wid, "doc", {"v": 3}, actor="c", expected_version=2)
        await rt.blackboard.rollback(wid, "doc", 1, actor="d")
        await rt.blackboard.delete(wid, "doc", actor="e")
        await rt.blackboard.put(wid, "doc", {"v": 6}, actor="f", expected_version=0)
        await rt.blackboard.put(wid, "gone", {"g": 1}, actor="a")
        await rt.blackboard.delete(wid, "gone", actor="a")
        return wid, first.artifact_id


EXPECTED_HISTORY = [
    [1, "create", False, {"v": 1, "l": []}, "a", None],
    [2, "update", False, {"v": 2, "extra": {"x": 1}}, "b", 1],
    [3, "update", False, {"v": 3}, "c", 2],
    [4, "rollback", False, {"v": 1, "l": []}, "d", 1],
    [5, "delete", True, None, "e", 4],
    [6, "recreate", False, {"v": 6}, "f", None],
]


async def test_history_rollback_delete_and_recreate_survive_a_restart(
    database_url: str,
) -> None:
    wid, artifact_id = await build_history(database_url)
    async with await cowork.open(database_url, tenant_id="t1", owner_id="owner-a") as rt:
        history = await rt.blackboard.history(wid, "doc")
        assert [
            [v.version, v.operation, v.deleted, v.payload, v.actor, v.based_on] for v in history
        ] == EXPECTED_HISTORY
        assert {v.artifact_id for v in history} == {artifact_id}
        current = await rt.blackboard.get(wid, "doc")
        assert current is not None
        assert (current.version, current.payload, current.artifact_id) == (6, {"v": 6}, artifact_id)
        v2 = await rt.blackboard.get_version(wid, "doc", 2)
        assert v2 is not None and v2.payload == {"v": 2, "extra": {"x": 1}}
        diff = await rt.blackboard.diff(wid, "doc", 1, 2)
        assert [(c.op, c.path) for c in diff.changes] == [
            ("add", "/extra"),
            ("remove", "/l"),
            ("replace", "/v"),
        ]
        assert await rt.blackboard.get(wid, "gone") is None
        gone = await rt.blackboard.get(wid, "gone", include_deleted=True)
        assert gone is not None and gone.deleted and gone.version == 2
        assert [e.artifact_key for e in await rt.blackboard.list(wid)] == ["doc"]

        # and it keeps going where it stopped
        with pytest.raises(cowork.VersionConflict) as info:
            await rt.blackboard.put(wid, "doc", {"v": 7}, actor="g", expected_version=5)
        assert info.value.current_version == 6
        assert (await rt.blackboard.rollback(wid, "doc", 2, actor="g")).version == 7
        again = await rt.blackboard.put(wid, "gone", {"g": 2}, actor="g", expected_version=0)
        assert (again.version, again.deleted) == (3, False)
        events = await settled_log(rt)
        assert kinds(events).count("blackboard:entry:deleted") == 2


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    import cowork

    async def main(url, wid):
        async with await cowork.open(url, tenant_id="t1", worker=False, required=True) as rt:
            history = await rt.blackboard.history(wid, "doc")
            current = await rt.blackboard.get(wid, "doc")
            gone = await rt.blackboard.get(wid, "gone", include_deleted=True)
            diff = await rt.blackboard.diff(wid, "doc", 2, 3)
            print(json.dumps({
                "history": [
                    [v.version, v.operation, v.deleted, v.payload, v.actor, v.based_on]
                    for v in history
                ],
                "artifact_ids": sorted({v.artifact_id for v in history}),
                "current": [current.version, current.payload, current.artifact_id],
                "hidden": await rt.blackboard.get(wid, "gone") is None,
                "gone": [gone.version, gone.deleted],
                "diff": [[c.op, c.path, c.old, c.new] for c in diff.changes],
            }))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_history_reads_back_from_a_separate_process(database_url: str) -> None:
    wid, artifact_id = await build_history(database_url)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CHILD, database_url, wid],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["history"] == EXPECTED_HISTORY
    assert seen["artifact_ids"] == [artifact_id]
    assert seen["current"] == [6, {"v": 6}, artifact_id]
    assert seen["hidden"] is True and seen["gone"] == [2, True]
    assert seen["diff"] == [
        ["remove", "/extra", {"x": 1}, None],
        ["replace", "/v", 2, 3],
    ]


# -- feedback -------------------------------------------------------------------------------


async def test_a_thousand_concurrent_feedback_threads_are_all_kept(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    threads: list[cowork.Feedback] = []
    for batch in range(10):
        threads.extend(
            await asyncio.gather(
                *(
                    rt.blackboard.add_feedback(
                        wid, actor=f"agent-{i % 7}", body=f"note {i}", artifact_key="doc"
                    )
                    for i in range(batch * 100, batch * 100 + 100)
                )
            )
        )
    assert len({t.feedback_id for t in threads}) == 1000
    stored = await rt.blackboard.list_feedback(wid, artifact_key="doc")
    assert len(stored) == 1000
    assert len({f.feedback_id for f in stored}) == 1000
    assert {f.body for f in stored} == {f"note {i}" for i in range(1000)}
    assert all(f.status is FeedbackStatus.PENDING for f in stored)
    events = await settled_log(rt)
    assert kinds(events).count("feedback:added") == 1000
    assert kinds(events).count("workspace:feedback:added") == 1000


async def test_feedback_events_carry_the_target_artifact_key(rt: cowork.Runtime, wid: str) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    seen = len(await settled_log(rt))
    on_doc = await rt.blackboard.add_feedback(
        wid,
        actor="bob",
        body="typo in line 3",
        artifact_key="doc",
        severity="nit",
        tags=["style", "style", "docs"],
        metadata={"line": 3, "refs": []},
    )
    assert (on_doc.artifact_key, on_doc.severity, on_doc.status) == (
        "doc",
        FeedbackSeverity.NIT,
        FeedbackStatus.PENDING,
    )
    assert on_doc.tags == ("style", "docs") and on_doc.comments == ()
    assert on_doc.metadata == {"line": 3, "refs": []}
    assert (on_doc.tenant_id, on_doc.owner_id, on_doc.actor) == ("t1", "owner-a", "bob")
    on_ws = await rt.blackboard.add_feedback(wid, actor="carol", body="overall fine")
    assert on_ws.artifact_key is None and on_ws.severity is FeedbackSeverity.MINOR

    events = await log_since(rt, seen)
    assert kinds(events) == ["feedback:added", "workspace:feedback:added"] * 2
    for event in events[:2]:
        assert event.payload["workspaceId"] == wid
        assert event.payload["artifactKey"] == "doc"
        assert event.payload["feedbackId"] == on_doc.feedback_id
    for event in events[2:]:
        assert event.payload["workspaceId"] == wid
        assert "artifactKey" in event.payload and event.payload["artifactKey"] is None
    assert await rt.blackboard.get_feedback(on_doc.workspace_id, on_doc.feedback_id) == on_doc
    assert [f.feedback_id for f in await rt.blackboard.list_feedback(wid)] == [
        on_doc.feedback_id,
        on_ws.feedback_id,
    ]


async def test_feedback_updates_and_comments_persist_and_status_changes_are_evented(
    database_url: str,
) -> None:
    async with await cowork.open(database_url, tenant_id="t1") as rt:
        ws = await rt.workspaces.create(name="F", actor="alice")
        wid = ws.workspace_id
        await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
        fb = await rt.blackboard.add_feedback(wid, actor="bob", body="b", artifact_key="doc")
        seen = len(await settled_log(rt))

        moved = await rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="alice", status="in_progress"
        )
        assert moved.status is FeedbackStatus.IN_PROGRESS
        same = await rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="alice", status=FeedbackStatus.IN_PROGRESS
        )
        assert same.status is FeedbackStatus.IN_PROGRESS
        retagged = await rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="alice", severity="blocking", tags=["perf"]
        )
        assert retagged.severity is FeedbackSeverity.BLOCKING and retagged.tags == ("perf",)
        assert retagged.status is FeedbackStatus.IN_PROGRESS
        c1 = await rt.blackboard.add_comment(
            fb.workspace_id, fb.feedback_id, actor="carol", body="first"
        )
        c2 = await rt.blackboard.add_comment(
            fb.workspace_id, fb.feedback_id, actor="bob", body="second"
        )
        assert [c.body for c in c2.comments] == ["first", "second"]
        assert c1.comments[0].comment_id == c2.comments[0].comment_id
        assert c2.comments[0].comment_id != c2.comments[1].comment_id
        done = await rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="bob", status="addressed", tags=[]
        )
        assert done.status is FeedbackStatus.ADDRESSED and done.tags == ()

        events = await log_since(rt, seen)
        changes = [e for e in events if e.event_type == "feedback:status:changed"]
        assert [(e.payload["from"], e.payload["to"]) for e in changes] == [
            ("pending", "in_progress"),
            ("in_progress", "addressed"),
        ]
        for event in changes:
            assert event.payload["workspaceId"] == wid
            assert event.payload["artifactKey"] == "doc"
            assert event.payload["feedbackId"] == fb.feedback_id

    async with await cowork.open(database_url, tenant_id="t1") as rt2:
        stored = await rt2.blackboard.get_feedback(fb.workspace_id, fb.feedback_id)
        assert stored is not None
        assert (stored.status, stored.severity, stored.tags) == (
            FeedbackStatus.ADDRESSED,
            FeedbackSeverity.BLOCKING,
            (),
        )
        assert [(c.actor, c.body) for c in stored.comments] == [
            ("carol", "first"),
            ("bob", "second"),
        ]
        assert await rt2.blackboard.list_feedback(wid, status="pending") == []
        assert [
            f.feedback_id for f in await rt2.blackboard.list_feedback(wid, status="addressed")
        ] == [fb.feedback_id]


async def test_bad_feedback_input_raises_validation_errors_and_writes_nothing(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    fb = await rt.blackboard.add_feedback(wid, actor="bob", body="b", artifact_key="doc")
    before = await state(rt)
    seen = len(await settled_log(rt))
    add = rt.blackboard.add_feedback
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: add(wid, actor="bob", body="x", severity="huge"),
        lambda: add(wid, actor="bob", body="x", severity=""),
        lambda: add(wid, actor="bob", body=""),
        lambda: add(wid, actor="bob", body=7),  # type: ignore[arg-type]
        lambda: add(wid, actor="bob", body="x" * 20_001),
        lambda: add(wid, actor="", body="x"),
        lambda: add(wid, actor="bob", body="x", tags="one"),
        lambda: add(wid, actor="bob", body="x", artifact_key="bad\nkey"),
        lambda: add(wid, actor="bob", body="x", metadata={"s": {1}}),
        lambda: rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="a", status="done"
        ),
        lambda: rt.blackboard.update_feedback(
            fb.workspace_id, fb.feedback_id, actor="a", severity="meh"
        ),
        lambda: rt.blackboard.update_feedback(fb.workspace_id, fb.feedback_id, actor="a", status=3),  # type: ignore[arg-type]
        lambda: rt.blackboard.add_comment(fb.workspace_id, fb.feedback_id, actor="a", body="   "),
        lambda: rt.blackboard.list_feedback(wid, status="open"),
    ]
    for call in calls:
        with pytest.raises(cowork.ValidationError):
            await call()
    missing_targets: list[Callable[[], Awaitable[Any]]] = [
        lambda: add(wid, actor="bob", body="x", artifact_key="nope"),
        lambda: add("no-such-ws", actor="bob", body="x"),
        lambda: rt.blackboard.update_feedback(wid, "no-such", actor="a", status="addressed"),
        lambda: rt.blackboard.add_comment(wid, "no-such", actor="a", body="x"),
    ]
    for missing in missing_targets:
        with pytest.raises(cowork.NotFound):
            await missing()
    assert await rt.blackboard.get_feedback(wid, "no-such") is None
    assert await rt.blackboard.get_feedback("other-ws", fb.feedback_id) is None
    with pytest.raises(cowork.NotFound):  # a thread is reached only through its workspace
        await rt.blackboard.update_feedback("other-ws", fb.feedback_id, actor="a", status="wontfix")
    await rt.blackboard.delete(wid, "doc", actor="s")
    with pytest.raises(cowork.NotFound):
        await add(wid, actor="bob", body="x", artifact_key="doc")
    after = await state(rt)
    assert after[wid]["feedback"] == before[wid]["feedback"]
    assert kinds(await log_since(rt, seen)) == ["blackboard:entry:deleted"]


# -- atomicity: state and events commit together -----------------------------------------------


async def _setup_for_failure(rt: cowork.Runtime) -> dict[str, str]:
    ws = await rt.workspaces.create(name="Atomic", actor="alice", members=["bob"])
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    await rt.blackboard.put(wid, "doc", {"v": 2}, actor="s")
    fb = await rt.blackboard.add_feedback(wid, actor="bob", body="b", artifact_key="doc")
    return {"wid": wid, "fid": fb.feedback_id}


OPERATIONS: dict[str, Callable[[cowork.Runtime, dict[str, str]], Awaitable[Any]]] = {
    "put_update": lambda rt, ids: rt.blackboard.put(ids["wid"], "doc", {"v": 3}, actor="s"),
    "put_create": lambda rt, ids: rt.blackboard.put(ids["wid"], "new", {"v": 1}, actor="s"),
    "put_expected": lambda rt, ids: rt.blackboard.put(
        ids["wid"], "doc", {"v": 3}, actor="s", expected_version=2
    ),
    "rollback": lambda rt, ids: rt.blackboard.rollback(ids["wid"], "doc", 1, actor="s"),
    "delete_artifact": lambda rt, ids: rt.blackboard.delete(ids["wid"], "doc", actor="s"),
    "close": lambda rt, ids: rt.workspaces.close(ids["wid"]),
    "delete_workspace": lambda rt, ids: rt.workspaces.delete(ids["wid"]),
    "add_member": lambda rt, ids: rt.workspaces.add_member(ids["wid"], "carol"),
    "remove_member": lambda rt, ids: rt.workspaces.remove_member(ids["wid"], "bob"),
    "create_workspace": lambda rt, ids: rt.workspaces.create(name="W", actor="alice"),
    "add_feedback": lambda rt, ids: rt.blackboard.add_feedback(
        ids["wid"], actor="bob", body="x", artifact_key="doc"
    ),
    "update_feedback": lambda rt, ids: rt.blackboard.update_feedback(
        ids["wid"], ids["fid"], actor="alice", status="addressed"
    ),
    "add_comment": lambda rt, ids: rt.blackboard.add_comment(
        ids["wid"], ids["fid"], actor="a", body="c"
    ),
    "snapshot_create": lambda rt, ids: rt.snapshots.create(ids["wid"], actor="alice"),
}


_TEST_TASK: dict[str, asyncio.Task[Any] | None] = {"task": None}


def _ours() -> bool:
    """Only calls made by the test's own task are broken (background workers go untouched)."""
    return asyncio.current_task() is _TEST_TASK["task"]


def _break_emit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next event emission raises before anything is appended."""
    real = TenantService._emit
    calls: list[int] = []

    async def broken(self: TenantService, ctx: Any, events: Any) -> Any:
        if _ours():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("injected failure before the event append")
        return await real(self, ctx, events)

    monkeypatch.setattr(TenantService, "_emit", broken)
    return calls


def _break_inside_append(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next append writes its events, then raises (a failure inside the append)."""
    real = cowork.events.log.append_events
    calls: list[int] = []

    async def broken(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if _ours():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("injected failure after the event rows were written")
        return result

    monkeypatch.setattr(cowork.kernel.service, "append_events", broken)
    monkeypatch.setattr(cowork.events.log, "append_events", broken)
    return calls


@pytest.mark.parametrize("where", ["before_append", "inside_append"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_a_failure_between_state_and_event_leaves_neither_visible(
    rt: cowork.Runtime, monkeypatch: pytest.MonkeyPatch, operation: str, where: str
) -> None:
    ids = await _setup_for_failure(rt)
    before = await state(rt)
    seen = len(await settled_log(rt))

    monkeypatch.setitem(_TEST_TASK, "task", asyncio.current_task())
    calls = (_break_emit if where == "before_append" else _break_inside_append)(monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        await OPERATIONS[operation](rt, ids)
    assert calls == [1], "the failure must have been injected exactly once"
    assert await state(rt) == before, "the state change must roll back with the event"
    assert await log_since(rt, seen) == [], "no event of the failed operation may be visible"

    # the same operation succeeds afterwards, and then both its state and its events show
    await OPERATIONS[operation](rt, ids)
    assert await state(rt) != before
    assert await log_since(rt, seen) != []


async def test_every_operation_event_names_its_workspace(rt: cowork.Runtime) -> None:
    ids = await _setup_for_failure(rt)
    wid = ids["wid"]
    for name in (
        "put_update",
        "put_create",
        "rollback",
        "add_member",
        "remove_member",
        "add_feedback",
        "update_feedback",
        "add_comment",
        "snapshot_create",
        "delete_artifact",
        "close",
    ):
        await OPERATIONS[name](rt, ids)
    await rt.workspaces.open(wid)
    await rt.blackboard.put(wid, "doc", {"v": 9}, actor="s", expected_version=0)
    snapshot = await rt.snapshots.create(wid, actor="alice")
    await rt.snapshots.restore(snapshot.workspace_id, snapshot.snapshot_id, actor="alice")
    await rt.workspaces.archive(wid)
    await rt.workspaces.delete(wid)
    events = await settled_log(rt)
    assert len(events) > 25
    for event in events:
        assert event.payload.get("workspaceId") == wid, event
        assert event.aggregate_type and event.aggregate_id, event
        if event.event_type.startswith(("blackboard:", "workspace:artifact:")):
            for field in ("artifactKey", "version", "artifactId"):
                assert event.payload.get(field) is not None, (event.event_type, field)
        if event.event_type.startswith(("feedback:", "workspace:feedback:")):
            assert "artifactKey" in event.payload and event.payload.get("feedbackId"), event
        if event.event_type.startswith("snapshot:"):
            assert event.payload.get("snapshotId"), event


# -- rt.transaction() ------------------------------------------------------------------------


async def test_operations_in_one_transaction_commit_together(rt: cowork.Runtime) -> None:
    async with rt.transaction() as tx:
        ws = await tx.workspaces.create(name="Tx", actor="alice")
        await tx.blackboard.put(ws.workspace_id, "doc", {"v": 1}, actor="s")
        await tx.blackboard.put(ws.workspace_id, "doc", {"v": 2}, actor="s", expected_version=1)
        fb = await tx.blackboard.add_feedback(
            ws.workspace_id, actor="bob", body="b", artifact_key="doc"
        )
        await tx.workspaces.add_member(ws.workspace_id, "bob")
        await tx.events.publish("test:custom", {"workspaceId": ws.workspace_id})
    entry = await rt.blackboard.get(ws.workspace_id, "doc")
    assert entry is not None and entry.version == 2
    assert await rt.blackboard.get_feedback(fb.workspace_id, fb.feedback_id) is not None
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.members == ("alice", "bob")
    assert kinds(await settled_log(rt)) == [
        "workspace:created",
        "workspace:member:added",
        "blackboard:entry:created",
        "workspace:artifact:updated",
        "blackboard:entry:updated",
        "workspace:artifact:updated",
        "feedback:added",
        "workspace:feedback:added",
        "workspace:member:added",
        "test:custom",
    ]


class Boom(Exception):
    pass


async def test_operations_in_one_transaction_roll_back_together(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="Tx", actor="alice")
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    before = await state(rt)
    seen = len(await settled_log(rt))

    with pytest.raises(Boom):
        async with rt.transaction() as tx:
            await tx.workspaces.create(name="Never", actor="alice")
            await tx.blackboard.put(wid, "doc", {"v": 2}, actor="s")
            await tx.blackboard.put(wid, "other", {"v": 1}, actor="s")
            await tx.blackboard.add_feedback(wid, actor="bob", body="b")
            await tx.workspaces.add_member(wid, "bob")
            await tx.workspaces.close(wid)
            raise Boom

    with pytest.raises(cowork.VersionConflict):
        async with rt.transaction() as tx:
            await tx.blackboard.put(wid, "doc", {"v": 2}, actor="s")
            await tx.blackboard.put(wid, "doc", {"v": 3}, actor="s", expected_version=1)

    assert await state(rt) == before
    assert await log_since(rt, seen) == []


# -- bad input -------------------------------------------------------------------------------

BAD_PUTS: dict[str, tuple[dict[str, Any], type[cowork.CoworkError]]] = {
    "empty key": ({"artifact_key": ""}, cowork.ValidationError),
    "blank key": ({"artifact_key": "  "}, cowork.ValidationError),
    "10k key": ({"artifact_key": "k" * 10_000}, cowork.ValidationError),
    "control char key": ({"artifact_key": "a\x01b"}, cowork.ValidationError),
    "newline key": ({"artifact_key": "a\nb"}, cowork.ValidationError),
    "nul key": ({"artifact_key": "a\x00b"}, cowork.ValidationError),
    "non-string key": ({"artifact_key": 5}, cowork.ValidationError),
    "set payload": ({"payload": {1, 2}}, cowork.PayloadRejected),
    "object payload": ({"payload": object()}, cowork.PayloadRejected),
    "nan payload": ({"payload": float("nan")}, cowork.PayloadRejected),
    "nested nan": ({"payload": {"x": [float("inf")]}}, cowork.PayloadRejected),
    "int keys": ({"payload": {1: "a"}}, cowork.PayloadRejected),
    "nul in string": ({"payload": {"s": "a\x00b"}}, cowork.PayloadRejected),
    "lone surrogate": ({"payload": {"s": "\ud800"}}, cowork.PayloadRejected),
    "bytes payload": ({"payload": b"raw"}, cowork.PayloadRejected),
    "over 1 MiB": ({"payload": {"blob": "x" * DEFAULT_DOCUMENT_BYTES}}, cowork.PayloadRejected),
    "expected -1": ({"expected_version": -1}, cowork.InvalidExpectedVersion),
    "expected 1.5": ({"expected_version": 1.5}, cowork.InvalidExpectedVersion),
    "expected True": ({"expected_version": True}, cowork.InvalidExpectedVersion),
    "expected '2'": ({"expected_version": "2"}, cowork.InvalidExpectedVersion),
    "empty actor": ({"actor": ""}, cowork.ValidationError),
    "long actor": ({"actor": "s" * 101}, cowork.ValidationError),
    "empty type": ({"artifact_type": ""}, cowork.ValidationError),
    "bad workspace id": ({"workspace_id": "no spaces allowed"}, cowork.ValidationError),
    "empty workspace id": ({"workspace_id": ""}, cowork.ValidationError),
}


@pytest.mark.parametrize("case", list(BAD_PUTS))
async def test_bad_put_input_raises_the_documented_error_and_writes_nothing(
    rt: cowork.Runtime, wid: str, case: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    before = await state(rt)
    seen = len(await settled_log(rt))
    fields, error = BAD_PUTS[case]
    args: dict[str, Any] = {
        "workspace_id": wid,
        "artifact_key": "doc",
        "payload": {"v": 2},
        "actor": "s",
        **fields,
    }
    with pytest.raises(error) as info:
        await rt.blackboard.put(**args)
    assert type(info.value).__module__.startswith("cowork")
    assert await state(rt) == before
    assert await log_since(rt, seen) == []


@pytest.mark.parametrize("key", ["", "k" * 10_000, "a\x1fb"])
async def test_bad_keys_are_rejected_by_every_read_and_write(
    rt: cowork.Runtime, wid: str, key: str
) -> None:
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: rt.blackboard.get(wid, key),
        lambda: rt.blackboard.history(wid, key),
        lambda: rt.blackboard.get_version(wid, key, 1),
        lambda: rt.blackboard.diff(wid, key, 1, 2),
        lambda: rt.blackboard.delete(wid, key, actor="s"),
        lambda: rt.blackboard.rollback(wid, key, 1, actor="s"),
        lambda: rt.blackboard.list_feedback(wid, artifact_key=key),
    ]
    for call in calls:
        with pytest.raises(cowork.ValidationError):
            await call()


# -- owners and tenants ----------------------------------------------------------------------


async def test_owner_id_is_recorded_and_not_taken_over_by_a_later_writer(
    rt: cowork.Runtime, wid: str
) -> None:
    first = await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    assert first.owner_id == "owner-a"
    other = rt.for_tenant("t1", owner_id="owner-b")
    second = await other.blackboard.put(wid, "doc", {"v": 2}, actor="s")
    assert second.version == 2 and second.owner_id == "owner-a"
    await other.blackboard.rollback(wid, "doc", 1, actor="s")
    stored = await rt.blackboard.get(wid, "doc")
    assert stored is not None and stored.owner_id == "owner-a"
    theirs = await other.blackboard.put(wid, "b-doc", {"v": 1}, actor="s")
    assert theirs.owner_id == "owner-b"
    fb = await other.blackboard.add_feedback(wid, actor="bob", body="x")
    assert fb.owner_id == "owner-b"
    updated = await rt.blackboard.update_feedback(
        fb.workspace_id, fb.feedback_id, actor="alice", status="addressed"
    )
    assert updated.owner_id == "owner-b"


async def test_another_tenants_artifacts_and_feedback_are_invisible(rt: cowork.Runtime) -> None:
    t2 = rt.for_tenant("t2")
    ws2 = await t2.workspaces.create(name="Theirs", actor="mallory")
    w2 = ws2.workspace_id
    await t2.blackboard.put(w2, "secret", {"v": 1}, actor="m")
    await t2.blackboard.put(w2, "secret", {"v": 2}, actor="m")
    await t2.blackboard.put(w2, "deleted", {"v": 1}, actor="m")
    await t2.blackboard.delete(w2, "deleted", actor="m")
    fb2 = await t2.blackboard.add_feedback(w2, actor="m", body="x", artifact_key="secret")
    snap2 = await t2.snapshots.create(w2, actor="m")

    assert await rt.blackboard.get(w2, "secret") is None
    assert await rt.blackboard.get(w2, "deleted", include_deleted=True) is None
    assert await rt.blackboard.list(w2, include_deleted=True) == []
    assert await rt.blackboard.history(w2, "secret") == []
    assert await rt.blackboard.get_version(w2, "secret", 1) is None
    assert await rt.blackboard.list_feedback(w2) == []
    assert await rt.blackboard.get_feedback(fb2.workspace_id, fb2.feedback_id) is None
    assert await rt.snapshots.get(snap2.workspace_id, snap2.snapshot_id) is None
    assert await rt.snapshots.list(w2) == []
    refused: list[Callable[[], Awaitable[Any]]] = [
        lambda: rt.blackboard.diff(w2, "secret", 1, 2),
        lambda: rt.blackboard.put(w2, "secret", {"v": "x"}, actor="s"),
        lambda: rt.blackboard.put(w2, "fresh", {"v": "x"}, actor="s"),
        lambda: rt.blackboard.rollback(w2, "secret", 1, actor="s"),
        lambda: rt.blackboard.delete(w2, "secret", actor="s"),
        lambda: rt.blackboard.add_feedback(w2, actor="a", body="x"),
        lambda: rt.blackboard.update_feedback(
            fb2.workspace_id, fb2.feedback_id, actor="a", status="wontfix"
        ),
        lambda: rt.blackboard.add_comment(fb2.workspace_id, fb2.feedback_id, actor="a", body="x"),
        lambda: rt.snapshots.restore(snap2.workspace_id, snap2.snapshot_id, actor="a"),
    ]
    for call in refused:
        with pytest.raises(cowork.NotFound):
            await call()
    assert await settled_log(rt) == []

    stored = await t2.blackboard.get(w2, "secret")
    assert stored is not None and (stored.version, stored.payload) == (2, {"v": 2})
    assert len(await t2.blackboard.history(w2, "secret")) == 2
    theirs = await t2.blackboard.get_feedback(fb2.workspace_id, fb2.feedback_id)
    assert theirs is not None and theirs.status is FeedbackStatus.PENDING
    assert theirs.comments == ()


async def test_same_ids_in_two_tenants_keep_separate_versions(rt: cowork.Runtime) -> None:
    t2 = rt.for_tenant("t2")
    await rt.workspaces.create(workspace_id="shared", name="Mine", actor="a")
    await t2.workspaces.create(workspace_id="shared", name="Theirs", actor="b")
    await rt.blackboard.put("shared", "doc", {"t": 1}, actor="s")
    await t2.blackboard.put("shared", "doc", {"t": 2, "n": 1}, actor="s")
    await t2.blackboard.put("shared", "doc", {"t": 2, "n": 2}, actor="s")
    mine = await rt.blackboard.get("shared", "doc")
    theirs = await t2.blackboard.get("shared", "doc")
    assert mine is not None and (mine.version, mine.payload) == (1, {"t": 1})
    assert theirs is not None and (theirs.version, theirs.payload) == (2, {"t": 2, "n": 2})
    assert mine.artifact_id != theirs.artifact_id
