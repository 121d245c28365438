"""Hostile input for the versioned artifacts of ``rt.blackboard`` (put/get/list/history/
get_version/diff/rollback/delete).

A model of every artifact's versions (per tenant, workspace and exact key) predicts each
answer: optimistic ``expected_version`` rules, payloads read back exactly, keys that differ
only by case, spacing or Unicode normalisation stay distinct, workspaces of other tenants and
closed workspaces refuse writes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

import cowork
from tests.hostile.harness import Harness, hostile_run, tenant_view
from tests.hostile.strategies import (
    Arg,
    Drawer,
    ids,
    is_plain_json,
    keys,
    labels,
    payloads,
    positive_ints,
)

DOCUMENT_LIMIT = 1024 * 1024
ACTIVE, CLOSED = "bb-active", "bb-closed"
KEY_POOL = (
    "plan",
    "Plan",
    "plan ",
    "\u00e9",
    "e\u0301",
    "'; DROP TABLE cowork_event_log; --",
    "%s",
)


def storable(payload: Any) -> bool:
    if not is_plain_json(payload):
        return False
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return len(encoded) <= DOCUMENT_LIMIT


Versions = list[Any]  # payload per version; a tombstone is _DELETED
_DELETED = object()


async def setup(h: Harness) -> None:
    """``bb-active`` and ``bb-closed`` in the hostile tenant; ``bb-active`` in hostile-2 too."""
    h.state["workspaces"] = {}
    for tenant in ("hostile", "hostile-2"):
        rt = h.rt if tenant == "hostile" else h.rt.for_tenant(tenant)
        h.state.setdefault("views", {"hostile": h.rt})[tenant] = rt
        await rt.workspaces.create(name="bb", actor="setup", workspace_id=ACTIVE)
        h.state["workspaces"][(tenant, ACTIVE)] = "active"
    await h.rt.workspaces.create(name="bb closed", actor="setup", workspace_id=CLOSED)
    await h.rt.workspaces.close(CLOSED)
    h.state["workspaces"][("hostile", CLOSED)] = "closed"


def _model(h: Harness) -> dict[tuple[str, str, str], Versions]:
    model: dict[tuple[str, str, str], Versions] = h.state.setdefault("model", {})
    return model


def _versions(h: Harness, tenant: str, wid: Any, key: Any) -> Versions:
    try:
        return _model(h).get((tenant, wid, key), [])
    except TypeError:
        return []


def _current(versions: Versions) -> int | None:
    """The live version number, None when missing or deleted."""
    if not versions or versions[-1] is _DELETED:
        return None
    return len(versions)


def _pick(d: Drawer) -> tuple[Arg, Arg]:
    wid_kind, key_kind, index = d.raw(
        st.tuples(
            st.sampled_from([ACTIVE, ACTIVE, ACTIVE, CLOSED, "other"]),
            st.sampled_from(["pool", "pool", "drawn"]),
            st.integers(0, 99),
        )
    )
    other_wid = d(ids)
    drawn_key = d(keys)
    wid = Arg(wid_kind, True) if wid_kind != "other" else other_wid
    key = Arg(KEY_POOL[index % len(KEY_POOL)], True) if key_kind == "pool" else drawn_key
    return wid, key


def _expected_version(d: Drawer, current: int | None) -> Arg:
    kind = d.raw(st.sampled_from(["none", "none", "current", "zero", "drawn"]))
    drawn = d(positive_ints)
    if kind == "none":
        return Arg(None, True)
    if kind == "current":
        return Arg(current if current is not None else 0, True)
    if kind == "zero":
        return Arg(0, True)
    return drawn


def _conflict(expected: int | None, current: int | None) -> bool:
    if expected is None:
        return False
    if expected == 0:
        return current is not None
    return expected != current


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(
        st.sampled_from(
            ["put", "put", "put", "get", "list", "history", "version", "diff", "rollback", "delete"]
        )
    )
    wid, key = _pick(d)
    versions = _versions(h, tenant, wid.value, key.value)
    current = _current(versions)
    ws_status = (
        h.state["workspaces"].get((tenant, wid.value)) if isinstance(wid.value, str) else None
    )
    args_valid = bool(wid.valid and key.valid)
    if op == "put":
        put(h, d, tenant, rt, wid, key, versions, current, ws_status)
    elif op == "get":
        include_deleted = d.raw(st.booleans())
        out = h.call(
            "blackboard.get",
            rt.blackboard.get,
            wid.value,
            key.value,
            include_deleted=include_deleted,
        )
        if out.ok:
            if current is None and not (include_deleted and versions):
                h.same(out.value, None, "blackboard.get", tenant, wid.value, key.value)
            elif out.value is None:
                h.finding("wrong result", "blackboard.get", "a written artifact read as None")
            else:
                entry: cowork.BlackboardEntry = out.value
                h.same(
                    (entry.version, entry.artifact_key, entry.workspace_id, entry.tenant_id),
                    (len(versions), key.value, wid.value, tenant),
                    "blackboard.get (identity)",
                )
                if current is not None:
                    h.same(entry.payload, versions[-1], "blackboard.get (payload)", key.value)
        elif args_valid:
            h.finding("valid input refused", "blackboard.get", repr(out.error))
    elif op == "list":
        include_deleted = d.raw(st.booleans())
        out = h.call(
            "blackboard.list", rt.blackboard.list, wid.value, include_deleted=include_deleted
        )
        if out.ok:
            got = {e.artifact_key: (e.version, e.payload, e.deleted) for e in out.value}
            want = {
                k: (len(v), None if v[-1] is _DELETED else v[-1], v[-1] is _DELETED)
                for (t, w, k), v in _model(h).items()
                if t == tenant and w == wid.value and (include_deleted or v[-1] is not _DELETED)
            }
            got = {k: (n, p if not dead else None, dead) for k, (n, p, dead) in got.items()}
            h.same(got, want, "blackboard.list", tenant, wid.value)
    elif op == "history":
        out = h.call("blackboard.history", rt.blackboard.history, wid.value, key.value)
        if out.ok:
            got = [None if v.deleted else v.payload for v in out.value]
            want = [None if v is _DELETED else v for v in versions]
            h.same(got, want, "blackboard.history", tenant, wid.value, key.value)
            h.same([v.version for v in out.value], list(range(1, len(versions) + 1)), "history")
    elif op == "version":
        version = d(positive_ints)
        out = h.call(
            "blackboard.get_version", rt.blackboard.get_version, wid.value, key.value, version.value
        )
        if out.ok:
            n = version.value
            exists = isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= len(versions)
            if not exists:
                h.same(out.value, None, "blackboard.get_version", key.value, n)
            elif out.value is None:
                h.finding("wrong result", "blackboard.get_version", f"version {n} missing")
            elif versions[n - 1] is not _DELETED:
                h.same(out.value.payload, versions[n - 1], "blackboard.get_version", key.value, n)
        elif args_valid and version.valid is True and not isinstance(out.error, cowork.NotFound):
            h.finding("valid input refused", "blackboard.get_version", repr(out.error))
    elif op == "diff":
        a, b = d(positive_ints), d(positive_ints)
        out = h.call("blackboard.diff", rt.blackboard.diff, wid.value, key.value, a.value, b.value)
        in_range = all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= len(versions)
            for v in (a.value, b.value)
        )
        if out.ok and not in_range:
            h.finding("wrong result", "blackboard.diff", f"diffed missing versions {a}, {b}")
        elif out.ok:
            pa, pb = versions[a.value - 1], versions[b.value - 1]
            if pa is not _DELETED and pb is not _DELETED:
                h.same(out.value.identical, pa == pb, "blackboard.diff (identical)", pa, pb)
    elif op == "rollback":
        to = d(positive_ints)
        source = d(labels)
        expected = _expected_version(d, current)
        out = h.call(
            "blackboard.rollback",
            rt.blackboard.rollback,
            wid.value,
            key.value,
            to.value,
            actor=source.value,
            expected_version=expected.value,
        )
        n = to.value
        exists = isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= len(versions)
        ok_expected = (
            ws_status == "active"
            and exists
            and versions[n - 1] is not _DELETED
            and not _conflict(expected.value, current)
            and source.valid
            and expected.valid
            and args_valid
        )
        if out.ok:
            entry = out.value
            h.check(exists, "blackboard.rollback", f"rolled back to missing version {n}")
            if exists:
                h.same(entry.payload, versions[n - 1], "blackboard.rollback", key.value, n)
                h.same(entry.version, len(versions) + 1, "blackboard.rollback (version)")
                _model(h)[(tenant, wid.value, key.value)] = [*versions, entry.payload]
                _read_back(h, rt, tenant, wid.value, key.value)
        elif ok_expected:
            h.finding("valid input refused", "blackboard.rollback", repr(out.error), (key.value, n))
    else:
        source = d(labels)
        expected = _expected_version(d, current)
        out = h.call(
            "blackboard.delete",
            rt.blackboard.delete,
            wid.value,
            key.value,
            actor=source.value,
            expected_version=expected.value,
        )
        if out.ok:
            h.check(current is not None, "blackboard.delete", "deleted a missing artifact")
            h.check(out.value.deleted, "blackboard.delete", "tombstone not marked deleted")
            _model(h)[(tenant, wid.value, key.value)] = [*versions, _DELETED]
            got = h.read("blackboard.get", rt.blackboard.get, wid.value, key.value)
            h.same(got, None, "blackboard.delete then get", key.value)
        elif (
            ws_status == "active"
            and current is not None
            and not _conflict(expected.value, current)
            and source.valid
            and expected.valid
            and args_valid
        ):
            h.finding("valid input refused", "blackboard.delete", repr(out.error), (key.value,))
        elif isinstance(out.error, cowork.VersionConflict) and out.error.current_version != current:
            h.finding(
                "wrong result",
                "blackboard.delete",
                f"VersionConflict.current_version {out.error.current_version} != {current}",
            )


def put(
    h: Harness,
    d: Drawer,
    tenant: str,
    rt: cowork.Runtime,
    wid: Arg,
    key: Arg,
    versions: Versions,
    current: int | None,
    ws_status: str | None,
) -> None:
    payload = d(payloads)
    source = d(labels)
    give_type = d.raw(st.booleans())
    artifact_type = d(labels)
    expected = _expected_version(d, current)
    kwargs: dict[str, Any] = {"actor": source.value, "expected_version": expected.value}
    if give_type:
        kwargs["artifact_type"] = artifact_type.value
    out = h.call("blackboard.put", rt.blackboard.put, wid.value, key.value, payload, **kwargs)
    all_ok = bool(
        wid.valid
        and key.valid
        and source.valid
        and (artifact_type.valid or not give_type)
        and expected.valid
        and storable(payload)
    )
    if out.ok:
        entry: cowork.BlackboardEntry = out.value
        h.check(storable(payload), "blackboard.put", "stored a payload that is not plain JSON")
        h.check(ws_status == "active", "blackboard.put", f"wrote into a {ws_status} workspace")
        h.check(
            not _conflict(expected.value, current),
            "blackboard.put",
            f"expected_version {expected.value!r} accepted at version {current}",
        )
        h.same(entry.payload, payload, "blackboard.put (returned payload)", key.value)
        h.same(
            (entry.version, entry.artifact_key, entry.workspace_id, entry.tenant_id),
            (len(versions) + 1, key.value, wid.value, tenant),
            "blackboard.put (identity)",
            key.value,
        )
        _model(h)[(tenant, wid.value, key.value)] = [*versions, payload]
        _read_back(h, rt, tenant, wid.value, key.value)
        return
    error = out.error
    if ws_status is None and all_ok:
        h.check(
            isinstance(error, cowork.NotFound),
            "blackboard.put",
            f"missing workspace gave {type(error).__name__}",
        )
    elif ws_status == "closed" and all_ok:
        h.check(
            isinstance(error, cowork.WorkspaceNotActive),
            "blackboard.put",
            f"closed workspace gave {type(error).__name__}",
        )
    elif all_ok and not _conflict(expected.value, current):
        h.finding("valid input refused", "blackboard.put", repr(error), (key.value,), kwargs)
    elif all_ok and isinstance(error, cowork.VersionConflict):
        h.same(error.current_version, current, "VersionConflict.current_version", key.value)
    elif not storable(payload) and wid.valid and key.valid and source.valid:
        h.check(
            isinstance(error, cowork.ValidationError),
            "blackboard.put",
            f"an unstorable payload gave {type(error).__name__}, not PayloadRejected",
        )


def _read_back(h: Harness, rt: cowork.Runtime, tenant: str, wid: str, key: str) -> None:
    """get, get_version and history all show the model's last version exactly."""
    versions = _model(h)[(tenant, wid, key)]
    got = h.read("blackboard.get", rt.blackboard.get, wid, key)
    if got is None:
        h.finding(
            "wrong result", "blackboard.get", "written artifact not found", (tenant, wid, key)
        )
        return
    h.same(got.payload, versions[-1], "get after write", key)
    h.same(got.version, len(versions), "get after write (version)", key)
    old = h.read("blackboard.get_version", rt.blackboard.get_version, wid, key, len(versions))
    h.same(None if old is None else old.payload, versions[-1], "get_version after write", key)


async def test_hostile_blackboard(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "blackboard", body, setup=setup)
