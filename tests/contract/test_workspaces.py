"""Workspace contract: lifecycle, members, events, tenancy, bad input.

Runs on both backends through ``database_url``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

import cowork
from cowork import EventEnvelope, Workspace, WorkspaceStatus
from tests.support.domain import settled_log


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="t1", owner_id="owner-a") as runtime:
        yield runtime


def summary(events: list[EventEnvelope]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event_type, e.payload) for e in events]


async def make(rt: cowork.Runtime, **extra: Any) -> Workspace:
    values: dict[str, Any] = {"name": "Plan", "actor": "alice", "project_id": "p1"}
    values.update(extra)
    return await rt.workspaces.create(**values)


def utc(ws: Workspace) -> bool:
    return all(
        t is None or t.utcoffset() == timedelta(0)
        for t in (ws.created_at, ws.updated_at, ws.closed_at, ws.deleted_at)
    )


# -- create ---------------------------------------------------------------------------------------


async def test_create_records_the_workspace_and_emits_workspace_created(
    rt: cowork.Runtime,
) -> None:
    metadata = {"empty": [], "obj": {}, "nested": {"l": [[], {}], "n": None}, "u": "ü"}
    ws = await make(rt, description="the plan", members=["bob", "carol", "bob"], metadata=metadata)
    assert ws.status is WorkspaceStatus.ACTIVE
    assert (ws.tenant_id, ws.owner_id, ws.created_by) == ("t1", "owner-a", "alice")
    assert (ws.name, ws.description, ws.project_id) == ("Plan", "the plan", "p1")
    assert ws.members == ("bob", "carol")
    assert ws.metadata == metadata
    assert ws.closed_at is None and ws.deleted_at is None and utc(ws)

    again = await rt.workspaces.get(ws.workspace_id)
    assert again == ws

    [created, *added] = await settled_log(rt)
    assert created.event_type == "workspace:created"
    assert created.aggregate_id == ws.workspace_id
    assert created.payload["workspaceId"] == ws.workspace_id
    assert created.payload["members"] == ["bob", "carol"]
    assert created.payload["status"] == "active"
    # Each initial member is added and evented in the same transaction, by the creator.
    assert [(e.event_type, e.payload["memberId"], e.payload["actorId"]) for e in added] == [
        ("workspace:member:added", "bob", "alice"),
        ("workspace:member:added", "carol", "alice"),
    ]
    assert {e.tx_id for e in added} == {created.tx_id}


async def test_the_creator_is_the_member_of_a_workspace_created_without_members(
    rt: cowork.Runtime,
) -> None:
    ws = await make(rt)
    assert ws.members == ("alice",)
    [created, added] = await settled_log(rt)
    assert created.payload["members"] == ["alice"] and created.payload["actorId"] == "alice"
    assert (added.event_type, added.payload["memberId"]) == ("workspace:member:added", "alice")


async def test_empty_members_round_trip_as_an_empty_tuple(rt: cowork.Runtime) -> None:
    ws = await make(rt, members=[])
    assert ws.members == ()
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.members == () and stored.metadata == {}
    [listed] = await rt.workspaces.list()
    assert listed.members == ()


async def test_create_with_an_explicit_id_and_a_duplicate_id(rt: cowork.Runtime) -> None:
    ws = await make(rt, workspace_id="ws-fixed")
    assert ws.workspace_id == "ws-fixed"
    with pytest.raises(cowork.ValidationError):
        await make(rt, workspace_id="ws-fixed", name="Other")
    stored = await rt.workspaces.get("ws-fixed")
    assert stored is not None and stored.name == "Plan"
    assert [e.event_type for e in await settled_log(rt)] == [
        "workspace:created",
        "workspace:member:added",
    ]


async def test_get_of_a_missing_workspace_is_none_and_operations_raise_not_found(
    rt: cowork.Runtime,
) -> None:
    assert await rt.workspaces.get("nope") is None
    for call in (
        rt.workspaces.close("nope"),
        rt.workspaces.open("nope"),
        rt.workspaces.archive("nope"),
        rt.workspaces.delete("nope"),
        rt.workspaces.add_member("nope", "bob"),
        rt.workspaces.remove_member("nope", "bob"),
    ):
        with pytest.raises(cowork.NotFound):
            await call
    assert await settled_log(rt) == []


# -- the lifecycle matrix ---------------------------------------------------------------------

ALLOWED = {
    ("active", "close"): "closed",
    ("active", "archive"): "archived",
    ("active", "delete"): "deleted",
    ("closed", "open"): "active",
    ("closed", "archive"): "archived",
    ("closed", "delete"): "deleted",
    ("archived", "open"): "active",
    ("archived", "delete"): "deleted",
}
SPECIFIC = {
    "active": "workspace:opened",
    "closed": "workspace:closed",
    "archived": "workspace:archived",
    "deleted": "workspace:deleted",
}
REACH = {"active": None, "closed": "close", "archived": "archive", "deleted": "delete"}


async def act(rt: cowork.Runtime, action: str, workspace_id: str, **kw: Any) -> Workspace:
    method = getattr(rt.workspaces, action)
    result: Workspace = await method(workspace_id, **kw)
    return result


@pytest.mark.parametrize(
    ("start", "action"),
    list(itertools.product(list(REACH), ["open", "close", "archive", "delete"])),
)
async def test_lifecycle_matrix(rt: cowork.Runtime, start: str, action: str) -> None:
    ws = await make(rt)
    if REACH[start] is not None:
        await act(rt, str(REACH[start]), ws.workspace_id)
    before = await rt.workspaces.get(ws.workspace_id, include_deleted=True)
    assert before is not None and before.status.value == start
    seen = len(await settled_log(rt))

    if (start, action) not in ALLOWED:
        with pytest.raises(cowork.InvalidTransition) as info:
            await act(rt, action, ws.workspace_id, actor="alice")
        assert not isinstance(info.value, cowork.WorkspaceNotActive)
        assert (info.value.current, info.value.action) == (start, action)
        after = await rt.workspaces.get(ws.workspace_id, include_deleted=True)
        assert after == before, "a refused transition must change nothing"
        assert (await settled_log(rt))[seen:] == []
        return

    target = ALLOWED[start, action]
    moved = await act(rt, action, ws.workspace_id, actor="alice")
    assert moved.status.value == target
    assert moved.updated_at >= before.updated_at
    assert await rt.workspaces.get(ws.workspace_id, include_deleted=True) == moved
    if target == "closed":
        assert moved.closed_at is not None
    elif action == "open":
        assert moved.closed_at is None
    else:
        assert moved.closed_at == before.closed_at
    if target == "deleted":
        assert moved.deleted_at is not None
    else:
        assert moved.deleted_at is None

    new = (await settled_log(rt))[seen:]
    assert [e.event_type for e in new] == ["workspace:status:changed", SPECIFIC[target]]
    changed, specific = new
    assert changed.payload["workspaceId"] == ws.workspace_id
    assert (changed.payload["from"], changed.payload["to"]) == (start, target)
    assert specific.payload["workspaceId"] == ws.workspace_id
    assert changed.payload.get("actorId") == "alice"
    assert changed.aggregate_id == specific.aggregate_id == ws.workspace_id


# -- closed_at -----------------------------------------------------------------------------------


async def test_closed_at_survives_later_writes_and_is_cleared_only_by_open(
    rt: cowork.Runtime,
) -> None:
    ws = await make(rt, members=["bob"])
    closed = await rt.workspaces.close(ws.workspace_id)
    stamp = closed.closed_at
    assert stamp is not None and stamp.utcoffset() == timedelta(0)

    after_add = await rt.workspaces.add_member(ws.workspace_id, "carol")
    assert after_add.members == ("bob", "carol") and after_add.closed_at == stamp
    after_remove = await rt.workspaces.remove_member(ws.workspace_id, "bob")
    assert after_remove.members == ("carol",) and after_remove.closed_at == stamp
    archived = await rt.workspaces.archive(ws.workspace_id)
    assert archived.status is WorkspaceStatus.ARCHIVED and archived.closed_at == stamp
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.closed_at == stamp

    reopened = await rt.workspaces.open(ws.workspace_id)
    assert reopened.status is WorkspaceStatus.ACTIVE and reopened.closed_at is None
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.closed_at is None

    closed_again = await rt.workspaces.close(ws.workspace_id)
    assert closed_again.closed_at is not None and closed_again.closed_at >= stamp
    deleted = await rt.workspaces.delete(ws.workspace_id)
    assert deleted.closed_at == closed_again.closed_at


async def test_two_concurrent_closes_one_wins_and_closed_at_is_kept(rt: cowork.Runtime) -> None:
    ws = await make(rt)
    results = await asyncio.gather(
        rt.workspaces.close(ws.workspace_id),
        rt.workspaces.close(ws.workspace_id),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, Workspace)]
    losses = [r for r in results if isinstance(r, cowork.InvalidTransition)]
    assert len(wins) == 1 and len(losses) == 1, results
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.status is WorkspaceStatus.CLOSED
    assert stored.closed_at == wins[0].closed_at is not None
    kinds = [e.event_type for e in await settled_log(rt)]
    assert kinds.count("workspace:closed") == 1


# -- deleted workspaces ----------------------------------------------------------------------


async def test_deleted_workspaces_are_hidden_unless_asked_for(rt: cowork.Runtime) -> None:
    keep = await make(rt, name="Keep")
    gone = await make(rt, name="Gone")
    deleted = await rt.workspaces.delete(gone.workspace_id)
    assert deleted.status is WorkspaceStatus.DELETED and deleted.deleted_at is not None

    assert await rt.workspaces.get(gone.workspace_id) is None
    shown = await rt.workspaces.get(gone.workspace_id, include_deleted=True)
    assert shown is not None and shown.status is WorkspaceStatus.DELETED
    assert [w.workspace_id for w in await rt.workspaces.list()] == [keep.workspace_id]
    every = await rt.workspaces.list(include_deleted=True)
    assert {w.workspace_id for w in every} == {keep.workspace_id, gone.workspace_id}
    only_deleted = await rt.workspaces.list(status="deleted")
    assert [w.workspace_id for w in only_deleted] == [gone.workspace_id]
    with pytest.raises(cowork.NotFound):
        await rt.workspaces.add_member(gone.workspace_id, "bob")


async def test_list_filters_by_project_and_status(rt: cowork.Runtime) -> None:
    a = await make(rt, project_id="p1")
    b = await make(rt, project_id="p2")
    await rt.workspaces.close(b.workspace_id)
    assert [w.workspace_id for w in await rt.workspaces.list(project_id="p1")] == [a.workspace_id]
    closed = await rt.workspaces.list(status=WorkspaceStatus.CLOSED)
    assert [w.workspace_id for w in closed] == [b.workspace_id]
    assert [w.workspace_id for w in await rt.workspaces.list(status="active")] == [a.workspace_id]
    assert len(await rt.workspaces.list(limit=1)) == 1


@pytest.mark.parametrize(
    "fields",
    [{"status": "bogus"}, {"limit": -1}, {"limit": "x"}, {"project_id": ""}],
    ids=lambda f: f"{next(iter(f))}={next(iter(f.values()))!r}",
)
async def test_bad_list_arguments_raise_validation_error(
    rt: cowork.Runtime, fields: dict[str, Any]
) -> None:
    await make(rt)
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.list(**fields)


# -- artifact writes need an active workspace ------------------------------------------------


@pytest.mark.parametrize("status", ["closed", "archived", "deleted"])
async def test_only_active_workspaces_accept_artifact_writes(
    rt: cowork.Runtime, status: str
) -> None:
    ws = await make(rt)
    wid = ws.workspace_id
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="agent")
    await act(rt, str(REACH[status]), wid)
    seen = len(await settled_log(rt))

    refused: type[Exception] | tuple[type[Exception], ...] = cowork.WorkspaceNotActive
    if status == "deleted":
        # a deleted workspace is hidden: "not found" is as acceptable as "not active"
        refused = (cowork.WorkspaceNotActive, cowork.NotFound)
    with pytest.raises(refused):
        await rt.blackboard.put(wid, "doc", {"v": 2}, actor="agent")
    with pytest.raises(refused):
        await rt.blackboard.put(wid, "new", {"v": 1}, actor="agent")
    with pytest.raises(refused):
        await rt.blackboard.rollback(wid, "doc", 1, actor="agent")
    with pytest.raises(refused):
        await rt.blackboard.delete(wid, "doc", actor="agent")

    history = await rt.blackboard.history(wid, "doc")
    assert [v.version for v in history] == [1]
    assert await rt.blackboard.history(wid, "new") == []
    assert (await settled_log(rt))[seen:] == []

    if status != "deleted":
        await rt.workspaces.open(wid)
        entry = await rt.blackboard.put(wid, "doc", {"v": 2}, actor="agent")
        assert entry.version == 2


# -- members ---------------------------------------------------------------------------------


async def test_members_add_and_remove_are_idempotent_and_evented_once(
    rt: cowork.Runtime,
) -> None:
    ws = await make(rt, members=["bob"])
    seen = len(await settled_log(rt))

    added = await rt.workspaces.add_member(ws.workspace_id, "carol", actor="alice")
    assert added.members == ("bob", "carol")
    again = await rt.workspaces.add_member(ws.workspace_id, "carol", actor="alice")
    assert again.members == ("bob", "carol")
    present = await rt.workspaces.add_member(ws.workspace_id, "bob")
    assert present.members == ("bob", "carol")

    removed = await rt.workspaces.remove_member(ws.workspace_id, "bob", actor="alice")
    assert removed.members == ("carol",)
    removed_again = await rt.workspaces.remove_member(ws.workspace_id, "bob")
    assert removed_again.members == ("carol",)
    absent = await rt.workspaces.remove_member(ws.workspace_id, "zed")
    assert absent.members == ("carol",)

    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.members == ("carol",)
    assert summary((await settled_log(rt))[seen:]) == [
        (
            "workspace:member:added",
            {"workspaceId": ws.workspace_id, "memberId": "carol", "actorId": "alice"},
        ),
        (
            "workspace:member:removed",
            {"workspaceId": ws.workspace_id, "memberId": "bob", "actorId": "alice"},
        ),
    ]


async def test_removing_the_last_member_leaves_an_empty_tuple(rt: cowork.Runtime) -> None:
    ws = await make(rt, members=["bob"])
    await rt.workspaces.remove_member(ws.workspace_id, "bob")
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.members == ()


@pytest.mark.parametrize("member", ["", "has space", "x" * 500, None, 7])
async def test_bad_member_ids_are_rejected(rt: cowork.Runtime, member: Any) -> None:
    ws = await make(rt)
    with pytest.raises(cowork.ValidationError):
        await rt.workspaces.add_member(ws.workspace_id, member)
    with pytest.raises(cowork.ValidationError):
        await make(rt, members=[member])
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.members == ("alice",)
    assert len(await rt.workspaces.list()) == 1


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "   "},
        {"name": None},
        {"name": 123},
        {"name": ["Plan"]},
        {"name": "x" * 10_000},
        {"name": "nul\x00"},
        {"actor": ""},
        {"actor": None},
        {"project_id": "bad id"},
        {"description": 5},
        {"members": "bob"},
        {"metadata": {"bad": {1, 2}}},
        {"metadata": {"nan": float("nan")}},
        {"metadata": {"big": "x" * (2 * 1024 * 1024)}},
        {"workspace_id": ""},
        {"workspace_id": "k" * 10_000},
    ],
    ids=lambda f: next(iter(f)),
)
async def test_bad_create_input_raises_a_cowork_error_and_writes_nothing(
    rt: cowork.Runtime, fields: dict[str, Any]
) -> None:
    with pytest.raises(cowork.ValidationError):
        await make(rt, **fields)
    assert await rt.workspaces.list(include_deleted=True) == []
    assert await settled_log(rt) == []


# -- owners and tenants ----------------------------------------------------------------------


async def test_owner_id_is_kept_when_another_owner_changes_the_workspace(
    rt: cowork.Runtime,
) -> None:
    ws = await make(rt)
    assert ws.owner_id == "owner-a"
    other = rt.for_tenant("t1", owner_id="owner-b")
    await other.workspaces.add_member(ws.workspace_id, "bob")
    await other.workspaces.close(ws.workspace_id)
    await other.workspaces.open(ws.workspace_id)
    stored = await rt.workspaces.get(ws.workspace_id)
    assert stored is not None and stored.owner_id == "owner-a"
    created_by_b = await other.workspaces.create(name="B's", actor="bob")
    assert created_by_b.owner_id == "owner-b"


async def test_another_tenants_workspaces_are_invisible(rt: cowork.Runtime) -> None:
    t2 = rt.for_tenant("t2")
    theirs = await t2.workspaces.create(name="Theirs", actor="mallory", project_id="p1")
    await t2.workspaces.close(theirs.workspace_id)
    mine = await make(rt)

    assert await rt.workspaces.get(theirs.workspace_id) is None
    assert await rt.workspaces.get(theirs.workspace_id, include_deleted=True) is None
    assert [w.workspace_id for w in await rt.workspaces.list(include_deleted=True)] == [
        mine.workspace_id
    ]
    assert await rt.workspaces.list(project_id="p1", status="closed") == []
    for call in (
        rt.workspaces.open(theirs.workspace_id),
        rt.workspaces.delete(theirs.workspace_id),
        rt.workspaces.add_member(theirs.workspace_id, "eve"),
    ):
        with pytest.raises(cowork.NotFound):
            await call
    assert {e.payload["workspaceId"] for e in await settled_log(rt)} == {mine.workspace_id}

    stored = await t2.workspaces.get(theirs.workspace_id)
    assert stored is not None and stored.status is WorkspaceStatus.CLOSED
    assert stored.members == ("mallory",) and stored.tenant_id == "t2"
    assert await t2.workspaces.get(mine.workspace_id) is None


async def test_same_workspace_id_in_two_tenants_are_separate(rt: cowork.Runtime) -> None:
    t2 = rt.for_tenant("t2")
    await make(rt, workspace_id="shared", name="Mine")
    await t2.workspaces.create(workspace_id="shared", name="Theirs", actor="bob")
    await t2.workspaces.archive("shared")
    mine = await rt.workspaces.get("shared")
    theirs = await t2.workspaces.get("shared")
    assert mine is not None and mine.name == "Mine" and mine.status is WorkspaceStatus.ACTIVE
    assert theirs is not None and theirs.name == "Theirs"
    assert theirs.status is WorkspaceStatus.ARCHIVED
