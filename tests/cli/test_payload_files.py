"""JSON payloads from a file (``@FILE``) or standard input (``-``).

The large payloads here are over 200 KiB: more than Linux takes in one command-line argument
(128 KiB), so they could not be given inline at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cowork
from tests.cli.support import ROOT, WIDE

BIG = 200 * 1024
TENANT = "acme"
# The event payload limit is a setting (64 KiB by default): raised here for the big event.
ROOMY_EVENTS = {"COWORK_EVENT_MAX_BYTES": str(1024 * 1024)}


def big_document() -> dict[str, Any]:
    """Plain JSON over 200 KiB: short, harmless strings (nothing the event sanitiser masks)."""
    document = {"title": "big", "lines": [f"line {i} of the plan" for i in range(12_000)]}
    assert len(json.dumps(document)) > BIG
    return document


def cowork_cli(
    url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``cowork --database-url URL --tenant acme ARGS`` as a real process, fed ``stdin``."""
    return subprocess.run(
        [sys.executable, "-m", "cowork", "--database-url", url, "--tenant", TENANT, *args],
        cwd=ROOT,
        env={**os.environ, **WIDE, **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


async def _workspace(url: str) -> str:
    async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
        ws = await rt.workspaces.create(name="Payloads", actor="alice")
    return ws.workspace_id


@pytest.fixture
def workspace(database_url: str) -> str:
    return asyncio.run(_workspace(database_url))


def test_blackboard_put_from_a_file_and_from_stdin(
    database_url: str, workspace: str, tmp_path: Path
) -> None:
    document = big_document()
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    put = ("--json", "blackboard", "put", workspace, "spec")
    first = ok_json(cowork_cli(database_url, *put, f"@{path}", "--actor", "alice"))
    assert first["version"] == 1 and first["payload"] == document

    changed = {**document, "title": "bigger"}
    second = ok_json(
        cowork_cli(database_url, *put, "-", "--actor", "bob", stdin=json.dumps(changed))
    )
    assert second["version"] == 2 and second["actor"] == "bob"

    stored = ok_json(cowork_cli(database_url, "--json", "blackboard", "get", workspace, "spec"))
    assert stored["payload"] == changed
    old = cowork_cli(
        database_url, "--json", "blackboard", "get", workspace, "spec", "--version", "1"
    )
    assert ok_json(old)["payload"] == document


def test_events_publish_from_stdin_and_from_a_file(database_url: str, tmp_path: Path) -> None:
    small = ok_json(
        cowork_cli(
            database_url, "--json", "events", "publish", "order:placed", "-", stdin='{"n": 1}'
        )
    )
    assert small["event_type"] == "order:placed" and small["payload"] == {"n": 1}

    document = big_document()
    path = tmp_path / "event.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    big = cowork_cli(
        database_url, "--json", "events", "publish", "order:big", f"@{path}", env=ROOMY_EVENTS
    )
    assert ok_json(big)["position"] > small["position"]
    tail = cowork_cli(database_url, "--json", "events", "tail", "-n", "1")
    assert tail.returncode == 0, tail.stderr
    assert json.loads(tail.stdout)["payload"] == document

    # Over the (default) event limit: one line that names the limit and what to do.
    refused = cowork_cli(database_url, "events", "publish", "order:big", f"@{path}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "limit" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_events_publish_inline_with_options(sqlite_url: str) -> None:
    event = ok_json(
        cowork_cli(
            sqlite_url,
            *("--json", "events", "publish", "order:placed", '{"orderId": "o-1"}'),
            *("--aggregate-type", "order", "--aggregate-id", "o-1", "--event-id", "evt-1"),
        )
    )
    assert event["aggregate_type"] == "order" and event["aggregate_id"] == "o-1"
    assert event["event_id"] == "evt-1" and event["payload"] == {"orderId": "o-1"}
    # The same id again is the stored event (idempotent), not a second one.
    again = ok_json(
        cowork_cli(
            sqlite_url, "--json", "events", "publish", "order:placed", "{}", "--event-id", "evt-1"
        )
    )
    assert again["position"] == event["position"] and again["payload"] == {"orderId": "o-1"}
    plain = cowork_cli(sqlite_url, "events", "publish", "order:shipped")
    assert plain.returncode == 0 and "published order:shipped at position" in plain.stdout


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("@{missing}", "cannot read PAYLOAD from {missing}"),
        ("@{bad}", "PAYLOAD from @{bad} is not JSON"),
        ("@", "give a file name after @"),
        ("-", "PAYLOAD from standard input is not JSON"),
        ("{not json", "PAYLOAD is not JSON"),
    ],
    ids=["missing-file", "file-not-json", "no-file-name", "stdin-not-json", "inline-not-json"],
)
def test_payload_mistakes_are_usage_errors(
    sqlite_url: str, tmp_path: Path, payload: str, message: str
) -> None:
    names = {"missing": str(tmp_path / "missing.json"), "bad": str(tmp_path / "bad.json")}
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    argument, expected = payload, message
    for name, value in names.items():
        argument, expected = (t.replace(f"{{{name}}}", value) for t in (argument, expected))
    for command in (("blackboard", "put", "ws", "k", argument, "--actor", "a"),
                    ("events", "publish", "order:placed", argument)):  # fmt: skip
        result = cowork_cli(sqlite_url, *command, stdin="{not json" if payload == "-" else None)
        assert expected in usage_error(result), command


def test_events_publish_needs_an_object(sqlite_url: str) -> None:
    assert "must be a JSON object" in usage_error(
        cowork_cli(sqlite_url, "events", "publish", "order:placed", "[1, 2]")
    )
