"""Snapshot contract: capture, list, get and restore without rewriting history.

Runs on both backends through ``database_url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cowork
from cowork import Snapshot, WorkspaceStatus
from cowork.kernel.service import TenantService
from tests.support.domain import settled_log


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1", owner_id="owner-a") as runtime:
        yield runtime


async def artifacts(rt: cowork.Runtime, wid: str) -> dict[str, Any]:
    return {e.artifact_key: e.payload for e in await rt.blackboard.list(wid)}


async def workspace_state(rt: cowork.Runtime, wid: str) -> dict[str, Any]:
    entries = await rt.blackboard.list(wid, include_deleted=True)
    return {
        "workspace": await rt.workspaces.get(wid, include_deleted=True),
        "entries": entries,
        "history": {
            e.artifact_key: await rt.blackboard.history(wid, e.artifact_key) for e in entries
        },
        "snapshots": await rt.snapshots.list(wid),
    }


async def populated(rt: cowork.Runtime) -> tuple[str, dict[str, str]]:
    ws = await rt.workspaces.create(
        name="Snap", actor="alice", members=["alice", "bob"], metadata={"m": []}
    )
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "plan", {"v": 1, "steps": []}, actor="a", artifact_type="plan")
    await rt.blackboard.put(wid, "plan", {"v": 2, "steps": ["x"]}, actor="a", artifact_type="plan")
    await rt.blackboard.put(wid, "notes", ["n1"], actor="b")
    await rt.blackboard.put(wid, "stable", {"same": True}, actor="b")
    await rt.blackboard.put(wid, "dropped", {"d": 1}, actor="b")
    await rt.blackboard.delete(wid, "dropped", actor="b")
    open_fb = await rt.blackboard.add_feedback(wid, actor="bob", body="open", artifact_key="plan")
    working = await rt.blackboard.add_feedback(wid, actor="bob", body="working")
    await rt.blackboard.update_feedback(
        working.workspace_id, working.feedback_id, actor="bob", status="in_progress"
    )
    done = await rt.blackboard.add_feedback(wid, actor="bob", body="done")
    await rt.blackboard.update_feedback(
        done.workspace_id, done.feedback_id, actor="bob", status="addressed"
    )
    return wid, {
        "open": open_fb.feedback_id,
        "working": working.feedback_id,
        "done": done.feedback_id,
    }


# -- create, list, get ---------------------------------------------------------------------------


async def test_create_captures_state_members_artifacts_and_open_feedback(
    rt: cowork.Runtime,
) -> None:
    wid, fb = await populated(rt)
    seen = len(await settled_log(rt))
    snap = await rt.snapshots.create(wid, actor="alice", label="before review")
    assert isinstance(snap, Snapshot)
    assert (snap.workspace_id, snap.label, snap.actor) == (wid, "before review", "alice")
    assert (snap.tenant_id, snap.owner_id) == ("t1", "owner-a")
    content = snap.content
    assert content["members"] == ["alice", "bob"]
    assert content["workspace"]["workspaceId"] == wid
    assert content["workspace"]["status"] == "active"
    assert content["workspace"]["metadata"] == {"m": []}
    captured = {a["artifactKey"]: (a["version"], a["payload"]) for a in snap.artifacts}
    assert captured == {
        "plan": (2, {"v": 2, "steps": ["x"]}),
        "notes": (1, ["n1"]),
        "stable": (1, {"same": True}),
    }
    assert {f["feedbackId"] for f in content["feedback"]} == {fb["open"], fb["working"]}

    [event] = (await settled_log(rt))[seen:]
    assert event.event_type == "snapshot:created"
    assert event.payload["workspaceId"] == wid
    assert event.payload["snapshotId"] == snap.snapshot_id
    assert event.payload["artifactCount"] == 3

    got = await rt.snapshots.get(snap.workspace_id, snap.snapshot_id)
    assert got == snap
    second = await rt.snapshots.create(wid, actor="bob")
    listed = await rt.snapshots.list(wid)
    assert [s.snapshot_id for s in listed] == [snap.snapshot_id, second.snapshot_id]
    assert await rt.snapshots.get(wid, "no-such-snapshot") is None
    assert await rt.snapshots.get("other-ws", snap.snapshot_id) is None


async def test_snapshot_of_an_empty_workspace_keeps_empty_lists(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="Empty", actor="alice", members=[])
    snap = await rt.snapshots.create(ws.workspace_id, actor="alice")
    stored = await rt.snapshots.get(snap.workspace_id, snap.snapshot_id)
    assert stored is not None
    assert stored.content["members"] == [] and stored.artifacts == []
    assert stored.content["feedback"] == []


async def test_create_refuses_bad_input_and_unknown_workspaces(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="W", actor="alice")
    with pytest.raises(cowork.NotFound):
        await rt.snapshots.create("no-such-ws", actor="alice")
    await rt.workspaces.delete(ws.workspace_id)
    with pytest.raises(cowork.NotFound):
        await rt.snapshots.create(ws.workspace_id, actor="alice")
    live = await rt.workspaces.create(name="W2", actor="alice")
    for fields in ({"actor": ""}, {"label": ""}, {"label": "x" * 201}, {"label": 5}):
        args: dict[str, Any] = {"actor": "alice", **fields}
        with pytest.raises(cowork.ValidationError):
            await rt.snapshots.create(live.workspace_id, **args)
    assert await rt.snapshots.list(live.workspace_id) == []
    assert [e.event_type for e in await settled_log(rt)].count("snapshot:created") == 0


async def test_a_closed_workspace_can_be_snapshotted(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="W", actor="alice")
    await rt.blackboard.put(ws.workspace_id, "doc", {"v": 1}, actor="s")
    await rt.workspaces.close(ws.workspace_id)
    snap = await rt.snapshots.create(ws.workspace_id, actor="alice")
    assert snap.content["workspace"]["status"] == "closed"
    assert [a["artifactKey"] for a in snap.artifacts] == ["doc"]


# -- restore ---------------------------------------------------------------------------------


async def test_restore_brings_every_artifact_back_as_new_versions(rt: cowork.Runtime) -> None:
    wid, _ = await populated(rt)
    snap = await rt.snapshots.create(wid, actor="alice", label="good")

    # drift away from the snapshot
    await rt.blackboard.put(wid, "plan", {"v": 3}, actor="a", artifact_type="other")
    await rt.blackboard.put(wid, "plan", {"v": 4}, actor="a")
    await rt.blackboard.delete(wid, "notes", actor="b")
    await rt.blackboard.put(wid, "later", {"new": 1}, actor="c")
    await rt.blackboard.put(wid, "dropped", {"back": 1}, actor="c")
    await rt.workspaces.remove_member(wid, "bob")
    await rt.workspaces.add_member(wid, "carol")
    stable_before = await rt.blackboard.get(wid, "stable")
    seen = len(await settled_log(rt))

    restored = await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    assert restored.snapshot_id == snap.snapshot_id

    assert await artifacts(rt, wid) == {
        "plan": {"v": 2, "steps": ["x"]},
        "notes": ["n1"],
        "stable": {"same": True},
    }
    ws = await rt.workspaces.get(wid)
    assert ws is not None and ws.members == ("alice", "bob")
    assert ws.status is WorkspaceStatus.ACTIVE

    plan = await rt.blackboard.get(wid, "plan")
    assert plan is not None and (plan.version, plan.artifact_type) == (5, "plan")
    plan_history = await rt.blackboard.history(wid, "plan")
    assert [(v.version, v.operation) for v in plan_history] == [
        (1, "create"),
        (2, "update"),
        (3, "update"),
        (4, "update"),
        (5, "restore"),
    ]
    assert plan_history[2].payload == {"v": 3} and plan_history[3].payload == {"v": 4}
    assert plan_history[4].based_on == 2

    notes_history = await rt.blackboard.history(wid, "notes")
    assert [(v.version, v.operation, v.deleted) for v in notes_history] == [
        (1, "create", False),
        (2, "delete", True),
        (3, "restore", False),
    ]
    for key, version in (("later", 2), ("dropped", 4)):
        assert await rt.blackboard.get(wid, key) is None
        tomb = await rt.blackboard.get(wid, key, include_deleted=True)
        assert tomb is not None and tomb.deleted and tomb.version == version
    assert await rt.blackboard.get(wid, "stable") == stable_before, "unchanged: not rewritten"

    events = await settled_log(rt)
    new = events[seen:]
    [done] = [e for e in new if e.event_type == "snapshot:restored"]
    assert done.payload["workspaceId"] == wid
    assert done.payload["snapshotId"] == snap.snapshot_id
    assert sorted(done.payload["restoredArtifacts"]) == ["notes", "plan"]
    assert sorted(done.payload["removedArtifacts"]) == ["dropped", "later"]
    assert new[-1] is done, "snapshot:restored closes the restore's events"
    writes = [e for e in new if e.event_type.startswith("blackboard:")]
    assert sorted((e.payload["artifactKey"], e.payload["operation"]) for e in writes) == [
        ("dropped", "delete"),
        ("later", "delete"),
        ("notes", "restore"),
        ("plan", "restore"),
    ]
    for event in writes:
        deleting = event.payload["operation"] == "delete"
        assert (event.event_type == "blackboard:entry:deleted") == deleting
    updated = [e for e in new if e.event_type == "workspace:artifact:updated"]
    assert sorted(e.payload["artifactKey"] for e in updated) == ["notes", "plan"]
    assert all(e.payload["workspaceId"] == wid for e in new)


async def test_restore_twice_is_a_no_op_for_artifacts(rt: cowork.Runtime) -> None:
    wid, _ = await populated(rt)
    snap = await rt.snapshots.create(wid, actor="alice")
    await rt.blackboard.put(wid, "plan", {"v": 99}, actor="a")
    await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    after_first = await workspace_state(rt, wid)
    await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    after_second = await workspace_state(rt, wid)
    assert after_second["entries"] == after_first["entries"]
    assert after_second["history"] == after_first["history"]


async def test_restore_survives_a_restart(database_url: str) -> None:
    async with await cowork.open(database_url, tenant_id="t1") as rt:
        ws = await rt.workspaces.create(name="W", actor="alice", members=["bob"])
        wid = ws.workspace_id
        await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
        snap = await rt.snapshots.create(wid, actor="alice")
        await rt.blackboard.put(wid, "doc", {"v": 2}, actor="s")
    async with await cowork.open(database_url, tenant_id="t1") as rt2:
        stored = await rt2.snapshots.get(snap.workspace_id, snap.snapshot_id)
        assert stored == snap
        await rt2.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    async with await cowork.open(database_url, tenant_id="t1") as rt3:
        history = await rt3.blackboard.history(wid, "doc")
        assert [(v.version, v.operation, v.payload) for v in history] == [
            (1, "create", {"v": 1}),
            (2, "update", {"v": 2}),
            (3, "restore", {"v": 1}),
        ]
        kinds = [e.event_type for e in await settled_log(rt3)]
        assert kinds.count("snapshot:created") == 1 and kinds.count("snapshot:restored") == 1


@pytest.mark.parametrize("action", ["close", "archive"])
async def test_restore_needs_an_active_workspace(rt: cowork.Runtime, action: str) -> None:
    wid, _ = await populated(rt)
    snap = await rt.snapshots.create(wid, actor="alice")
    await rt.blackboard.put(wid, "plan", {"v": 50}, actor="a")
    await rt.workspaces.remove_member(wid, "bob")
    await getattr(rt.workspaces, action)(wid)
    before = await workspace_state(rt, wid)
    seen = len(await settled_log(rt))
    with pytest.raises(cowork.WorkspaceNotActive):
        await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    assert await workspace_state(rt, wid) == before
    assert (await settled_log(rt))[seen:] == []


async def test_restore_of_an_unknown_snapshot_or_deleted_workspace_is_not_found(
    rt: cowork.Runtime,
) -> None:
    ws = await rt.workspaces.create(name="W", actor="alice")
    with pytest.raises(cowork.NotFound):
        await rt.snapshots.restore(ws.workspace_id, "no-such-snapshot", actor="alice")
    with pytest.raises(cowork.ValidationError):
        await rt.snapshots.restore(ws.workspace_id, "", actor="alice")
    snap = await rt.snapshots.create(ws.workspace_id, actor="alice")
    other = await rt.workspaces.create(name="Other", actor="alice")
    with pytest.raises(cowork.NotFound):  # a snapshot is reached only through its workspace
        await rt.snapshots.restore(other.workspace_id, snap.snapshot_id, actor="alice")
    with pytest.raises(cowork.ValidationError):
        await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="")
    await rt.workspaces.delete(ws.workspace_id)
    with pytest.raises(cowork.NotFound):
        await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    assert [e.event_type for e in await settled_log(rt)].count("snapshot:restored") == 0


async def test_a_failed_restore_writes_nothing(
    rt: cowork.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    wid, _ = await populated(rt)
    snap = await rt.snapshots.create(wid, actor="alice")
    await rt.blackboard.put(wid, "plan", {"v": 7}, actor="a")
    await rt.blackboard.put(wid, "extra", {"v": 1}, actor="a")
    await rt.workspaces.add_member(wid, "zed")
    before = await workspace_state(rt, wid)
    seen = len(await settled_log(rt))

    real = TenantService._emit
    me = asyncio.current_task()

    async def fail_on_restored(self: TenantService, ctx: Any, events: Any) -> Any:
        if asyncio.current_task() is me and events[0].event_type == "snapshot:restored":
            raise RuntimeError("injected failure at the last event")
        return await real(self, ctx, events)

    monkeypatch.setattr(TenantService, "_emit", fail_on_restored)
    with pytest.raises(RuntimeError, match="injected"):
        await rt.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
    assert await workspace_state(rt, wid) == before
    assert (await settled_log(rt))[seen:] == []


async def test_snapshots_in_a_transaction_roll_back_with_it(rt: cowork.Runtime) -> None:
    ws = await rt.workspaces.create(name="W", actor="alice")
    await rt.blackboard.put(ws.workspace_id, "doc", {"v": 1}, actor="s")
    snap = await rt.snapshots.create(ws.workspace_id, actor="alice")
    await rt.blackboard.put(ws.workspace_id, "doc", {"v": 2}, actor="s")
    before = await workspace_state(rt, ws.workspace_id)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with rt.transaction() as tx:
            await tx.snapshots.create(ws.workspace_id, actor="alice")
            await tx.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="alice")
            raise Boom
    assert await workspace_state(rt, ws.workspace_id) == before


async def test_another_tenants_snapshots_are_invisible(rt: cowork.Runtime) -> None:
    wid, _ = await populated(rt)
    snap = await rt.snapshots.create(wid, actor="alice")
    t2 = rt.for_tenant("t2")
    assert await t2.snapshots.get(snap.workspace_id, snap.snapshot_id) is None
    assert await t2.snapshots.list(wid) == []
    with pytest.raises(cowork.NotFound):
        await t2.snapshots.restore(snap.workspace_id, snap.snapshot_id, actor="mallory")
    with pytest.raises(cowork.NotFound):
        await t2.snapshots.create(wid, actor="mallory")
    assert [s.snapshot_id for s in await rt.snapshots.list(wid)] == [snap.snapshot_id]
