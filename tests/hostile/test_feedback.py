"""Hostile input for feedback threads (``rt.blackboard.add_feedback/get_feedback/
list_feedback/update_feedback/add_comment``).

Every thread the run opened is modelled; bodies, tags, comments and metadata must read back
exactly, filters must hold, and threads of one tenant are invisible to another.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import strategies as st

import cowork
from cowork import FeedbackSeverity, FeedbackStatus
from tests.hostile.harness import Harness, hostile_run, tenant_view
from tests.hostile.strategies import Arg, Drawer, ids, is_plain_json, junk, keys, payloads, texts

WORKSPACE = "fb-ws"
ARTIFACTS = ("plan", "'; DROP TABLE cowork_blackboard_feedback; --", "%(x)s")


@functools.cache
def severities(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    valid = st.sampled_from([*FeedbackSeverity, *(s.value for s in FeedbackSeverity)])
    if clean:
        return valid.map(lambda v: Arg(v, True))
    return st.one_of(
        valid.map(lambda v: Arg(v, True)),
        st.sampled_from(["NIT", "major", "", "'; --", "critical "]).map(lambda v: Arg(v, False)),
        junk().map(lambda v: Arg(v, False)),
    )


@functools.cache
def statuses(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    valid = st.sampled_from([*FeedbackStatus, *(s.value for s in FeedbackStatus)])
    if clean:
        return valid.map(lambda v: Arg(v, True))
    return st.one_of(
        valid.map(lambda v: Arg(v, True)),
        st.sampled_from(["PENDING", "done", "", "%s"]).map(lambda v: Arg(v, False)),
        junk().map(lambda v: Arg(v, False)),
    )


@functools.cache
def tag_lists(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    valid = st.lists(keys(64, clean=True), max_size=5).map(
        lambda items: Arg([a.value for a in items], True)
    )
    if clean:
        return valid
    return st.one_of(
        valid,
        st.lists(keys(64), max_size=5).map(
            lambda items: Arg([a.value for a in items], all(a.valid for a in items))
        ),
        st.just(Arg([f"t{i}" for i in range(51)], False)),
        st.sampled_from(["tag", 5, b"x", {"a"}]).map(lambda v: Arg(v, False)),
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


def _dedupe(values: Any) -> Any:
    try:
        return tuple(dict.fromkeys(values))
    except TypeError:
        return values


def _small(value: Any) -> bool:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")) < 60_000


async def setup(h: Harness) -> None:
    for tenant in ("hostile", "hostile-2"):
        rt = h.rt if tenant == "hostile" else h.rt.for_tenant(tenant)
        h.state.setdefault("views", {"hostile": h.rt})[tenant] = rt
        await rt.workspaces.create(name="fb", actor="setup", workspace_id=WORKSPACE)
        for key in ARTIFACTS:
            await rt.blackboard.put(WORKSPACE, key, {"k": key}, actor="setup")
    h.state["model"] = {}


def _model(h: Harness) -> dict[tuple[str, str], cowork.Feedback]:
    model: dict[tuple[str, str], cowork.Feedback] = h.state["model"]
    return model


def _pick_feedback(h: Harness, d: Drawer) -> Arg:
    kind, index = d.raw(st.tuples(st.sampled_from(["known", "known", "other"]), st.integers()))
    other = d(ids)
    known = sorted(fid for (_, fid) in _model(h))
    if kind == "known" and known:
        return Arg(known[index % len(known)], True)
    return other


def _workspace_of(h: Harness, feedback_id: Any) -> str:
    """The workspace a known thread lives in (threads are reached through it), else the
    test's workspace."""
    for (_, fid), fb in _model(h).items():
        if fid == feedback_id:
            return fb.workspace_id
    return WORKSPACE


def _tenant_of(h: Harness, feedback_id: Any) -> str | None:
    for tenant, fid in _model(h):
        if fid == feedback_id:
            return tenant
    return None


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(st.sampled_from(["add", "add", "get", "list", "update", "comment"]))
    if op == "add":
        add(h, d, tenant, rt)
    elif op == "get":
        fid = _pick_feedback(h, d)
        out = h.call(
            "blackboard.get_feedback",
            rt.blackboard.get_feedback,
            _workspace_of(h, fid.value),
            fid.value,
        )
        if out.ok:
            try:
                want = _model(h).get((tenant, fid.value))
            except TypeError:
                want = None
            h.same(out.value, want, "blackboard.get_feedback", tenant, fid.value)
    elif op == "list":
        wid_kind = d.raw(st.sampled_from([WORKSPACE, WORKSPACE, "ws-sentinel", "other"]))
        other = d(ids)
        wid = Arg(wid_kind, True) if wid_kind != "other" else other
        key_kind, index = d.raw(
            st.tuples(st.sampled_from(["none", "pool", "drawn"]), st.integers())
        )
        drawn = d(keys)
        key = {
            "none": Arg(None, True),
            "pool": Arg(ARTIFACTS[index % len(ARTIFACTS)], True),
            "drawn": drawn,
        }[key_kind]
        status = d.raw(st.one_of(st.just(Arg(None, True)), statuses()))
        out = h.call(
            "blackboard.list_feedback",
            rt.blackboard.list_feedback,
            wid.value,
            artifact_key=key.value,
            status=status.value,
        )
        if out.ok:
            want = {
                fid: f
                for (t, fid), f in _model(h).items()
                if t == tenant
                and f.workspace_id == wid.value
                and (key.value is None or f.artifact_key == key.value)
                and (status.value is None or f.status == status.value)
            }
            h.same({f.feedback_id: f for f in out.value}, want, "blackboard.list_feedback")
    elif op == "update":
        fid = _pick_feedback(h, d)
        actor = d(ids)
        status = d.raw(st.one_of(st.just(Arg(None, True)), statuses()))
        severity = d.raw(st.one_of(st.just(Arg(None, True)), severities()))
        tags = d.raw(st.one_of(st.just(Arg(None, True)), tag_lists()))
        out = h.call(
            "blackboard.update_feedback",
            rt.blackboard.update_feedback,
            _workspace_of(h, fid.value),
            fid.value,
            actor=actor.value,
            status=status.value,
            severity=severity.value,
            tags=tags.value,
        )
        owner = _tenant_of(h, fid.value)
        if out.ok:
            h.check(owner == tenant, "update_feedback", f"updated a thread of tenant {owner}")
            old = _model(h).get((tenant, fid.value))
            new: cowork.Feedback = out.value
            if old is not None:
                want = (
                    status.value or old.status,
                    severity.value or old.severity,
                    _dedupe(tags.value) if tags.value is not None else old.tags,
                    old.body,
                    old.comments,
                    old.metadata,
                )
                got = (new.status, new.severity, new.tags, new.body, new.comments, new.metadata)
                h.same(got, want, "blackboard.update_feedback", fid.value)
            _store(h, rt, tenant, new)
        elif owner == tenant and actor.valid and status.valid and severity.valid and tags.valid:
            h.finding("valid input refused", "blackboard.update_feedback", repr(out.error))
    else:
        fid = _pick_feedback(h, d)
        author = d(ids)
        text = d(texts, 20_000)
        out = h.call(
            "blackboard.add_comment",
            rt.blackboard.add_comment,
            _workspace_of(h, fid.value),
            fid.value,
            actor=author.value,
            body=text.value,
        )
        owner = _tenant_of(h, fid.value)
        if out.ok:
            h.check(owner == tenant, "add_comment", f"commented on a thread of tenant {owner}")
            old = _model(h).get((tenant, fid.value))
            new = out.value
            last = new.comments[-1]
            h.same((last.actor, last.body), (author.value, text.value), "add_comment")
            if old is not None:
                h.same(new.comments[:-1], old.comments, "add_comment (earlier comments)")
            _store(h, rt, tenant, new)
        elif owner == tenant and author.valid and text.valid:
            h.finding("valid input refused", "blackboard.add_comment", repr(out.error))


def add(h: Harness, d: Drawer, tenant: str, rt: cowork.Runtime) -> None:
    wid_kind = d.raw(st.sampled_from([WORKSPACE, WORKSPACE, WORKSPACE, "ws-sentinel", "other"]))
    other = d(ids)
    wid = Arg(wid_kind, True) if wid_kind != "other" else other
    author = d(ids)
    text = d(texts, 20_000)
    key_kind, index = d.raw(
        st.tuples(st.sampled_from(["none", "pool", "pool", "drawn"]), st.integers())
    )
    drawn = d(keys)
    key = {
        "none": Arg(None, True),
        "pool": Arg(ARTIFACTS[index % len(ARTIFACTS)], True),
        "drawn": drawn,
    }[key_kind]
    severity = d(severities)
    tags = d(tag_lists)
    meta = d(metadata)
    out = h.call(
        "blackboard.add_feedback",
        rt.blackboard.add_feedback,
        wid.value,
        actor=author.value,
        body=text.value,
        artifact_key=key.value,
        severity=severity.value,
        tags=tags.value,
        metadata=meta.value,
    )
    exists = tenant in ("hostile", "hostile-2") and wid.value == WORKSPACE
    if out.ok:
        fb: cowork.Feedback = out.value
        h.check(exists, "add_feedback", f"added to missing workspace {wid.value!r} in {tenant}")
        want = (
            wid.value,
            author.value,
            text.value,
            key.value,
            severity.value,
            FeedbackStatus.PENDING,
            _dedupe(tags.value),
            dict(meta.value or {}),
            (),
            tenant,
        )
        got = (
            fb.workspace_id,
            fb.actor,
            fb.body,
            fb.artifact_key,
            fb.severity,
            fb.status,
            fb.tags,
            fb.metadata,
            fb.comments,
            fb.tenant_id,
        )
        h.same(got, want, "blackboard.add_feedback", text.value)
        _store(h, rt, tenant, fb)
    elif (
        exists
        and key.value in (None, *ARTIFACTS)
        and all(a.valid for a in (author, text, severity, tags, meta))
    ):
        h.finding("valid input refused", "blackboard.add_feedback", repr(out.error))


def _store(h: Harness, rt: cowork.Runtime, tenant: str, fb: cowork.Feedback) -> None:
    got = h.read(
        "blackboard.get_feedback", rt.blackboard.get_feedback, fb.workspace_id, fb.feedback_id
    )
    h.same(got, fb, "get_feedback after write", fb.feedback_id)
    _model(h)[(tenant, fb.feedback_id)] = fb


async def test_hostile_feedback(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "feedback", body, setup=setup)
