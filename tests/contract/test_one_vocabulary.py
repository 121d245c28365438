"""One vocabulary and regular shapes across the domain API, and every change evented.

* The acting party is ``actor=`` in every write of every service, and the records name it
  ``actor`` (a workspace keeps ``created_by``: the actor who created it).
* Operations on a feedback thread or a snapshot take the workspace id first, as their siblings
  do, and do not reach a thread or snapshot of another workspace.
* ``workspaces.close(..., reason=)`` like ``workflows.cancel(..., reason=)``; ``workspaces.update``.
* Feedback severity and tag edits, and the member and tombstone changes of a snapshot restore,
  emit the events that the same change made by hand emits.

Runs on both backends through ``database_url``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

import cowork
from cowork.blackboard.service import BlackboardService
from cowork.snapshots.service import SnapshotsService
from cowork.workspaces.service import WorkspacesService
from tests.support.domain import log_since, settled_log

OLD_NAMES = {"source", "author_id", "author", "created_by", "creator", "user", "by"}


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1", owner_id="owner-a") as runtime:
        yield runtime


def _public_methods(cls: type) -> list[tuple[str, inspect.Signature]]:
    return [
        (name, inspect.signature(member))
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    ]


@pytest.mark.parametrize("service", [WorkspacesService, BlackboardService, SnapshotsService])
def test_every_write_names_the_acting_party_actor(service: type) -> None:
    methods = _public_methods(service)
    assert methods
    for name, signature in methods:
        stale = OLD_NAMES & set(signature.parameters)
        assert not stale, f"{service.__name__}.{name} still takes {sorted(stale)}"
    writes = {name for name, signature in methods if "actor" in signature.parameters}
    expected = {
        WorkspacesService: {
            "create",
            "update",
            "open",
            "close",
            "archive",
            "delete",
            "add_member",
            "remove_member",
        },
        BlackboardService: {
            "put",
            "rollback",
            "delete",
            "add_feedback",
            "update_feedback",
            "add_comment",
        },
        SnapshotsService: {"create", "restore"},
    }[service]
    assert expected <= writes


def test_thread_and_snapshot_operations_take_the_workspace_first() -> None:
    for cls, name, second in [
        (BlackboardService, "get_feedback", "feedback_id"),
        (BlackboardService, "update_feedback", "feedback_id"),
        (BlackboardService, "add_comment", "feedback_id"),
        (BlackboardService, "list_feedback", None),
        (SnapshotsService, "get", "snapshot_id"),
        (SnapshotsService, "restore", "snapshot_id"),
        (SnapshotsService, "list", None),
        (SnapshotsService, "create", None),
    ]:
        params = list(inspect.signature(getattr(cls, name)).parameters)[1:]
        assert params[0] == "workspace_id", f"{cls.__name__}.{name}: {params}"
        if second is not None:
            assert params[1] == second, f"{cls.__name__}.{name}: {params}"


async def test_records_name_the_acting_party_actor(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="V", actor="alice", members=["bob"])
    wid = ws.workspace_id
    entry = await rt.blackboard.put(wid, "doc", {"v": 1}, actor="writer")
    [version] = await rt.blackboard.history(wid, "doc")
    fb = await rt.blackboard.add_feedback(wid, actor="reviewer", body="b", artifact_key="doc")
    commented = await rt.blackboard.add_comment(wid, fb.feedback_id, actor="writer", body="ok")
    snap = await rt.snapshots.create(wid, actor="carol")
    assert ws.created_by == "alice"
    assert (entry.actor, version.actor, fb.actor) == ("writer", "writer", "reviewer")
    assert commented.comments[0].actor == "writer"
    assert snap.actor == "carol"
    log = await settled_log(rt)
    actors = {e.event_type: e.payload.get("actorId") for e in log}
    assert actors["workspace:created"] == "alice"
    assert actors["blackboard:entry:created"] == "writer"
    assert actors["feedback:added"] == "reviewer"
    assert actors["feedback:comment:added"] == "writer"
    assert actors["snapshot:created"] == "carol"
    for stale in ("source", "authorId", "createdBy"):
        assert not any(stale in e.payload for e in log), stale


async def test_close_and_the_other_transitions_record_a_reason(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="R", actor="alice")
    seen = len(await settled_log(rt))
    await rt.workspaces.close(ws.workspace_id, actor="alice", reason="sprint over")
    await rt.workspaces.open(ws.workspace_id, actor="bob")
    events = await log_since(rt, seen)
    reasons = [(e.event_type, e.payload["reason"]) for e in events]
    assert reasons == [
        ("workspace:status:changed", "sprint over"),
        ("workspace:closed", "sprint over"),
        ("workspace:status:changed", None),
        ("workspace:opened", None),
    ]
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.close(ws.workspace_id, reason="x" * 1_001)


async def test_update_changes_details_and_emits_only_what_changed(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(
        name="Plan", actor="alice", description="first", project_id="p1", metadata={"a": 1}
    )
    seen = len(await settled_log(rt))
    updated = await rt.workspaces.update(
        ws.workspace_id, actor="bob", name="Plan B", description=None, metadata={"a": 2}
    )
    assert (updated.name, updated.description, updated.project_id) == ("Plan B", None, "p1")
    assert updated.metadata == {"a": 2} and updated.members == ws.members
    assert updated.updated_at >= ws.updated_at
    assert await rt.workspaces.get(ws.workspace_id) == updated
    same = await rt.workspaces.update(ws.workspace_id, actor="bob", name="Plan B")
    assert same == updated
    moved = await rt.workspaces.update(ws.workspace_id, project_id="p2")
    assert moved.project_id == "p2"
    [first, second] = await log_since(rt, seen)
    assert first.event_type == second.event_type == "workspace:updated"
    assert first.payload["actorId"] == "bob"
    assert first.payload["changes"] == {
        "name": {"from": "Plan", "to": "Plan B"},
        "description": {"from": "first", "to": None},
        "metadata": {"from": {"a": 1}, "to": {"a": 2}},
    }
    assert second.payload["changes"] == {"projectId": {"from": "p1", "to": "p2"}}

    for bad in ({"name": ""}, {"name": None}, {"project_id": "has space"}, {"metadata": [1]}):
        with pytest.raises(cowork.ValidationError):
            await rt.workspaces.update(ws.workspace_id, **bad)  # type: ignore[arg-type]
    with pytest.raises(cowork.NotFound):
        await rt.workspaces.update("no-such-ws", name="x")
    assert await rt.workspaces.get(ws.workspace_id) == moved


async def test_feedback_severity_and_tag_edits_are_evented(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="F", actor="alice")
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="writer")
    fb = await rt.blackboard.add_feedback(
        wid, actor="bob", body="b", artifact_key="doc", tags=["perf"]
    )
    seen = len(await settled_log(rt))
    await rt.blackboard.update_feedback(
        wid, fb.feedback_id, actor="carol", severity="blocking", tags=["perf", "ux"]
    )
    await rt.blackboard.update_feedback(wid, fb.feedback_id, actor="carol", tags=["perf", "ux"])
    await rt.blackboard.update_feedback(wid, fb.feedback_id, actor="carol", status="addressed")
    events = await log_since(rt, seen)
    assert [e.event_type for e in events] == ["feedback:updated", "feedback:status:changed"]
    edited = events[0].payload
    assert edited["feedbackId"] == fb.feedback_id and edited["actorId"] == "carol"
    assert edited["artifactKey"] == "doc" and edited["workspaceId"] == wid
    assert edited["changes"] == {
        "severity": {"from": "minor", "to": "blocking"},
        "tags": {"from": ["perf"], "to": ["perf", "ux"]},
    }


async def test_a_restore_emits_member_changes_and_recreates_from_tombstones(
    rt: cowork.Runtime,
) -> None:
    ws = await rt.workspaces.create(name="S", actor="alice", members=["alice", "bob"])
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "kept", {"v": 1}, actor="writer")
    await rt.blackboard.put(wid, "dropped", {"v": 1}, actor="writer")
    snap = await rt.snapshots.create(wid, actor="alice")
    await rt.blackboard.delete(wid, "dropped", actor="writer")
    await rt.blackboard.put(wid, "kept", {"v": 2}, actor="writer")
    await rt.workspaces.remove_member(wid, "bob", actor="alice")
    await rt.workspaces.add_member(wid, "mallory", actor="alice")
    seen = len(await settled_log(rt))

    await rt.snapshots.restore(wid, snap.snapshot_id, actor="carol")

    events = await log_since(rt, seen)
    members = [
        (e.event_type, e.payload["memberId"], e.payload["actorId"])
        for e in events
        if e.event_type.startswith("workspace:member:")
    ]
    assert sorted(members) == [
        ("workspace:member:added", "bob", "carol"),
        ("workspace:member:removed", "mallory", "carol"),
    ]
    by_key = {
        (e.event_type, e.payload["artifactKey"])
        for e in events
        if e.event_type.startswith("blackboard:entry:")
    }
    assert by_key == {
        ("blackboard:entry:created", "dropped"),  # back from its tombstone
        ("blackboard:entry:updated", "kept"),
    }
    assert events[-1].event_type == "snapshot:restored"
    restored = await rt.workspaces.get(wid)
    assert restored is not None and restored.members == ("alice", "bob")
