"""Driving hypothesis against one runtime, judging each call, and guarding a sentinel tenant.

The runtime lives on the test's event loop, which keeps running (the embedded worker, the
workflow engine and durable consumers work in the background the whole time). Hypothesis runs
in a worker thread and hands each call to the loop with ``run_coroutine_threadsafe``, so one
runtime serves thousands of generated cases.

A call either returns (the test then checks that what it wrote reads back exactly) or raises a
documented :class:`cowork.CoworkError`. Anything else, and every read-back mismatch, is recorded
as a *finding* (deduplicated by kind and raising line) instead of stopping the run, so one run
reports every distinct problem; the test fails at the end if there is any.

Knobs: ``COWORK_HOSTILE_EXAMPLES`` (cases per service on SQLite, default 2000) and
``COWORK_HOSTILE_PG_EXAMPLES`` (on PostgreSQL, default 1000, which keeps the suite near 2.5
minutes for both backends; set 2000 or more for longer runs); ``COWORK_HOSTILE_PROFILE=FILE``
writes a cProfile of the generating thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sqlite3
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cowork
from tests.hostile.strategies import Arg

__all__ = ["SENTINEL", "Harness", "Outcome", "drive", "examples_for"]

SENTINEL = "sentinel"
CALL_TIMEOUT = 120.0
REPO = Path(__file__).resolve().parents[2]

#: ``COWORK_HOSTILE_EXAMPLES`` (generated cases per service on SQLite) and
#: ``COWORK_HOSTILE_PG_EXAMPLES`` (on PostgreSQL) size the run; CI uses the defaults.
DEFAULT_EXAMPLES = {"sqlite": 2000, "postgresql": 1000}
ENV_KNOB = {"sqlite": "COWORK_HOSTILE_EXAMPLES", "postgresql": "COWORK_HOSTILE_PG_EXAMPLES"}

#: (service, backend) -> generated cases, filled in by every run, printed in the summary.
RUN_COUNTS: dict[tuple[str, str], Counter[str]] = {}


def examples_for(backend: str) -> int:
    raw = os.environ.get(ENV_KNOB[backend], "").strip()
    return int(raw) if raw else DEFAULT_EXAMPLES[backend]


@dataclass(frozen=True, slots=True)
class Outcome:
    value: Any = None
    error: cowork.CoworkError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _short(value: Any, limit: int = 300) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a hostile object may even refuse repr
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _raise_site(exc: BaseException) -> str:
    """The innermost frame inside cowork (else the innermost frame) that raised ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/cowork/" in f.filename.replace(os.sep, "/")]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = frame.filename
    with_repo = str(REPO)
    if path.startswith(with_repo):
        path = path[len(with_repo) + 1 :]
    return f"{path}:{frame.lineno}"


class Harness:
    """One runtime, one service under test, its counters and findings."""

    def __init__(
        self,
        rt: cowork.Runtime,
        *,
        backend: str,
        service: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.rt = rt
        self.backend = backend
        self.service = service
        self.loop = loop
        self.cases = 0
        self.outcomes: Counter[str] = Counter()
        self.findings: dict[tuple[str, ...], list[Any]] = {}
        self.state: dict[str, Any] = {}
        self.call_seconds = 0.0

    # -- running calls --------------------------------------------------------------------
    def _run(self, factory: Callable[[], Any]) -> Any:
        async def runner() -> Any:
            result = factory()
            if inspect.isawaitable(result):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return future.result(timeout=CALL_TIMEOUT)

    def call(
        self,
        label: str,
        fn: Callable[..., Awaitable[Any] | Any],
        /,
        *args: Any,
        valid: bool | None = None,
        **kwargs: Any,
    ) -> Outcome:
        """Call the public API: a value or a CoworkError; anything else is a finding.

        ``valid=True`` says every argument is acceptable by contract: a refusal is then a
        finding too (unless it is one of the state-dependent errors)."""
        self.outcomes["calls"] += 1
        started = time.perf_counter()
        try:
            value = self._run(lambda: fn(*args, **kwargs))
        except cowork.CoworkError as exc:
            self.outcomes[type(exc).__name__] += 1
            refused = isinstance(exc, cowork.ValidationError | cowork.PersistenceError)
            if valid and refused and not isinstance(exc, cowork.StorageConflict):
                self.finding(
                    "valid input refused",
                    label,
                    f"{type(exc).__name__}: {exc}",
                    args=args,
                    kwargs=kwargs,
                    site=_raise_site(exc),
                )
            return Outcome(error=exc)
        except TimeoutError:
            self.finding("call hung", label, f"no answer in {CALL_TIMEOUT}s", args, kwargs)
            return Outcome(error=cowork.CoworkError("timeout (recorded as a finding)"))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self.outcomes["RAW " + type(exc).__name__] += 1
            self.finding(
                f"raw {type(exc).__name__} escaped",
                label,
                f"{type(exc).__name__}: {_short(str(exc), 200)}",
                args=args,
                kwargs=kwargs,
                site=_raise_site(exc),
            )
            return Outcome(error=cowork.CoworkError(f"raw {type(exc).__name__} (a finding)"))
        finally:
            self.call_seconds += time.perf_counter() - started
        self.outcomes["ok"] += 1
        return Outcome(value=value)

    def read(self, label: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """A verification read that must succeed; a failure is a finding (returns None)."""
        try:
            return self._run(lambda: fn(*args, **kwargs))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            self.finding(
                "verification read failed",
                label,
                f"{type(exc).__name__}: {_short(str(exc), 200)}",
                args=args,
                kwargs=kwargs,
                site=_raise_site(exc),
            )
            return None

    # -- judging ---------------------------------------------------------------------------
    def check(self, condition: bool, label: str, detail: str, /, *args: Any, **kwargs: Any) -> bool:
        if not condition:
            self.finding("wrong result", label, detail, args=args, kwargs=kwargs)
        return condition

    def same(self, got: Any, want: Any, label: str, /, *args: Any, **kwargs: Any) -> bool:
        """``got == want`` (exact JSON round trip); a mismatch is a finding."""
        if got == want:
            return True
        self.finding(
            "round trip differs",
            label,
            f"wrote {_short(want, 200)}, read {_short(got, 200)}",
            args=args,
            kwargs=kwargs,
        )
        return False

    def finding(
        self,
        kind: str,
        label: str,
        detail: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        site: str = "",
    ) -> None:
        key = (kind, label, site or detail[:80])
        entry = self.findings.get(key)
        if entry is None:
            shown = ", ".join(
                [_short(a, 120) for a in args]
                + [f"{k}={_short(v, 120)}" for k, v in (kwargs or {}).items()]
            )
            self.findings[key] = [1, f"{detail} [call: {label}({shown})]"]
        else:
            entry[0] += 1

    def report(self) -> str:
        lines = []
        for (kind, label, site), (count, example) in sorted(self.findings.items()):
            lines.append(f"- {kind} in {label} at {site} ({count}x): {example}")
        return "\n".join(lines)


def all_valid(*args: Arg) -> bool:
    return all(a.valid is True for a in args)


def drive(
    harness: Harness, body: Callable[[Harness, st.DataObject], None], *, examples: int
) -> Callable[[], None]:
    """A function that runs ``body`` for ``examples`` generated cases (in a worker thread)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        harness.cases += 1
        body(harness, data)

    return run


async def run_cases(
    harness: Harness, body: Callable[[Harness, st.DataObject], None], *, examples: int
) -> None:
    started = time.monotonic()
    runner = drive(harness, body, examples=examples)
    profile_to = os.environ.get("COWORK_HOSTILE_PROFILE")
    if profile_to:  # a developer knob: cProfile of the generating thread
        import cProfile

        inner = runner

        def runner() -> None:
            cProfile.runctx("inner()", globals(), {"inner": inner}, profile_to)

    await asyncio.to_thread(runner)
    elapsed = time.monotonic() - started
    counts = RUN_COUNTS.setdefault((harness.service, harness.backend), Counter())
    counts["cases"] += harness.cases
    counts.update(harness.outcomes)
    counts["seconds"] += round(elapsed)
    counts["seconds in calls"] += round(harness.call_seconds)
    assert harness.cases >= examples * 0.95, (
        f"only {harness.cases} of {examples} cases were generated"
    )


# -- the sentinel tenant ------------------------------------------------------------------------

_VOLATILE = {
    "cowork_event_consumer_checkpoint": {"lease_owner", "lease_expires_at", "updated_at"},
    "cowork_workflow_instance": {"lease_owner", "lease_expires_at"},
}
_TENANT_TABLES = (
    "cowork_workspace_state",
    "cowork_blackboard_entry",
    "cowork_blackboard_entry_version",
    "cowork_blackboard_feedback",
    "cowork_workspace_snapshot",
    "cowork_event_log",
    "cowork_event_consumer_checkpoint",
    "cowork_event_parked",
    "cowork_workflow_definition",
    "cowork_workflow_instance",
    "cowork_workflow_history",
)

SENTINEL_PAYLOAD = {
    "text": "'; DROP TABLE cowork_event_log; --",
    "big": 2**70,
    "nested": {"list": [1, 2.5, None, True, "%(x)s"], "empty": {}},
    "unicode": "\u00e9\U0001f600",
}


async def build_sentinel(rt: cowork.Runtime) -> cowork.Runtime:
    """A tenant with one of everything, its built-in workflows run to completion."""
    s = rt.for_tenant(SENTINEL, owner_id="sentinel-owner")
    ws = await s.workspaces.create(
        name="Sentinel's workspace",
        actor="sentinel-user",
        project_id="proj-1",
        description="must never change",
        members=["sentinel-user"],
        metadata={"kind": "sentinel", "n": 1},
        workspace_id="ws-sentinel",
    )
    wid = ws.workspace_id
    await s.workspaces.add_member(wid, "bob", actor="sentinel-user")
    await s.blackboard.put(wid, "plan", SENTINEL_PAYLOAD, actor="sentinel-user")
    await s.blackboard.put(wid, "'; DROP TABLE x; --", {"v": 1}, actor="sentinel-user")
    feedback = await s.blackboard.add_feedback(
        wid, actor="bob", body="looks good", artifact_key="plan", tags=["t1", "%s"]
    )
    await s.blackboard.add_comment(
        feedback.workspace_id, feedback.feedback_id, actor="bob", body="really"
    )
    await s.blackboard.put(wid, "plan", {**SENTINEL_PAYLOAD, "v": 2}, actor="sentinel-user")
    await s.snapshots.create(wid, actor="sentinel-user", label="before")
    closed = await s.workspaces.create(
        name="closed one", actor="sentinel-user", workspace_id="ws-closed"
    )
    await s.workspaces.close(closed.workspace_id)
    for i in range(3):
        await s.events.publish(
            "sentinel:thing:happened",
            {"i": i, "secret_token": "abc", "mail": "a@b.example"},
            event_id=f"sentinel-event-{i}",
            aggregate_type="thing",
            aggregate_id=f"thing-{i}",
        )
    return s


def _comparable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _comparable(getattr(value, f.name))
            for f in fields(value)
            if f.name not in ("lease_owner", "lease_expires_at", "updated_at")
            or not isinstance(value, cowork.ConsumerInfo)
        }
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


async def sentinel_reads(s: cowork.Runtime) -> dict[str, Any]:
    """Everything the public API shows of the sentinel tenant."""
    out: dict[str, Any] = {"workspaces": await s.workspaces.list(include_deleted=True)}
    for ws in out["workspaces"]:
        wid = ws.workspace_id
        entries = await s.blackboard.list(wid, include_deleted=True)
        feedback = await s.blackboard.list_feedback(wid)
        snapshots = await s.snapshots.list(wid)
        out[wid] = {
            "entries": entries,
            "history": [await s.blackboard.history(wid, e.artifact_key) for e in entries],
            "feedback": feedback,
            "feedback_get": [
                await s.blackboard.get_feedback(f.workspace_id, f.feedback_id) for f in feedback
            ],
            "snapshots": [await s.snapshots.get(x.workspace_id, x.snapshot_id) for x in snapshots],
        }
    out["events"] = [e async for e in s.events.iterate()]
    instances = await s.workflows.list(limit=1000)
    out["instances"] = instances
    out["instance_history"] = [await s.workflows.history(i.instance_id) for i in instances]
    out["definitions"] = [d.to_json() for d in await s.workflows.definitions()]
    out["consumers"] = await s.consumers.list()
    out["parked"] = await s.consumers.parked()
    return _comparable(out)


def _raw_rows_sync(url: str) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for table in _TENANT_TABLES:
                cur = conn.execute(f"SELECT * FROM {table} WHERE tenant_id = ?", (SENTINEL,))
                names = [c[0] for c in cur.description]
                rows[table] = sorted(
                    repr(
                        tuple(
                            v
                            for n, v in zip(names, r, strict=True)
                            if n not in _VOLATILE.get(table, ())
                        )
                    )
                    for r in cur.fetchall()
                )
        finally:
            conn.close()
        return rows
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SELECT set_config('cowork.tenant_id', '*', true)")
        for table in _TENANT_TABLES:
            cur = conn.execute(
                f"SELECT * FROM {table} WHERE tenant_id = %s",
                (SENTINEL,),
            )
            names = [c.name for c in cur.description or ()]
            rows[table] = sorted(
                repr(
                    tuple(
                        v
                        for n, v in zip(names, r, strict=True)
                        if n not in _VOLATILE.get(table, ())
                    )
                )
                for r in cur.fetchall()
            )
    return rows


async def sentinel_state(s: cowork.Runtime, url: str) -> dict[str, Any]:
    return {"api": await sentinel_reads(s), "rows": await asyncio.to_thread(_raw_rows_sync, url)}


async def settled_sentinel(s: cowork.Runtime, url: str, *, timeout: float = 30.0) -> Any:
    """The sentinel's state once its consumers caught up, no workflow step is running, and two
    reads 0.3 s apart agree."""
    deadline = time.monotonic() + timeout
    previous: Any = None
    while True:
        current = await sentinel_state(s, url)
        api = current["api"]
        quiet = all(i["status"] != "running" for i in api["instances"]) and all(
            c["lag"] == 0 for c in api["consumers"]
        )
        if quiet and current == previous:
            return current
        if time.monotonic() > deadline:
            raise AssertionError("the sentinel tenant never settled (its workflows kept moving)")
        previous = current
        await asyncio.sleep(0.3)


def diff_states(before: Any, after: Any, path: str = "") -> list[str]:
    """Human-readable differences between two captured states."""
    if type(before) is not type(after):
        return [f"{path}: {_short(before, 150)} -> {_short(after, 150)}"]
    if isinstance(before, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after), key=str):
            if k not in before:
                out.append(f"{path}/{k}: added {_short(after[k], 150)}")
            elif k not in after:
                out.append(f"{path}/{k}: removed")
            else:
                out.extend(diff_states(before[k], after[k], f"{path}/{k}"))
        return out
    if isinstance(before, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items -> {len(after)} items"]
        out = []
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            out.extend(diff_states(a, b, f"{path}[{i}]"))
        return out
    return [] if before == after else [f"{path}: {_short(before, 150)} -> {_short(after, 150)}"]


# -- one hostile run --------------------------------------------------------------------------

HOSTILE_TENANT = "hostile"
#: Other tenants the hostile calls act for: near misses of the sentinel's id, never it.
OTHER_TENANTS = ("hostile-2", "Sentinel", "sentinel.", "sentinel/x", "sentinel-", "sentinel:")


def tenant_view(h: Harness, data: st.DataObject) -> tuple[str, cowork.Runtime]:
    """The hostile tenant (mostly) or one of the near-miss tenants."""
    tenant = data.draw(
        st.one_of(st.just(HOSTILE_TENANT), st.just(HOSTILE_TENANT), st.sampled_from(OTHER_TENANTS))
    )
    views: dict[str, cowork.Runtime] = h.state.setdefault("views", {HOSTILE_TENANT: h.rt})
    if tenant not in views:
        views[tenant] = h._run(lambda: h.rt.for_tenant(tenant, owner_id="owner-" + tenant))
    return tenant, views[tenant]


async def hostile_run(
    database_url: str,
    backend: str,
    service: str,
    body: Callable[[Harness, st.DataObject], None],
    *,
    setup: Callable[[Harness], Awaitable[None]] | None = None,
    verify: Callable[[Harness], Awaitable[None]] | None = None,
    examples: int | None = None,
) -> Harness:
    """Open one runtime, build and settle the sentinel, run the generated cases, verify, and
    check that the sentinel did not change and that nothing was found."""
    count = examples if examples is not None else examples_for(backend)
    # Hostile handlers fail on purpose thousands of times: keep their retry warnings out of
    # the report (errors still show).
    consumers_log = logging.getLogger("cowork.consumers")
    level = consumers_log.level
    consumers_log.setLevel(logging.ERROR)
    try:
        harness = await _hostile_run(
            database_url, backend, service, body, setup=setup, verify=verify, count=count
        )
    finally:
        consumers_log.setLevel(level)
    return harness


async def _hostile_run(
    database_url: str,
    backend: str,
    service: str,
    body: Callable[[Harness, st.DataObject], None],
    *,
    setup: Callable[[Harness], Awaitable[None]] | None,
    verify: Callable[[Harness], Awaitable[None]] | None,
    count: int,
) -> Harness:
    async with await cowork.open(
        database_url, tenant_id=HOSTILE_TENANT, owner_id="hostile-owner"
    ) as rt:
        sentinel = await build_sentinel(rt)
        before = await settled_sentinel(sentinel, database_url)
        harness = Harness(rt, backend=backend, service=service, loop=asyncio.get_running_loop())
        if setup is not None:
            await setup(harness)
        await run_cases(harness, body, examples=count)
        if verify is not None:
            await verify(harness)
        after = await settled_sentinel(sentinel, database_url)
    changed = diff_states(before, after)
    assert not changed, "the sentinel tenant changed:\n" + "\n".join(changed[:40])
    assert not harness.findings, (
        f"{len(harness.findings)} distinct problem(s) in {harness.cases} generated "
        f"{service} cases on {backend}:\n{harness.report()}"
    )
    return harness
