"""Hostile input for ``rt.workspaces`` (create/get/list/open/close/archive/delete/members).

A model of every workspace the run created (per tenant) predicts each answer: the lifecycle
table, member sets, isolation between tenants (an id of another tenant reads as missing).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import strategies as st

import cowork
from cowork.workspaces.records import TRANSITIONS, WorkspaceStatus
from tests.hostile.harness import Harness, all_valid, hostile_run, tenant_view
from tests.hostile.strategies import (
    Arg,
    Drawer,
    ids,
    is_plain_json,
    junk,
    payloads,
    positive_ints,
    texts,
)

ACTIONS = ("open", "close", "archive", "delete")
PROBE_IDS = ("ws-sentinel", "ws-closed", "'; DROP TABLE cowork_workspace_state; --", "ws-%s")


@functools.cache
def members(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    valid = st.lists(ids(clean=True), max_size=4).map(
        lambda items: Arg([a.value for a in items], True)
    )
    if clean:
        return valid
    return st.one_of(
        valid,
        st.lists(ids(), max_size=4).map(
            lambda items: Arg([a.value for a in items], all(a.valid for a in items))
        ),
        st.lists(ids(), max_size=3).map(lambda items: Arg(tuple(a.value for a in items), None)),
        st.sampled_from(["alice", 5, None, {"a": 1}, b"x"]).map(lambda v: Arg(v, v is None)),
    )


@functools.cache
def metadata(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    if clean:
        return st.one_of(st.just(Arg(None, True)), payloads(clean=True).map(lambda p: Arg(p, True)))
    return st.one_of(
        st.just(Arg(None, True)),
        payloads().map(lambda p: Arg(p, isinstance(p, dict) and is_plain_json(p) and _small(p))),
        junk().map(lambda v: Arg(v, v is None)),
    )


def _small(value: Any) -> bool:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")) < 60_000


def _get(model: dict[tuple[str, str], Any], tenant: Any, wid: Any) -> Any:
    try:
        return model.get((tenant, wid))
    except TypeError:  # an unhashable hostile id is in no model
        return None


def _dedupe(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _model(h: Harness) -> dict[tuple[str, str], cowork.Workspace]:
    model: dict[tuple[str, str], cowork.Workspace] = h.state.setdefault("model", {})
    return model


def _pick_id(h: Harness, d: Drawer) -> Arg:
    """A known workspace id (mostly), a probe id or a hostile one; draws never depend on the
    model (hypothesis needs generation to be a function of its own choices)."""
    kind, index = d.raw(
        st.tuples(
            st.sampled_from(["known", "known", "known", "probe", "hostile"]),
            st.integers(0, 10_000),
        )
    )
    other = d(ids)
    known = [wid for (_, wid) in _model(h)]
    if kind == "known" and known:
        return Arg(known[index % len(known)], True)
    if kind == "probe":
        return Arg(PROBE_IDS[index % len(PROBE_IDS)], None)
    return other


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(
        st.sampled_from(
            ["create", "create", "get", "list", "transition", "transition", "member", "tenant"]
        )
    )
    model = _model(h)
    if op == "create":
        create(h, d, tenant, rt, model)
    elif op == "get":
        wid = _pick_id(h, d)
        include_deleted = d.raw(st.booleans())
        out = h.call(
            "workspaces.get", rt.workspaces.get, wid.value, include_deleted=include_deleted
        )
        if out.ok:
            want = _get(model, tenant, wid.value)
            if want is not None and want.status is WorkspaceStatus.DELETED and not include_deleted:
                want = None
            h.same(out.value, want, "workspaces.get", tenant, wid.value)
    elif op == "list":
        project = d.opt(ids)
        status = d.raw(
            st.one_of(
                st.none(),
                st.sampled_from([s.value for s in WorkspaceStatus]),
                st.sampled_from(list(WorkspaceStatus)),
                st.sampled_from(["ACTIVE", "open", "", "'; --", 5]),
            )
        )
        include_deleted = d.raw(st.booleans())
        limit = d.raw(
            st.one_of(st.just(1000), st.integers(1, 5), positive_ints().map(lambda a: a.value))
        )
        out = h.call(
            "workspaces.list",
            rt.workspaces.list,
            project_id=project.value,
            status=status,
            include_deleted=include_deleted,
            limit=limit,
        )
        if out.ok:
            got = out.value
            h.check(
                all(w.tenant_id == tenant for w in got),
                "workspaces.list",
                f"rows of another tenant in {tenant}'s list",
            )
            if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1000:
                wanted = {
                    wid: w
                    for (t, wid), w in model.items()
                    if t == tenant
                    and (project.value is None or w.project_id == project.value)
                    and (status is None or w.status.value == str(status))
                    and (
                        include_deleted
                        or str(status) == "deleted"
                        or w.status is not WorkspaceStatus.DELETED
                    )
                }
                h.same(
                    {w.workspace_id: w for w in got},
                    wanted,
                    "workspaces.list",
                    tenant,
                    project.value,
                    status,
                    include_deleted,
                )
            elif isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
                h.check(len(got) <= limit, "workspaces.list", f"{len(got)} rows > limit {limit}")
            else:
                h.finding(
                    "accepted a bad limit",
                    "workspaces.list",
                    f"limit={limit!r} returned {len(got)} rows instead of a ValidationError",
                )
    elif op == "transition":
        transition(h, d, tenant, rt, model)
    elif op == "member":
        member(h, d, tenant, rt, model)
    else:
        name = d(ids)
        wid = d.raw(st.sampled_from(["ws-sentinel", "ws-closed"]))
        if name.value == "sentinel":
            return
        out = h.call("runtime.for_tenant", h.rt.for_tenant, name.value)
        if out.ok:
            got = h.read("workspaces.get", out.value.workspaces.get, wid, include_deleted=True)
            want = _get(model, name.value, wid)
            h.same(got, want, "for_tenant(...).workspaces.get", name.value, wid)


def create(
    h: Harness,
    d: Drawer,
    tenant: str,
    rt: cowork.Runtime,
    model: dict[tuple[str, str], cowork.Workspace],
) -> None:
    name = d(texts, 200)
    created_by = d(ids)
    project = d.opt(ids)
    description = d.opt(texts, 10_000)
    member_list = d(members)
    meta = d(metadata)
    wid = d.raw(st.one_of(st.just(Arg(None, True)), st.just(Arg(None, True)), ids()))
    explicit, reuse, index = d.raw(st.tuples(st.booleans(), st.booleans(), st.integers(0, 99)))
    known = [w for (t, w) in model if t == tenant]
    if reuse and known:
        wid = Arg(known[index % len(known)], False)
    if wid.valid and _get(model, tenant, wid.value) is not None:
        wid = Arg(wid.value, False)
    kwargs: dict[str, Any] = {
        "name": name.value,
        "actor": created_by.value,
        "project_id": project.value,
        "description": description.value,
        "members": member_list.value,
        "metadata": meta.value,
    }
    if wid.value is not None or explicit:
        kwargs["workspace_id"] = wid.value
    valid = all_valid(name, created_by, project, description, member_list, meta, wid)
    out = h.call("workspaces.create", rt.workspaces.create, valid=valid, **kwargs)
    if not out.ok:
        return
    ws: cowork.Workspace = out.value
    expected = {
        "tenant_id": tenant,
        "name": name.value,
        "created_by": created_by.value,
        "project_id": project.value,
        "description": description.value,
        # The creator is the one member of a workspace created without members.
        "members": (
            [created_by.value] if member_list.value is None else _dedupe(list(member_list.value))
        ),
        "metadata": dict(meta.value or {}),
        "status": WorkspaceStatus.ACTIVE,
    }
    got = {k: getattr(ws, k) for k in expected}
    h.same(got, expected, "workspaces.create (returned)", **kwargs)
    if wid.value is not None:
        h.same(ws.workspace_id, wid.value, "workspaces.create (id)")
    read = h.read("workspaces.get", rt.workspaces.get, ws.workspace_id)
    h.same(read, ws, "workspaces.create then get", **kwargs)
    model[(tenant, ws.workspace_id)] = ws


def transition(
    h: Harness,
    d: Drawer,
    tenant: str,
    rt: cowork.Runtime,
    model: dict[tuple[str, str], cowork.Workspace],
) -> None:
    action = d.raw(st.sampled_from(ACTIONS))
    wid = _pick_id(h, d)
    actor = d.opt(ids)
    current = _get(model, tenant, wid.value)
    out = h.call(
        f"workspaces.{action}", getattr(rt.workspaces, action), wid.value, actor=actor.value
    )
    if current is None:
        if out.ok:
            h.finding(
                "wrong result",
                f"workspaces.{action}",
                "succeeded on a workspace this tenant does not have",
                args=(tenant, wid.value),
            )
        elif actor.valid and wid.valid is not False:
            h.check(
                isinstance(out.error, cowork.NotFound | cowork.ValidationError),
                f"workspaces.{action}",
                f"missing workspace gave {type(out.error).__name__}, not NotFound",
            )
        return
    allowed, target = TRANSITIONS[action]
    permitted = current.status in allowed and not (
        action == "delete" and current.status is WorkspaceStatus.DELETED
    )
    if not actor.valid:
        h.check(not out.ok, f"workspaces.{action}", f"accepted actor {actor.value!r}")
        return
    if not permitted:
        h.check(
            isinstance(out.error, cowork.InvalidTransition),
            f"workspaces.{action}",
            f"{current.status.value} -> {action} gave "
            f"{type(out.error).__name__ if out.error else 'success'}, not InvalidTransition",
        )
        return
    if not h.check(out.ok, f"workspaces.{action}", f"refused: {out.error!r}", wid.value):
        return
    ws: cowork.Workspace = out.value
    h.check(ws.status is target, f"workspaces.{action}", f"status {ws.status} != {target}")
    if target is WorkspaceStatus.CLOSED:
        h.check(ws.closed_at is not None, "workspaces.close", "closed_at not set")
    if action == "open":
        h.check(ws.closed_at is None, "workspaces.open", "closed_at not cleared")
    if target is WorkspaceStatus.DELETED:
        h.check(ws.deleted_at is not None, "workspaces.delete", "deleted_at not set")
    unchanged = ("name", "members", "metadata", "description", "project_id", "created_by")
    h.same(
        {k: getattr(ws, k) for k in unchanged},
        {k: getattr(current, k) for k in unchanged},
        f"workspaces.{action} (other fields)",
    )
    read = h.read("workspaces.get", rt.workspaces.get, ws.workspace_id, include_deleted=True)
    h.same(read, ws, f"workspaces.{action} then get")
    model[(tenant, ws.workspace_id)] = ws


def member(
    h: Harness,
    d: Drawer,
    tenant: str,
    rt: cowork.Runtime,
    model: dict[tuple[str, str], cowork.Workspace],
) -> None:
    add = d.raw(st.booleans())
    wid = _pick_id(h, d)
    member_id = d(ids)
    actor = d.opt(ids)
    pick_present, index = d.raw(st.tuples(st.booleans(), st.integers(0, 99)))
    current = _get(model, tenant, wid.value)
    present = list(current.members) if current else []
    if pick_present and present:
        member_id = Arg(present[index % len(present)], True)
    fn = rt.workspaces.add_member if add else rt.workspaces.remove_member
    label = "workspaces.add_member" if add else "workspaces.remove_member"
    out = h.call(label, fn, wid.value, member_id.value, actor=actor.value)
    if current is None or current.status is WorkspaceStatus.DELETED:
        h.check(not out.ok, label, "succeeded on a missing or deleted workspace", wid.value)
        return
    if not (member_id.valid and actor.valid):
        h.check(not out.ok, label, f"accepted {member_id.value!r} / actor {actor.value!r}")
        return
    if not h.check(out.ok, label, f"refused: {out.error!r}", wid.value, member_id.value):
        return
    ws: cowork.Workspace = out.value
    if add:
        want = tuple(present) if member_id.value in present else (*present, member_id.value)
    else:
        want = tuple(m for m in present if m != member_id.value)
    h.same(ws.members, want, label, wid.value, member_id.value)
    read = h.read("workspaces.get", rt.workspaces.get, ws.workspace_id)
    h.same(read, ws, f"{label} then get")
    model[(tenant, ws.workspace_id)] = ws


async def test_hostile_workspaces(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "workspaces", body)
