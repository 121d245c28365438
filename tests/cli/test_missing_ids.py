"""Every command that names a workspace, consumer or workflow instance exits 5 (not
found) with a one-line message when it does not exist, instead of an empty table and exit 0.

Each case runs ``python -m cowork`` as a real process on a database that holds a workspace, a
durable consumer and an instance, so only the named id is missing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

import cowork
from tests.cli.support import run_cowork

TENANT = "acme"
MISSING = "no-such-id"

WORKSPACE_COMMANDS = [
    ["workspace", "show", MISSING],
    ["workspace", "open", MISSING],
    ["workspace", "close", MISSING],
    ["workspace", "archive", MISSING],
    ["workspace", "delete", MISSING, "--yes"],
    ["workspace", "add-member", MISSING, "carol"],
    ["workspace", "remove-member", MISSING, "carol"],
    ["blackboard", "list", MISSING],
    ["blackboard", "get", MISSING, "spec"],
    ["blackboard", "history", MISSING, "spec"],
    ["blackboard", "put", MISSING, "spec", "{}", "--actor", "alice"],
    ["blackboard", "diff", MISSING, "spec", "1", "2"],
]
CONSUMER_COMMANDS = [
    ["consumers", "parked", MISSING],
    ["consumers", "redrive", MISSING],
    ["consumers", "retry", MISSING],
    ["consumers", "reset", MISSING, "--yes"],
]
INSTANCE_COMMANDS = [
    ["workflow", "show", MISSING],
    ["workflow", "history", MISSING],
    ["workflow", "cancel", MISSING],
]


async def _populate(url: str) -> None:
    """A workspace with an artifact and a durable consumer with a parked event."""
    async with await cowork.open(url, tenant_id=TENANT, worker=True) as rt:
        ws = await rt.workspaces.create(name="Here", actor="alice")
        await rt.blackboard.put(ws.workspace_id, "spec", {"v": 1}, actor="alice")

        def refuse(event: cowork.EventEnvelope) -> None:
            raise RuntimeError("no")

        await rt.events.subscribe("probe:*", refuse, consumer_id="probe", max_attempts=1)
        await rt.events.publish("probe:one", {})
        for _ in range(600):
            if await rt.consumers.parked("probe"):
                break
            await asyncio.sleep(0.05)


@pytest.fixture
def populated(database_url: str) -> str:
    asyncio.run(_populate(database_url))
    return database_url


def not_found(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 5, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def cowork_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cowork(["--database-url", url, "--tenant", TENANT, *args], timeout=60)


@pytest.mark.parametrize("command", WORKSPACE_COMMANDS, ids=" ".join)
def test_missing_workspace(sqlite_populated: str, command: list[str]) -> None:
    line = not_found(cowork_cli(sqlite_populated, *command))
    assert line.startswith(f"error: no workspace {MISSING!r} in tenant {TENANT!r}")
    assert "cowork workspace list --all" in line  # says how to find the right id


@pytest.mark.parametrize("command", CONSUMER_COMMANDS, ids=" ".join)
def test_missing_consumer(sqlite_populated: str, command: list[str]) -> None:
    line = not_found(cowork_cli(sqlite_populated, *command))
    assert line.startswith(f"error: no consumer {MISSING!r} in tenant {TENANT!r}")
    assert "cowork consumers list" in line


@pytest.mark.parametrize("command", INSTANCE_COMMANDS, ids=" ".join)
def test_missing_workflow_instance(sqlite_populated: str, command: list[str]) -> None:
    assert not_found(cowork_cli(sqlite_populated, *command)) == (
        f"error: no workflow instance {MISSING!r}"
    )


def test_former_empty_tables_on_both_backends(populated: str) -> None:
    """The two commands that printed an empty table and exited 0, on SQLite and PostgreSQL,
    as tables and as JSON; the ids that exist still list their rows."""
    for command in (["blackboard", "list", MISSING], ["consumers", "parked", MISSING]):
        not_found(cowork_cli(populated, *command))
        error = json.loads(not_found(cowork_cli(populated, "--json", *command)))
        assert error["exit_code"] == 5 and MISSING in error["error"]
    listed = cowork_cli(populated, "--json", "workspace", "list")
    [workspace] = json.loads(listed.stdout)
    artifacts = cowork_cli(populated, "--json", "blackboard", "list", workspace["workspace_id"])
    assert [a["artifact_key"] for a in json.loads(artifacts.stdout)] == ["spec"]
    parked = cowork_cli(populated, "--json", "consumers", "parked", "probe")
    assert [p["event_type"] for p in json.loads(parked.stdout)] == ["probe:one"]
    # A workspace of another tenant does not exist for this one.
    other = run_cowork(
        ["--database-url", populated, "--tenant", "zeta", "blackboard", "list",
         workspace["workspace_id"]],
        timeout=60,
    )  # fmt: skip
    assert "in tenant 'zeta'" in not_found(other)


@pytest.fixture(scope="module")
def sqlite_populated(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite database for every case (they only read it, or fail before writing)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('missing-ids') / 'populated.db'}"
    asyncio.run(_populate(url))
    return url
