"""Every inspection and operation command, as a table and as ``--json``,
against a database seeded through the Python API (SQLite, then PostgreSQL).

The commands run in-process through click's ``CliRunner`` with ``--database-url`` and
``--tenant``; the console is made wide (``COLUMNS``) so that rich never truncates an id.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import cowork
from cowork.events.patterns import EventPattern
from cowork.migrations import discover
from tests.cli.support import (
    ENGINE_CONSUMER,
    OTHER_TENANT,
    PICKY,
    ROOT,
    TENANT,
    WIDE,
    Seed,
    invoke,
    ok,
    ok_json,
)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text`` (header rows use a different border)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def row_for(text: str, first: str) -> list[str]:
    found = [r for r in table_rows(text) if r and r[0] == first]
    assert len(found) == 1, f"expected one row starting with {first!r} in:\n{text}"
    return found[0]


def first_column(text: str) -> list[str]:
    return [r[0] for r in table_rows(text)]


def single_error_line(result: Result) -> str:
    """The one-line message of a failed command (and no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines: list[str] = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got:\n{result.stderr}"
    assert "Traceback" not in result.output
    return lines[0]


async def _consumer(url: str, consumer_id: str) -> cowork.ConsumerInfo:
    async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
        [info] = [c for c in await rt.consumers.list() if c.consumer_id == consumer_id]
    return info


# -- status and migrate -------------------------------------------------------------------------


def test_status_table(seeded: Seed, backend: str) -> None:
    out = ok(invoke(seeded.url, "status"))
    status = {r[0]: r[1] for r in table_rows(out)}
    assert status["backend"] == backend
    assert status["tenant id"] == TENANT
    assert status["healthy"] == "True"
    assert status["durable"] == "True"
    assert status["schema version"] == discover(backend)[-1].name
    assert status["migrations pending"] == "[]"
    assert status["horizon held by"] == "nothing"
    assert status["parked events"] == "1"
    assert PICKY in status["consumer lag"] and ENGINE_CONSUMER in status["consumer lag"]
    assert "'completed': 2" in status["workflows"] and "'waiting': 5" in status["workflows"]


def test_status_json(seeded: Seed, backend: str) -> None:
    info = ok_json(invoke(seeded.url, "--json", "status"))
    assert info["backend"] == backend
    assert info["healthy"] is True and info["durable"] is True
    assert info["tenant_id"] == TENANT
    assert info["schema_version"] == discover(backend)[-1].name
    assert info["migrations_pending"] == []
    assert info["horizon_held_by"] == []
    assert info["migrations_applied"] >= 1
    assert info["parked_events"] == 1
    assert set(info["consumer_lag"]) == {PICKY, ENGINE_CONSUMER}
    assert info["consumer_lag"][ENGINE_CONSUMER] == 0
    # o-1, the review of spec and notes, the provisioning of beta and gone wait; o-2 and alpha's
    # provisioning completed.
    assert info["workflows"] == {"completed": 2, "waiting": 5}
    assert isinstance(info["latency_ms"], float)


def test_status_is_tenant_scoped(seeded: Seed) -> None:
    info = ok_json(invoke(seeded.url, "--json", "status", tenant=OTHER_TENANT))
    assert info["tenant_id"] == OTHER_TENANT
    assert info["parked_events"] == 0
    assert PICKY not in info["consumer_lag"]


def test_migrate_check_up_to_date(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "migrate", "--check"))
    assert "up to date" in out and discover("sqlite")[-1].name in out
    report = ok_json(invoke(seeded.url, "--json", "migrate", "--check"))
    assert report["up_to_date"] is True
    assert report["pending"] == [] and report["applied_now"] == []
    assert report["schema_version"] == discover("sqlite")[-1].name
    assert report["already_applied"][-1] == report["schema_version"]


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_empty_url")
        return url
    return f"sqlite:///{tmp_path / 'empty.db'}"


def test_migrate_check_pending_then_migrate(empty_url: str, backend: str) -> None:
    pending = invoke(empty_url, "migrate", "--check")
    assert pending.exit_code == 4, pending.output
    assert "pending" in pending.stdout and "0001_" in pending.stdout
    report = json.loads(invoke(empty_url, "--json", "migrate", "--check").stdout)
    assert report["up_to_date"] is False and report["pending"][0].startswith("0001_")
    assert report["applied_now"] == [] and report["already_applied"] == []

    applied = ok_json(invoke(empty_url, "--json", "migrate"))
    assert applied["applied_now"] == report["pending"]
    assert applied["backend"] == backend and applied["up_to_date"] is True

    again = ok(invoke(empty_url, "migrate"))
    assert f"schema at {discover(backend)[-1].name}" in again and "applied " not in again
    assert "up to date" in ok(invoke(empty_url, "migrate", "--check"))


# -- workspace ----------------------------------------------------------------------------------


def test_workspace_list_table(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workspace", "list"))
    assert sorted(first_column(out)) == sorted([seeded.alpha, seeded.beta])
    alpha = row_for(out, seeded.alpha)
    assert alpha[1:5] == ["Alpha", "active", "proj-1", "alice, bob"]
    assert row_for(out, seeded.beta)[2] == "closed"
    everything = ok(invoke(seeded.url, "workspace", "list", "--all"))
    assert row_for(everything, seeded.gone)[2] == "deleted"
    assert seeded.zeta not in everything
    closed = ok(invoke(seeded.url, "workspace", "list", "--status", "closed"))
    assert first_column(closed) == [seeded.beta]
    project = ok(invoke(seeded.url, "workspace", "list", "--project", "proj-1"))
    assert first_column(project) == [seeded.alpha]


def test_workspace_list_json(seeded: Seed) -> None:
    items = ok_json(invoke(seeded.url, "--json", "workspace", "list"))
    by_id = {w["workspace_id"]: w for w in items}
    assert set(by_id) == {seeded.alpha, seeded.beta}
    alpha = by_id[seeded.alpha]
    assert alpha["name"] == "Alpha" and alpha["status"] == "active"
    assert alpha["members"] == ["alice", "bob"] and alpha["project_id"] == "proj-1"
    assert alpha["tenant_id"] == TENANT and alpha["created_by"] == "alice"
    assert alpha["closed_at"] is None and alpha["deleted_at"] is None
    assert by_id[seeded.beta]["closed_at"] is not None
    other = ok_json(invoke(seeded.url, "--json", "workspace", "list", tenant=OTHER_TENANT))
    assert [w["workspace_id"] for w in other] == [seeded.zeta]


def test_workspace_show(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workspace", "show", seeded.alpha))
    assert row_for(out, seeded.alpha)[1:3] == ["Alpha", "active"]
    gone = ok_json(invoke(seeded.url, "--json", "workspace", "show", seeded.gone))
    assert gone["workspace_id"] == seeded.gone and gone["status"] == "deleted"
    assert gone["deleted_at"] is not None
    # Another tenant's workspace does not exist for acme.
    hidden = invoke(seeded.url, "workspace", "show", seeded.zeta)
    assert hidden.exit_code == 5
    assert seeded.zeta in single_error_line(hidden)


def test_workspace_create(seeded: Seed) -> None:
    out = ok(
        invoke(
            seeded.url,
            "workspace",
            "create",
            "--name",
            "Gamma",
            "--actor",
            "carol",
            "--project",
            "proj-9",
            "--member",
            "carol",
            "--member",
            "dave",
        )
    )
    assert out.startswith("created workspace ")
    new_id = out.split()[-1]
    shown = ok_json(invoke(seeded.url, "--json", "workspace", "show", new_id))
    assert shown["name"] == "Gamma" and shown["project_id"] == "proj-9"
    assert shown["members"] == ["carol", "dave"] and shown["status"] == "active"
    created = ok_json(
        invoke(
            seeded.url,
            "--json",
            "workspace",
            "create",
            "--name",
            "Delta",
            "--actor",
            "dave",
            "--description",
            "for scripts",
        )
    )
    assert created["name"] == "Delta" and created["description"] == "for scripts"
    assert created["members"] == ["dave"] and created["created_by"] == "dave"
    assert created["tenant_id"] == TENANT and created["status"] == "active"
    listed = {w["workspace_id"] for w in ok_json(invoke(seeded.url, "--json", "workspace", "list"))}
    assert {new_id, created["workspace_id"]} <= listed


def test_workspace_lifecycle_table(seeded: Seed) -> None:
    def run(action: str, *extra: str) -> str:
        return ok(invoke(seeded.url, "workspace", action, seeded.alpha, "--actor", "alice", *extra))

    assert run("close").strip() == f"workspace {seeded.alpha} is closed"
    assert run("open").strip() == f"workspace {seeded.alpha} is active"
    assert run("archive").strip() == f"workspace {seeded.alpha} is archived"
    assert run("delete", "--yes").strip() == f"workspace {seeded.alpha} is deleted"
    listed = ok(invoke(seeded.url, "workspace", "list"))
    assert seeded.alpha not in listed


def test_workspace_lifecycle_json(seeded: Seed) -> None:
    def run(action: str, *extra: str) -> dict[str, Any]:
        result: dict[str, Any] = ok_json(
            invoke(seeded.url, "--json", "workspace", action, seeded.alpha, *extra)
        )
        assert result["workspace_id"] == seeded.alpha
        return result

    closed = run("close")
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    opened = run("open")
    assert opened["status"] == "active" and opened["closed_at"] is None
    assert run("archive")["status"] == "archived"
    deleted = run("delete", "--yes")  # no terminal to confirm on: --yes
    assert deleted["status"] == "deleted" and deleted["deleted_at"] is not None


def test_workspace_invalid_transition_is_a_one_line_error(seeded: Seed) -> None:
    result = invoke(seeded.url, "workspace", "close", seeded.beta)
    assert result.exit_code == 1, result.output
    line = single_error_line(result)
    assert line.startswith("error: ") and "closed" in line
    as_json = invoke(seeded.url, "--json", "workspace", "close", seeded.beta)
    assert as_json.exit_code == 1
    assert json.loads(single_error_line(as_json))["exit_code"] == 1


def test_workspace_add_member(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workspace", "add-member", seeded.alpha, "carol"))
    assert out.strip() == f"members of {seeded.alpha}: alice, bob, carol"
    again = ok_json(invoke(seeded.url, "--json", "workspace", "add-member", seeded.alpha, "carol"))
    assert again["members"] == ["alice", "bob", "carol"]  # idempotent
    dave = ok_json(
        invoke(
            seeded.url, "--json", "workspace", "add-member", seeded.alpha, "dave", "--actor", "bob"
        )
    )
    assert dave["members"] == ["alice", "bob", "carol", "dave"]
    unknown = invoke(seeded.url, "workspace", "add-member", "no-such-workspace", "carol")
    assert unknown.exit_code == 5
    assert "no-such-workspace" in single_error_line(unknown)


# -- blackboard ---------------------------------------------------------------------------------


def test_blackboard_list(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "blackboard", "list", seeded.alpha))
    assert sorted(first_column(out)) == ["notes", "spec"]
    spec = row_for(out, "spec")
    assert spec[1:5] == ["2", "plan", "bob", "False"]
    assert spec[5] == '{"goal":"ship it","risks":["load"]}'
    items = ok_json(invoke(seeded.url, "--json", "blackboard", "list", seeded.alpha))
    by_key = {e["artifact_key"]: e for e in items}
    assert set(by_key) == {"spec", "notes"}
    assert by_key["spec"]["version"] == 2
    assert by_key["spec"]["payload"] == {"goal": "ship it", "risks": ["load"]}
    assert by_key["notes"]["payload"] == {"text": "hello"}
    assert by_key["notes"]["workspace_id"] == seeded.alpha
    assert ok_json(invoke(seeded.url, "--json", "blackboard", "list", seeded.beta)) == []


def test_blackboard_get(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "blackboard", "get", seeded.alpha, "spec"))
    head, _, body = out.partition("\n")
    assert head == "spec v2 (plan, bob)"
    assert json.loads(body) == {"goal": "ship it", "risks": ["load"]}
    old = ok(invoke(seeded.url, "blackboard", "get", seeded.alpha, "spec", "--version", "1"))
    head, _, body = old.partition("\n")
    assert head.startswith("spec v1 ") and "alice" in head
    assert json.loads(body) == {"goal": "ship"}
    entry = ok_json(invoke(seeded.url, "--json", "blackboard", "get", seeded.alpha, "spec"))
    assert entry["artifact_key"] == "spec" and entry["version"] == 2
    assert entry["artifact_type"] == "plan" and entry["actor"] == "bob"
    assert entry["payload"] == {"goal": "ship it", "risks": ["load"]}
    v1 = ok_json(
        invoke(seeded.url, "--json", "blackboard", "get", seeded.alpha, "spec", "--version", "1")
    )
    assert v1["version"] == 1 and v1["payload"] == {"goal": "ship"}
    missing = invoke(seeded.url, "blackboard", "get", seeded.alpha, "nope")
    assert missing.exit_code == 5
    assert "nope" in single_error_line(missing)


def test_blackboard_history(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "blackboard", "history", seeded.alpha, "spec"))
    rows = table_rows(out)
    assert [r[:3] for r in rows] == [["1", "create", "alice"], ["2", "update", "bob"]]
    assert rows[0][4] == '{"goal":"ship"}'
    items = ok_json(invoke(seeded.url, "--json", "blackboard", "history", seeded.alpha, "spec"))
    assert [(v["version"], v["operation"], v["actor"]) for v in items] == [
        (1, "create", "alice"),
        (2, "update", "bob"),
    ]
    assert items[1]["payload"] == {"goal": "ship it", "risks": ["load"]}
    missing = invoke(seeded.url, "blackboard", "history", seeded.alpha, "nope")
    assert missing.exit_code == 5
    single_error_line(missing)


def test_blackboard_put(seeded: Seed) -> None:
    out = ok(
        invoke(
            seeded.url,
            "blackboard",
            "put",
            seeded.alpha,
            "spec",
            '{"goal": "ship v3", "risks": [], "owners": {}}',
            "--actor",
            "carol",
            "--expected-version",
            "2",
        )
    )
    assert out.strip() == "spec is now version 3"
    entry = ok_json(
        invoke(
            seeded.url,
            "--json",
            "blackboard",
            "put",
            seeded.alpha,
            "todo",
            "[1, 2, []]",
            "--actor",
            "dave",
            "--type",
            "list",
            "--expected-version",
            "0",
        )
    )
    assert entry["artifact_key"] == "todo" and entry["version"] == 1
    assert entry["payload"] == [1, 2, []] and entry["artifact_type"] == "list"
    assert entry["actor"] == "dave"
    current = ok_json(invoke(seeded.url, "--json", "blackboard", "get", seeded.alpha, "spec"))
    assert current["payload"] == {"goal": "ship v3", "risks": [], "owners": {}}
    assert current["version"] == 3 and current["actor"] == "carol"
    assert current["artifact_type"] == "document"

    stale = invoke(
        seeded.url, "blackboard", "put", seeded.alpha, "spec", "{}", "--actor", "x",
        "--expected-version", "1",
    )  # fmt: skip
    assert stale.exit_code == 1, stale.output
    assert "3" in single_error_line(stale)  # names the current version
    closed = invoke(seeded.url, "blackboard", "put", seeded.beta, "k", "{}", "--actor", "x")
    assert closed.exit_code != 0
    single_error_line(closed)


def test_blackboard_diff(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "blackboard", "diff", seeded.alpha, "spec", "1", "2"))
    assert "spec: v1 → v2" in out
    assert sorted(table_rows(out)) == [
        ["add", "/risks", "null", '["load"]'],
        ["replace", "/goal", '"ship"', '"ship it"'],
    ]
    diff = ok_json(
        invoke(seeded.url, "--json", "blackboard", "diff", seeded.alpha, "spec", "1", "2")
    )
    assert diff["from_version"] == 1 and diff["to_version"] == 2
    assert diff["artifact_key"] == "spec" and diff["workspace_id"] == seeded.alpha
    changes = sorted(diff["changes"], key=lambda c: c["path"])
    assert changes == [
        {"op": "replace", "path": "/goal", "old": "ship", "new": "ship it"},
        {"op": "add", "path": "/risks", "old": None, "new": ["load"]},
    ]
    missing = invoke(seeded.url, "blackboard", "diff", seeded.alpha, "spec", "1", "9")
    assert missing.exit_code != 0
    single_error_line(missing)


# -- events -------------------------------------------------------------------------------------


def _expected(seeded: Seed, pattern: str, n: int) -> list[tuple[int, str]]:
    matcher = EventPattern.parse(pattern)
    matching = [e for e in seeded.events if matcher.matches(e[1])]
    return matching[-n:] if n else []


def test_events_tail_lines(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "events", "tail", "--type", "workspace:*", "-n", "3"))
    lines = out.splitlines()
    assert len(lines) == 3, out
    got = [(int(line.split()[0]), line.split()[2]) for line in lines]
    assert got == _expected(seeded, "workspace:*", 3)
    default = ok(invoke(seeded.url, "events", "tail")).splitlines()
    assert len(default) == 20
    assert [int(line.split()[0]) for line in default] == [p for p, _ in seeded.events[-20:]]
    everything = ok(invoke(seeded.url, "events", "tail", "-n", "1000")).splitlines()
    assert len(everything) == len(seeded.events)
    custom = ok(invoke(seeded.url, "events", "tail", "--type", "custom:*")).splitlines()
    assert [line.split()[2] for line in custom] == ["custom:poison", "custom:ok"]
    assert '{"n":1}' in custom[0]
    assert ok(invoke(seeded.url, "events", "tail", "-n", "0")) == ""


def test_events_tail_json(seeded: Seed) -> None:
    out = ok(
        invoke(seeded.url, "--json", "events", "tail", "--type", "workspace:member:*", "-n", "2")
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["position"], e["event_type"]) for e in events] == _expected(
        seeded, "workspace:member:*", 2
    )
    for event in events:
        assert event["tenant_id"] == TENANT
        assert event["payload"]["workspaceId"] == seeded.alpha
        assert set(event) >= {"event_id", "aggregate_type", "aggregate_id", "metadata"}
        assert set(event) >= {"occurred_at", "recorded_at", "correlation_id", "causation_id"}
    poison = json.loads(
        ok(invoke(seeded.url, "--json", "events", "tail", "--type", "custom:poison"))
    )
    assert poison["position"] == seeded.parked_position and poison["payload"] == {"n": 1}


def test_events_tail_rejects_a_bad_pattern(seeded: Seed) -> None:
    result = invoke(seeded.url, "events", "tail", "--type", "Not A Pattern!")
    assert result.exit_code == 2, result.output
    single_error_line(result)


def test_events_export(seeded: Seed) -> None:
    result = invoke(seeded.url, "events", "export")
    out = ok(result)
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["position"], e["event_type"]) for e in events] == list(seeded.events)
    assert {e["tenant_id"] for e in events} == {TENANT}
    assert f"exported {len(seeded.events)} events" in result.stderr
    custom = invoke(seeded.url, "events", "export", "--type", "custom:*")
    lines = [json.loads(line) for line in ok(custom).splitlines()]
    assert [(e["event_type"], e["payload"]) for e in lines] == [
        ("custom:poison", {"n": 1}),
        ("custom:ok", {"n": 2}),
    ]
    assert "exported 2 events" in custom.stderr


def test_events_tail_follow(seeded: Seed) -> None:
    """``events tail -f`` prints the last events, then new ones as they commit; Ctrl-C exits 0."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "cowork", "--database-url", seeded.url, "--tenant", TENANT),
            *("events", "tail", "--follow", "--type", "custom:*", "-n", "1", "--poll", "0.1"),
        ],
        cwd=ROOT,
        env={**os.environ, **WIDE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=30)
        assert first.split()[2] == "custom:ok"

        async def publish() -> int:
            async with await cowork.open(seeded.url, tenant_id=TENANT, worker=False) as rt:
                event = await rt.events.publish("custom:later", {"n": 3})
                await rt.events.publish("other:ignored", {"n": 4})
            return event.position

        position = asyncio.run(publish())
        followed = lines.get(timeout=30)
        assert followed.split()[:1] + followed.split()[2:3] == [str(position), "custom:later"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        reader.join(timeout=10)
        assert lines.empty()  # other:ignored was filtered out
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- consumers ----------------------------------------------------------------------------------


def test_consumers_list(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "consumers", "list"))
    assert sorted(first_column(out)) == [ENGINE_CONSUMER, PICKY]
    picky = row_for(out, PICKY)
    assert picky[1] == "custom:*" and picky[4] == "1" and picky[5] == ""
    items = ok_json(invoke(seeded.url, "--json", "consumers", "list"))
    by_id = {c["consumer_id"]: c for c in items}
    assert by_id[PICKY]["pattern"] == "custom:*" and by_id[PICKY]["parked"] == 1
    assert by_id[PICKY]["lease_owner"] is None  # the seeding runtime released it on close
    assert by_id[ENGINE_CONSUMER]["pattern"] == "*" and by_id[ENGINE_CONSUMER]["lag"] == 0
    assert by_id[ENGINE_CONSUMER]["last_position"] == seeded.events[-1][0]
    other = ok_json(invoke(seeded.url, "--json", "consumers", "list", tenant=OTHER_TENANT))
    assert PICKY not in {c["consumer_id"] for c in other}


def test_consumers_parked(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "consumers", "parked"))
    assert table_rows(out) == [
        [
            PICKY,
            str(seeded.parked_position),
            "custom:poison",
            "1",
            "parked",
            "RuntimeError: cannot digest poison",
        ]
    ]
    [parked] = ok_json(invoke(seeded.url, "--json", "consumers", "parked", PICKY))
    assert parked["consumer_id"] == PICKY and parked["position"] == seeded.parked_position
    assert parked["event_type"] == "custom:poison" and parked["attempts"] == 1
    assert parked["status"] == "parked" and "cannot digest poison" in parked["last_error"]
    assert parked["event_id"] and parked["parked_at"]
    assert ok_json(invoke(seeded.url, "--json", "consumers", "parked", ENGINE_CONSUMER)) == []


def test_consumers_redrive_and_retry(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "consumers", "redrive", PICKY))
    assert out.strip() == f"1 parked event(s) queued for redelivery to {PICKY}"
    [parked] = ok_json(invoke(seeded.url, "--json", "consumers", "parked", PICKY))
    assert parked["status"] != "parked"  # queued for redelivery
    queued = ok_json(
        invoke(
            seeded.url,
            "--json",
            "consumers",
            "retry",
            PICKY,
            "--position",
            str(seeded.parked_position + 1000),
        )
    )
    assert queued == {"consumer_id": PICKY, "queued": 0}
    unknown = invoke(seeded.url, "consumers", "redrive", "no.such.consumer")
    assert unknown.exit_code == 5
    assert "no.such.consumer" in single_error_line(unknown)


def test_consumers_retry_json(seeded: Seed) -> None:
    queued = ok_json(
        invoke(
            seeded.url,
            "--json",
            "consumers",
            "retry",
            PICKY,
            "--position",
            str(seeded.parked_position),
        )
    )
    assert queued == {"consumer_id": PICKY, "queued": 1}


def test_consumers_reset(seeded: Seed) -> None:
    head = seeded.events[-1][0]
    out = ok(invoke(seeded.url, "consumers", "reset", PICKY, "--to", "beginning", "--yes"))
    assert out.strip() == f"consumer {PICKY} reset to beginning"
    info = asyncio.run(_consumer(seeded.url, PICKY))
    assert info.last_position == 0

    middle = seeded.events[len(seeded.events) // 2][0]
    result = ok_json(
        invoke(seeded.url, "--json", "consumers", "reset", PICKY, "--to", str(middle), "--yes")
    )
    assert result == {"consumer_id": PICKY, "reset_to": str(middle), "pattern": None}
    assert asyncio.run(_consumer(seeded.url, PICKY)).last_position == middle

    ok(
        invoke(
            seeded.url, "consumers", "reset", PICKY, "--to", "now", "--pattern", "order:*", "--yes"
        )
    )
    listed = {
        c["consumer_id"]: c for c in ok_json(invoke(seeded.url, "--json", "consumers", "list"))
    }
    assert listed[PICKY]["last_position"] == head and listed[PICKY]["pattern"] == "order:*"

    negative = invoke(seeded.url, "consumers", "reset", PICKY, "--to", "-5", "--yes")
    assert negative.exit_code == 2, negative.output
    single_error_line(negative)
    beyond = invoke(seeded.url, "consumers", "reset", PICKY, "--to", str(head + 1000), "--yes")
    assert beyond.exit_code == 5, beyond.output
    assert str(head + 1000) in single_error_line(beyond)
    unknown = invoke(seeded.url, "consumers", "reset", "no.such.consumer", "--yes")
    assert unknown.exit_code == 5
    single_error_line(unknown)
    assert asyncio.run(_consumer(seeded.url, PICKY)).last_position == head

    # Without --yes it asks; "n" aborts and changes nothing.
    declined = invoke(seeded.url, "consumers", "reset", PICKY, "--to", "beginning", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert asyncio.run(_consumer(seeded.url, PICKY)).last_position == head
    accepted = invoke(seeded.url, "consumers", "reset", PICKY, "--to", "beginning", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert asyncio.run(_consumer(seeded.url, PICKY)).last_position == 0


# -- workflow -----------------------------------------------------------------------------------


def test_workflow_definitions(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workflow", "definitions"))
    rows = {r[0]: r for r in table_rows(out) if r[0]}
    assert set(rows) == {"workspace-provisioning", "blackboard-entry-review-publish", "cli-orders"}
    assert rows["cli-orders"][1:] == ["1", "", "orderId", "paid → done"]
    assert rows["workspace-provisioning"][2] == "workspace:created"
    items = ok_json(invoke(seeded.url, "--json", "workflow", "definitions"))
    by_id = {d["workflowId"]: d for d in items}
    assert set(by_id) == set(rows)
    orders = by_id["cli-orders"]
    assert orders["version"] == 1 and orders["correlation"] == ["orderId"]
    assert [(s["kind"], s["name"]) for s in orders["steps"]] == [
        ("wait", "paid"),
        ("complete", "done"),
    ]
    assert by_id["blackboard-entry-review-publish"]["trigger"] == "blackboard:entry:created"


def test_workflow_list(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workflow", "list"))
    assert len(table_rows(out)) == 7
    assert row_for(out, seeded.waiting)[1:5] == ["cli-orders v1", "waiting", "paid", '["o-1"]']
    assert row_for(out, seeded.completed)[1:4] == ["cli-orders v1", "completed", "-"]
    assert row_for(out, seeded.provisioning)[1:3] == ["workspace-provisioning v2", "completed"]
    only = ok(
        invoke(seeded.url, "workflow", "list", "--workflow", "cli-orders", "--status", "waiting")
    )
    assert first_column(only) == [seeded.waiting]
    items = ok_json(invoke(seeded.url, "--json", "workflow", "list", "--workflow", "cli-orders"))
    by_id = {i["instance_id"]: i for i in items}
    assert set(by_id) == {seeded.waiting, seeded.completed}
    assert by_id[seeded.waiting]["status"] == "waiting"
    assert by_id[seeded.completed]["status"] == "completed"
    assert by_id[seeded.completed]["ended_at"] is not None
    assert by_id[seeded.waiting]["tenant_id"] == TENANT
    limited = ok_json(invoke(seeded.url, "--json", "workflow", "list", "--limit", "2"))
    assert len(limited) == 2
    other = ok_json(invoke(seeded.url, "--json", "workflow", "list", tenant=OTHER_TENANT))
    assert not {i["instance_id"] for i in other} & {seeded.waiting, seeded.completed}
    assert {i["tenant_id"] for i in other} <= {OTHER_TENANT}


def test_workflow_show(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workflow", "show", seeded.waiting))
    assert row_for(out, seeded.waiting)[1:4] == ["cli-orders v1", "waiting", "paid"]
    state = json.loads(out[out.index("└") :].split("\n", 1)[1])
    assert state["input"] == {"orderId": "o-1"}
    item = ok_json(invoke(seeded.url, "--json", "workflow", "show", seeded.waiting))
    assert item["instance_id"] == seeded.waiting and item["status"] == "waiting"
    assert item["workflow_id"] == "cli-orders" and item["workflow_version"] == 1
    assert item["step_index"] == 0 and item["state"]["input"] == {"orderId": "o-1"}
    assert item["tenant_id"] == TENANT and item["ended_at"] is None


def test_workflow_history(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workflow", "history", seeded.completed))
    rows = table_rows(out)
    assert [r[0] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
    assert rows[0][1:4] == ["started", "", "running"]
    assert rows[1][1:3] == ["step_completed", "paid"] and rows[1][4]  # caused by an event
    assert rows[-1][1:4] == ["completed", "", "completed"]
    items = ok_json(invoke(seeded.url, "--json", "workflow", "history", seeded.completed))
    assert [h["seq"] for h in items] == list(range(1, len(items) + 1))
    assert items[0]["kind"] == "started" and items[-1]["kind"] == "completed"
    paid = [h for h in items if h["step_name"] == "paid"]
    assert len(paid) == 1 and paid[0]["event_id"] == rows[1][4]
    provisioning = ok_json(invoke(seeded.url, "--json", "workflow", "history", seeded.provisioning))
    assert [h["step_name"] for h in provisioning if h["kind"] == "step_completed"] == [
        "created",
        "member-added",
        "artifact-updated",
    ]


def test_workflow_cancel(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "workflow", "cancel", seeded.waiting, "--reason", "test"))
    assert out.strip() == f"instance {seeded.waiting} is cancelled"
    shown = ok_json(invoke(seeded.url, "--json", "workflow", "show", seeded.waiting))
    assert shown["status"] == "cancelled" and shown["ended_at"] is not None
    history = ok_json(invoke(seeded.url, "--json", "workflow", "history", seeded.waiting))
    assert history[-1]["to_status"] == "cancelled"
    again = invoke(seeded.url, "workflow", "cancel", seeded.waiting)
    assert again.exit_code == 1
    assert "cancelled" in single_error_line(again)


def test_workflow_cancel_json(seeded: Seed) -> None:
    item = ok_json(
        invoke(seeded.url, "--json", "workflow", "cancel", seeded.waiting, "--actor", "ops")
    )
    assert item["instance_id"] == seeded.waiting and item["status"] == "cancelled"
    history = ok_json(invoke(seeded.url, "--json", "workflow", "history", seeded.waiting))
    assert history[-1]["actor"] == "ops"
    unknown = invoke(seeded.url, "--json", "workflow", "cancel", "no-such-instance")
    assert unknown.exit_code == 5
    assert json.loads(single_error_line(unknown)) == {
        "error": "no workflow instance 'no-such-instance'",
        "exit_code": 5,
    }
