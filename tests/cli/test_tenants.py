"""``cowork tenants`` lists the tenants with what they hold, and ``cowork demo`` says
which tenant it used, how to inspect it, and reuses one with ``--tenant``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.cli.support import OTHER_TENANT, TENANT, Seed, invoke, ok, ok_json, run_cowork
from tests.cli.test_demo import check_demo_output, clean_env
from tests.cli.test_inspection import row_for, table_rows


def test_tenants_json(seeded: Seed) -> None:
    items = ok_json(invoke(seeded.url, "--json", "tenants"))
    assert [t["tenant_id"] for t in items] == [TENANT, OTHER_TENANT]
    acme, zeta = items
    # alpha (active), beta (closed), gone (deleted): `workspace list` shows two.
    assert acme["workspaces"] == 2
    assert acme["workspaces_by_status"] == {"active": 1, "closed": 1, "deleted": 1}
    assert acme["events"] == len(seeded.events)
    assert acme["workflow_instances"] == 7
    assert acme["workflow_instances_by_status"] == {"completed": 2, "waiting": 5}
    assert acme["consumers"] == 2 and acme["parked_events"] == 1
    assert zeta["workspaces"] == 1 and zeta["workspaces_by_status"] == {"active": 1}
    assert zeta["events"] >= 1 and zeta["parked_events"] == 0
    # The same whichever tenant the command acts for.
    assert ok_json(invoke(seeded.url, "--json", "tenants", tenant=OTHER_TENANT)) == items


def test_tenants_table(seeded: Seed) -> None:
    out = ok(invoke(seeded.url, "tenants"))
    assert [r[0] for r in table_rows(out)] == [TENANT, OTHER_TENANT]
    # tenant, workspaces, events, workflow instances, active (running + waiting), consumers,
    # parked
    assert row_for(out, TENANT) == [TENANT, "2", str(len(seeded.events)), "7", "5", "2", "1"]
    assert row_for(out, OTHER_TENANT)[1] == "1"


def test_tenants_of_an_empty_database(sqlite_url: str) -> None:
    result = run_cowork(["--database-url", sqlite_url, "tenants", "--json"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _demo(tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cowork", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, COLUMNS="250"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def _inspection_commands(out: str, tenant: str) -> list[list[str]]:
    """The commands the demo printed at its end."""
    section = out.split(f"the demo used tenant {tenant}; inspect it with:", 1)[1]
    return [shlex.split(line) for line in section.splitlines() if line.startswith("  cowork ")]


def test_demo_names_its_tenant_and_reuses_it(tmp_path: Path) -> None:
    first = _demo(tmp_path, "demo")
    tenant = check_demo_output(first)
    commands = _inspection_commands(first, tenant)
    assert [c[:3] for c in commands] == [["cowork", "--tenant", tenant]] * len(commands)
    by_action = {" ".join(c[3:5]): c for c in commands}
    assert {"workspace show", "blackboard list", "events tail", "workflow list", "tenants"} <= set(
        by_action
    )
    workspace_id = by_action["workspace show"][5]
    assert re.search(rf"workspace {workspace_id} created by alice", " ".join(first.split()))

    # The printed commands work as they are (here through `python -m cowork`).
    env = clean_env(tmp_path, COLUMNS="250")
    for command in commands:
        if command[-1] == "demo":
            continue
        result = subprocess.run(
            [sys.executable, "-m", "cowork", *command[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (command, result.stderr)
        if command[3:5] == ["workspace", "show"]:
            assert workspace_id in result.stdout and "Launch plan" in result.stdout

    # The last one runs the demo again in the same tenant; --tenant also follows `demo`.
    assert commands[-1] == ["cowork", "--tenant", tenant, "demo"]
    second = _demo(tmp_path, "demo", "--tenant", tenant)
    assert check_demo_output(second) == tenant  # the report shows this run only
    assert f"the demo used tenant {tenant}; inspect it with:" in second
    listed = subprocess.run(
        [sys.executable, "-m", "cowork", "--tenant", tenant, "--json", "workspace", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(json.loads(listed.stdout)) == 2  # one workspace per run, in one tenant
    tenants = subprocess.run(
        [sys.executable, "-m", "cowork", "tenants", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [t["tenant_id"] for t in json.loads(tenants.stdout)] == [tenant]
