"""Hostile input for ``rt.snapshots`` (create/list/get/restore).

Each case may first change the workspace (a put of a hostile payload under a hostile key, or
a delete), then calls the snapshot service. A snapshot must hold exactly the live artifacts
(payloads equal to what was written) and members; restore must bring exactly those back.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import cowork
from tests.hostile.harness import Harness, hostile_run, tenant_view
from tests.hostile.strategies import Arg, Drawer, ids, labels, payloads

WORKSPACE, CLOSED = "snap-ws", "snap-closed"
KEYS = ("plan", "'; DROP TABLE cowork_workspace_snapshot; --", "%s", "\u00e9", "e\u0301", "K")


async def setup(h: Harness) -> None:
    h.state["snapshots"] = {}
    for tenant in ("hostile", "hostile-2"):
        rt = h.rt if tenant == "hostile" else h.rt.for_tenant(tenant)
        h.state.setdefault("views", {"hostile": h.rt})[tenant] = rt
        await rt.workspaces.create(
            name="snap", actor="setup", workspace_id=WORKSPACE, members=["m1"]
        )
        await rt.blackboard.put(WORKSPACE, "plan", {"v": 0, "tenant": tenant}, actor="setup")
    await h.rt.workspaces.create(name="closed", actor="setup", workspace_id=CLOSED)
    await h.rt.snapshots.create(CLOSED, actor="setup", label="while open")
    await h.rt.workspaces.close(CLOSED)


async def _live(rt: cowork.Runtime, wid: str) -> dict[str, Any]:
    return {e.artifact_key: (e.version, e.payload) for e in await rt.blackboard.list(wid)}


def _pick_snapshot(h: Harness, d: Drawer) -> Arg:
    kind, index = d.raw(st.tuples(st.sampled_from(["known", "known", "other"]), st.integers()))
    other = d(ids)
    known = sorted(h.state["snapshots"])
    if kind == "known" and known:
        return Arg(known[index % len(known)], True)
    return other


def _workspace_of(h: Harness, snapshot_id: Any) -> str:
    """The workspace of a known snapshot (snapshots are reached through it), else the test's."""
    known = h.state["snapshots"].get(snapshot_id) if isinstance(snapshot_id, str) else None
    return WORKSPACE if known is None else str(known[1])


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    prelude = d.raw(st.sampled_from(["none", "none", "put", "put", "delete", "member"]))
    key_index = d.raw(st.integers(0, len(KEYS) - 1))
    payload = d.raw(payloads(clean=True))
    owned = tenant in ("hostile", "hostile-2")
    if owned and prelude == "put":
        h.read("put", rt.blackboard.put, WORKSPACE, KEYS[key_index], payload, actor="prelude")
    elif owned and prelude == "delete":
        live = h.read("list", _live, rt, WORKSPACE) or {}
        if KEYS[key_index] in live:
            h.read("delete", rt.blackboard.delete, WORKSPACE, KEYS[key_index], actor="prelude")
    elif owned and prelude == "member":
        h.read("add_member", rt.workspaces.add_member, WORKSPACE, f"m{key_index}")
    op = d.raw(st.sampled_from(["create", "create", "get", "list", "restore", "restore"]))
    if op == "create":
        wid_kind = d.raw(st.sampled_from([WORKSPACE, WORKSPACE, CLOSED, "ws-sentinel", "other"]))
        other = d(ids)
        wid = Arg(wid_kind, True) if wid_kind != "other" else other
        created_by = d(ids)
        label = d.opt(labels, 200)
        before = h.read("list", _live, rt, WORKSPACE) if owned and wid.value == WORKSPACE else None
        ws_before = h.read("get", rt.workspaces.get, WORKSPACE) if before is not None else None
        out = h.call(
            "snapshots.create",
            rt.snapshots.create,
            wid.value,
            actor=created_by.value,
            label=label.value,
        )
        exists = (owned and wid.value == WORKSPACE) or (tenant == "hostile" and wid.value == CLOSED)
        if out.ok:
            snap: cowork.Snapshot = out.value
            h.check(exists, "snapshots.create", f"snapshot of {wid.value!r} in {tenant}")
            got = h.read("snapshots.get", rt.snapshots.get, snap.workspace_id, snap.snapshot_id)
            if got is None:
                h.finding("wrong result", "snapshots.get", "a new snapshot is missing")
                return
            h.same(
                (got.label, got.actor, got.workspace_id, got.tenant_id),
                (label.value, created_by.value, wid.value, tenant),
                "snapshots.create",
                label.value,
            )
            if before is not None:
                content = {a["artifactKey"]: (a["version"], a["payload"]) for a in got.artifacts}
                h.same(content, before, "snapshot content", wid.value)
                if ws_before is not None:
                    h.same(
                        tuple(got.content.get("members", ())),
                        ws_before.members,
                        "snapshot members",
                    )
            h.state["snapshots"][snap.snapshot_id] = (tenant, wid.value, got)
        elif exists and created_by.valid and label.valid:
            h.finding("valid input refused", "snapshots.create", repr(out.error))
    elif op == "get":
        sid = _pick_snapshot(h, d)
        out = h.call("snapshots.get", rt.snapshots.get, _workspace_of(h, sid.value), sid.value)
        if out.ok:
            known = h.state["snapshots"].get(sid.value) if isinstance(sid.value, str) else None
            if known is None or known[0] != tenant:
                h.same(out.value, None, "snapshots.get (another tenant's or missing)", sid.value)
            else:
                h.same(out.value, known[2], "snapshots.get", sid.value)
    elif op == "list":
        wid_kind = d.raw(st.sampled_from([WORKSPACE, CLOSED, "ws-sentinel", "other"]))
        other = d(ids)
        wid = Arg(wid_kind, True) if wid_kind != "other" else other
        out = h.call("snapshots.list", rt.snapshots.list, wid.value)
        if out.ok:
            want = {
                sid
                for sid, (t, w, _) in h.state["snapshots"].items()
                if t == tenant and w == wid.value
            }
            got = {s.snapshot_id for s in out.value}
            h.check(
                want <= got and all(s.tenant_id == tenant for s in out.value),
                "snapshots.list",
                f"listed {sorted(got)}, expected at least {sorted(want)}",
            )
    else:
        sid = _pick_snapshot(h, d)
        actor = d(ids)
        out = h.call(
            "snapshots.restore",
            rt.snapshots.restore,
            _workspace_of(h, sid.value),
            sid.value,
            actor=actor.value,
        )
        known = h.state["snapshots"].get(sid.value) if isinstance(sid.value, str) else None
        mine = known is not None and known[0] == tenant
        if out.ok:
            h.check(mine, "snapshots.restore", f"restored {sid.value!r} from another tenant")
            if not mine:
                return
            snap = known[2]
            if snap.workspace_id != WORKSPACE:
                return
            now = h.read("list", _live, rt, WORKSPACE) or {}
            want = {a["artifactKey"]: a["payload"] for a in snap.artifacts}
            h.same(
                {k: p for k, (_, p) in now.items()}, want, "restore content", sid.value, known[1]
            )
            ws = h.read("get", rt.workspaces.get, WORKSPACE)
            if ws is not None:
                h.same(ws.members, tuple(snap.content.get("members", ())), "restore members")
        elif mine and actor.valid and known[1] == WORKSPACE:
            h.finding("valid input refused", "snapshots.restore", repr(out.error))


async def test_hostile_snapshots(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "snapshots", body, setup=setup)
