"""Hostile input for ``rt.workflows`` (register/start/get/list/history/cancel).

Definitions are built from hostile parts (ids, patterns, timeouts, retry settings, branch
values); building one is part of the call, since ``WorkflowDefinition`` is public API too.
An accepted definition must read back equal and re-register as a no-op; a started instance
must keep its input exactly; a repeated idempotency key returns the same instance; cancel
follows the instance's status.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

import cowork
from cowork import (
    ActionStep,
    BranchCase,
    BranchStep,
    CompleteStep,
    FailStep,
    InstanceStatus,
    WaitStep,
    WorkflowDefinition,
)
from tests.hostile.harness import Harness, hostile_run, tenant_view
from tests.hostile.strategies import (
    Arg,
    Drawer,
    ids,
    is_plain_json,
    keys,
    patterns,
    payloads,
    texts,
)

BUILTINS = ("workspace-provisioning", "blackboard-entry-review-publish")


def _model(h: Harness) -> dict[str, Any]:
    return h.state.setdefault(
        "workflows", {"definitions": {}, "instances": {}, "keys": {}}
    )  # definitions: (tenant, id, version) -> to_json; instances: id -> (tenant, input)


def draw_step(d: Drawer, names: list[str], index: int) -> tuple[Any, bool]:
    """One step (or junk in its place) and whether it is valid by itself (a jump to another
    step counts as not known to be valid)."""
    kind = d.raw(st.sampled_from(["wait", "wait", "action", "branch", "complete", "fail", "junk"]))
    name = d(ids)
    if isinstance(name.value, str) and len(name.value) > 100:
        name = Arg(name.value, False)
    target = d.raw(st.sampled_from(["none", "complete", "fail", "step", "nowhere"]))
    goto: Any = {
        "none": None,
        "complete": "complete",
        "fail": "fail",
        "step": names[index % len(names)] if names else "complete",
        "nowhere": "no-such-step",
    }[target]
    number = d.raw(
        st.sampled_from([None, 0.5, 30, 1e16, 0, -1, math.nan, math.inf, "5", True, 2**70])
    )
    valid_number = number is None or (
        type(number) in (int, float) and math.isfinite(number) and 0 < number < 1e12
    )
    if kind == "wait":
        event = d(patterns)
        timeout = number
        on_timeout = goto if timeout is not None else None
        fields = {"name": name.value, "event": event.value, "timeout_seconds": timeout}
        fields["on_timeout"] = on_timeout
        valid = name.valid and event.valid and valid_number and target not in ("nowhere", "step")
        return ("wait", fields), bool(valid)
    if kind == "action":
        action = d(ids)
        attempts = d.raw(st.sampled_from([1, 3, 0, -1, "3", 1.5, 2**70, True]))
        backoff = number if number is not None else 0.1
        fields = {
            "name": name.value,
            "action": action.value,
            "max_attempts": attempts,
            "backoff_seconds": backoff,
        }
        valid = name.valid and action.valid and attempts in (1, 3) and type(attempts) is int
        # The definition accepts a backoff between 0 and one day (number_arg's bounds).
        valid = valid and (
            type(backoff) in (int, float) and math.isfinite(backoff) and 0 <= backoff <= 86_400
        )
        return ("action", fields), bool(valid)
    if kind == "branch":
        path = d(keys)
        equals = d.raw(st.one_of(payloads(clean=True), st.sampled_from([math.nan, b"x", {1}])))
        fields = {
            "name": name.value,
            "cases": ((path.value, equals, goto or "complete"),),
            "default": "complete" if target != "nowhere" else "nowhere",
        }
        valid = (
            name.valid
            and path.valid
            and is_plain_json(equals)
            and target not in ("nowhere", "step")
        )
        return ("branch", fields), bool(valid)
    if kind == "complete":
        return ("complete", {"name": name.value}), bool(name.valid)
    if kind == "fail":
        reason = d(texts, 500)
        return ("fail", {"name": name.value, "reason": reason.value}), bool(
            name.valid and reason.valid
        )
    junk_step = d.raw(st.sampled_from(["step", None, 5, {"kind": "wait"}, ("a",)]))
    return ("junk", junk_step), False


def build_step(spec: tuple[str, Any]) -> Any:
    kind, fields = spec
    if kind == "wait":
        return WaitStep(**fields)
    if kind == "action":
        return ActionStep(**fields)
    if kind == "branch":
        cases = tuple(BranchCase(path=p, equals=e, goto=g) for p, e, g in fields["cases"])
        return BranchStep(name=fields["name"], cases=cases, default=fields["default"])
    if kind == "complete":
        return CompleteStep(**fields)
    if kind == "fail":
        return FailStep(**fields)
    return fields


def _build_definition(spec: dict[str, Any]) -> WorkflowDefinition:
    steps = tuple(build_step(s) for s in spec["steps"])
    return WorkflowDefinition(**{**spec, "steps": steps})


async def _register(rt: cowork.Runtime, spec: dict[str, Any]) -> WorkflowDefinition:
    definition = _build_definition(spec)  # the constructor validates: part of the call
    await rt.workflows.register(definition)
    return definition


def register(h: Harness, d: Drawer, tenant: str, rt: cowork.Runtime) -> None:
    workflow_id = d(ids)
    version = d.raw(st.sampled_from([1, 1, 2, 3, 0, -1, 2**31, 2**70, True, "1", 1.0]))
    name = d(texts, 200)
    trigger = d.raw(st.sampled_from(["none"] * 6 + ["pattern"]))
    trigger_pattern = d(patterns)
    correlation = d.raw(
        st.one_of(
            st.lists(keys(64, clean=True), max_size=2).map(
                lambda items: Arg(tuple(a.value for a in items), True)
            ),
            st.sampled_from([("workspaceId",), (), "ab", ("",), (5,), None]).map(
                lambda v: Arg(v, v in (("workspaceId",), ()))
            ),
        )
    )
    description = d.opt(texts, 500)
    count = d.raw(st.integers(1, 4))
    names = [f"s{i}" for i in range(count)]
    steps = [draw_step(d, names, i) for i in range(count)]
    spec: dict[str, Any] = {
        "workflow_id": workflow_id.value,
        "version": version,
        "name": name.value,
        "steps": [s for s, _ in steps],
        "trigger": trigger_pattern.value if trigger == "pattern" else None,
        "correlation": correlation.value,
        "description": description.value,
    }
    valid = bool(
        workflow_id.valid
        and type(version) is int
        and 1 <= version <= 3
        and name.valid
        and (trigger == "none" or trigger_pattern.valid)
        and correlation.valid
        and description.valid
        and all(v for _, v in steps)
        and len({s[1].get("name") for s in spec["steps"] if isinstance(s[1], dict)}) == count
    )
    out = h.call("workflows.register", _register, rt, spec)
    key = (tenant, workflow_id.value, version)
    if out.ok:
        definition: WorkflowDefinition = out.value
        stored = h.read("workflows.definitions", rt.workflows.definitions) or []
        found = [
            x.to_json()
            for x in stored
            if x.workflow_id == definition.workflow_id and x.version == definition.version
        ]
        h.same(found, [definition.to_json()], "register then definitions", spec)
        again = h.read("workflows.register", rt.workflows.register, definition)
        h.same(again, False, "re-register identical content", spec)
        _model(h)["definitions"][key] = definition
    elif valid and not isinstance(out.error, cowork.DefinitionConflict):
        h.finding("valid input refused", "workflows.register", repr(out.error), (), spec)


def _pick_instance(h: Harness, d: Drawer) -> Arg:
    kind, index = d.raw(st.tuples(st.sampled_from(["known", "known", "other"]), st.integers()))
    other = d(ids)
    known = sorted(_model(h)["instances"])
    if kind == "known" and known:
        return Arg(known[index % len(known)], True)
    return other


def body(h: Harness, data: st.DataObject) -> None:
    d = Drawer(data)
    tenant, rt = tenant_view(h, data)
    op = d.raw(
        st.sampled_from(
            ["register", "register", "start", "start", "get", "list", "history", "cancel"]
        )
    )
    model = _model(h)
    if op == "register":
        register(h, d, tenant, rt)
    elif op == "start":
        kind, index = d.raw(
            st.tuples(st.sampled_from(["builtin", "known", "other"]), st.integers())
        )
        other = d(ids)
        known = sorted({(w, v) for (t, w, v) in model["definitions"] if t == tenant})
        if kind == "builtin":
            workflow_id = Arg(BUILTINS[index % 2], True)
        elif kind == "known" and known:
            workflow_id = Arg(known[index % len(known)][0], True)
        else:
            workflow_id = other
        payload = d(payloads)
        with_ids = d.raw(st.booleans())
        if with_ids and isinstance(payload, dict):
            payload = {**payload, "workspaceId": "ws-1", "artifactKey": "k"}
        key_kind = d.raw(st.sampled_from(["none", "fresh", "reuse"]))
        fresh_key = d(ids)
        reuse = sorted(k for (_, _, k) in model["keys"])
        idem = {
            "none": Arg(None, True),
            "fresh": fresh_key,
            "reuse": Arg(reuse[index % len(reuse)], True) if reuse else Arg(None, True),
        }[key_kind]
        start_key = (tenant, workflow_id.value, idem.value)
        version = d.raw(st.sampled_from([None, None, 1, 2, 0, 2**70, "1", True]))
        out = h.call(
            "workflows.start",
            rt.workflows.start,
            workflow_id.value,
            input=payload,
            idempotency_key=idem.value,
            version=version,
        )
        if out.ok:
            instance: cowork.WorkflowInstance = out.value
            previous = model["keys"].get(start_key) if idem.value is not None else None
            if previous is not None:
                h.same(instance.instance_id, previous, "idempotent start", idem.value)
            else:
                want = {} if payload is None else payload
                h.same(instance.state.get("input"), want, "workflows.start (input)", payload)
                h.check(instance.tenant_id == tenant, "workflows.start", "wrong tenant")
            got = h.read("workflows.get", rt.workflows.get, instance.instance_id)
            if got is None:
                h.finding("wrong result", "workflows.get", "a started instance is missing")
            else:
                h.same(
                    (got.instance_id, got.workflow_id, got.state.get("input")),
                    (instance.instance_id, instance.workflow_id, instance.state.get("input")),
                    "workflows.start then get",
                )
            model["instances"][instance.instance_id] = (tenant, instance.state.get("input"))
            if idem.value is not None and previous is None:
                model["keys"][start_key] = instance.instance_id
    elif op == "get":
        iid = _pick_instance(h, d)
        out = h.call("workflows.get", rt.workflows.get, iid.value)
        if out.ok:
            known_instance = (
                model["instances"].get(iid.value) if isinstance(iid.value, str) else None
            )
            if known_instance is None or known_instance[0] != tenant:
                h.same(out.value, None, "workflows.get (another tenant's or missing)", iid.value)
            elif out.value is None:
                h.finding("wrong result", "workflows.get", "a started instance is missing")
            else:
                h.same(out.value.state.get("input"), known_instance[1], "workflows.get (input)")
    elif op == "list":
        workflow_id = d.opt(ids)
        status = d.raw(
            st.one_of(
                st.none(),
                st.sampled_from(list(InstanceStatus)),
                st.sampled_from(["running", "RUNNING", "", "%s", 5]),
            )
        )
        limit = d.raw(st.sampled_from([100, 1, 1000, 0, -1, 2**70, "5", 1.5, None]))
        out = h.call(
            "workflows.list",
            rt.workflows.list,
            workflow_id=workflow_id.value,
            status=status,
            limit=limit,
        )
        if out.ok:
            h.check(
                all(i.tenant_id == tenant for i in out.value),
                "workflows.list",
                "listed another tenant's instances",
            )
            if not (type(limit) is int and limit >= 1):
                h.finding(
                    "accepted a bad limit",
                    "workflows.list",
                    f"limit={limit!r} returned {len(out.value)} rows instead of a ValidationError",
                )
    elif op == "history":
        iid = _pick_instance(h, d)
        out = h.call("workflows.history", rt.workflows.history, iid.value)
        if out.ok:
            owner = model["instances"].get(iid.value, (None,))[0]
            h.check(owner == tenant, "workflows.history", f"history of {owner}'s instance")
            seqs = [e.seq for e in out.value] if out.value and hasattr(out.value[0], "seq") else []
            h.check(seqs == sorted(seqs), "workflows.history", "history out of order")
    else:
        iid = _pick_instance(h, d)
        reason = d.opt(texts, 500)
        actor = d.opt(ids)
        out = h.call(
            "workflows.cancel",
            rt.workflows.cancel,
            iid.value,
            reason=reason.value,
            actor=actor.value,
        )
        known_instance = model["instances"].get(iid.value) if isinstance(iid.value, str) else None
        if out.ok:
            h.check(
                known_instance is not None and known_instance[0] == tenant,
                "workflows.cancel",
                "cancelled an instance of another tenant",
            )
            h.same(out.value.status, InstanceStatus.CANCELLED, "workflows.cancel", iid.value)


async def test_hostile_workflows(database_url: str, backend: str) -> None:
    await hostile_run(database_url, backend, "workflows", body)
