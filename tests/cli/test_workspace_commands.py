"""``cowork workspace delete`` asks before deleting (``--yes`` skips the question; without a
terminal to ask on it refuses); ``remove-member``, ``update`` and a reason on ``close``."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import time
from typing import Any

import pytest

import cowork
from tests.cli.support import ROOT, WIDE, run_cowork

TENANT = "acme"


async def _workspace(url: str) -> str:
    async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
        ws = await rt.workspaces.create(name="Doomed", actor="alice", members=["alice", "bob"])
    return ws.workspace_id


@pytest.fixture
def workspace(database_url: str) -> str:
    return asyncio.run(_workspace(database_url))


def cowork_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """With standard input closed (not a terminal), as in a script."""
    return run_cowork(["--database-url", url, "--tenant", TENANT, *args], timeout=60)


def status(url: str, workspace_id: str) -> str:
    shown = cowork_cli(url, "--json", "workspace", "show", workspace_id)
    assert shown.returncode == 0, shown.stderr
    value: str = json.loads(shown.stdout)["status"]
    return value


def on_a_terminal(url: str, answer: str, *args: str) -> tuple[int, str]:
    """Run ``cowork ARGS`` with a pseudo-terminal as standard input, answer the question once
    it is asked; (exit code, what it wrote on stderr)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cowork", "--database-url", url, "--tenant", TENANT, *args],
        cwd=ROOT,
        env={**os.environ, **WIDE},
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        asked = ""
        deadline = time.monotonic() + 60
        while "[y/N]" not in asked:
            assert time.monotonic() < deadline and process.poll() is None, asked
            asked += os.read(process.stderr.fileno(), 1024).decode()
        os.write(controller, answer.encode() + b"\n")
        code = process.wait(timeout=60)
        return code, asked + process.stderr.read()
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_delete_without_a_terminal_refuses(database_url: str, workspace: str) -> None:
    result = cowork_cli(database_url, "workspace", "delete", workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: not deleting workspace {workspace} ('Doomed', active)")
    assert "pass --yes" in line
    as_json = cowork_cli(database_url, "--json", "workspace", "delete", workspace)
    assert as_json.returncode == 2 and as_json.stdout == ""
    assert "pass --yes" in json.loads(as_json.stderr)["error"]
    assert status(database_url, workspace) == "active"


def test_delete_with_yes(database_url: str, workspace: str) -> None:
    result = cowork_cli(database_url, "workspace", "delete", workspace, "--yes", "--actor", "ops")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"workspace {workspace} is deleted"
    assert status(database_url, workspace) == "deleted"


def test_delete_asks_on_a_terminal(sqlite_url: str) -> None:
    workspace = asyncio.run(_workspace(sqlite_url))
    code, stderr = on_a_terminal(sqlite_url, "n", "workspace", "delete", workspace)
    assert code == 1 and "Aborted" in stderr
    assert f"delete workspace {workspace} ('Doomed', active)?" in stderr
    assert status(sqlite_url, workspace) == "active"

    code, stderr = on_a_terminal(sqlite_url, "y", "workspace", "delete", workspace)
    assert code == 0, stderr
    assert status(sqlite_url, workspace) == "deleted"


def test_remove_member(database_url: str, workspace: str) -> None:
    out = cowork_cli(
        database_url, "workspace", "remove-member", workspace, "bob", "--actor", "alice"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"members of {workspace}: alice"
    again = cowork_cli(database_url, "--json", "workspace", "remove-member", workspace, "bob")
    assert json.loads(again.stdout)["members"] == ["alice"]  # idempotent
    last = cowork_cli(database_url, "workspace", "remove-member", workspace, "alice")
    assert last.stdout.strip() == f"members of {workspace}: none"
    # Mirrors add-member: the member comes back.
    back = cowork_cli(database_url, "--json", "workspace", "add-member", workspace, "bob")
    assert json.loads(back.stdout)["members"] == ["bob"]
    # One workspace:member:removed event per actual removal (the repeat changed nothing).
    tail = cowork_cli(
        database_url, "--json", "events", "tail", "--type", "workspace:member:removed"
    )
    removed = [json.loads(line)["payload"] for line in tail.stdout.splitlines()]
    assert [(p["memberId"], p["actorId"]) for p in removed] == [("bob", "alice"), ("alice", None)]


def test_update_and_close_with_a_reason(database_url: str, workspace: str, tmp_path: Any) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"team": "launch"}), encoding="utf-8")
    out = cowork_cli(
        database_url,
        "--json",
        "workspace",
        "update",
        workspace,
        "--name",
        "Renamed",
        "--project",
        "p7",
        "--metadata",
        f"@{meta}",
        "--actor",
        "alice",
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["name"], shown["project_id"], shown["metadata"]) == (
        "Renamed",
        "p7",
        {"team": "launch"},
    )
    cleared = cowork_cli(database_url, "--json", "workspace", "update", workspace, "--project", "")
    assert json.loads(cleared.stdout)["project_id"] is None
    nothing = cowork_cli(database_url, "workspace", "update", workspace)
    assert nothing.returncode == 2 and "--name" in nothing.stderr
    missing = cowork_cli(database_url, "workspace", "update", "no-such-ws", "--name", "x")
    assert missing.returncode == 5, missing.stderr
    closed = cowork_cli(database_url, "workspace", "close", workspace, "--reason", "shipped")
    assert closed.returncode == 0, closed.stderr
    tail = cowork_cli(database_url, "--json", "events", "tail", "--type", "workspace:closed")
    [event] = [json.loads(line) for line in tail.stdout.splitlines()]
    assert event["payload"]["reason"] == "shipped"
    updates = cowork_cli(database_url, "--json", "events", "tail", "--type", "workspace:updated")
    changes = [json.loads(line)["payload"]["changes"] for line in updates.stdout.splitlines()]
    assert changes == [
        {
            "name": {"from": "Doomed", "to": "Renamed"},
            "projectId": {"from": None, "to": "p7"},
            "metadata": {"from": {}, "to": {"team": "launch"}},
        },
        {"projectId": {"from": "p7", "to": None}},
    ]
