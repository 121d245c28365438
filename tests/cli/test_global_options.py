"""``--json``, ``--tenant`` and ``--database-url`` (and ``--config``) work before or
after the subcommand, through the real ``cowork`` process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

import cowork
from cowork.cli.app import COMMANDS, cli
from tests.cli.support import ROOT, run_cowork

TENANTS = ("acme", "zeta")


async def _two_tenants(url: str) -> dict[str, str]:
    """One workspace in each of two tenants; tenant -> workspace id."""
    found = {}
    async with await cowork.open(url, tenant_id="acme", worker=False) as rt:
        for tenant in TENANTS:
            ws = await rt.for_tenant(tenant).workspaces.create(name=f"{tenant} ws", actor="alice")
            found[tenant] = ws.workspace_id
    return found


@pytest.fixture
def two_tenants(database_url: str) -> dict[str, str]:
    return asyncio.run(_two_tenants(database_url))


def listed(*args: str) -> list[str]:
    """The workspace ids ``cowork ARGS`` prints as JSON."""
    result = run_cowork(args, timeout=60)
    assert result.returncode == 0, result.stderr
    return [w["workspace_id"] for w in json.loads(result.stdout)]


def test_options_before_and_after_the_subcommand(
    database_url: str, two_tenants: dict[str, str]
) -> None:
    url, acme = database_url, [two_tenants["acme"]]
    assert listed("--database-url", url, "--tenant", "acme", "--json", "workspace", "list") == acme
    assert listed("workspace", "list", "--json", "--tenant", "acme", "--database-url", url) == acme
    assert listed("--json", "workspace", "list", "--database-url", url, "--tenant", "acme") == acme
    # Between the group and its command, too.
    assert listed("--database-url", url, "workspace", "--tenant", "acme", "list", "--json") == acme
    zeta = listed("--database-url", url, "workspace", "list", "--tenant", "zeta", "--json")
    assert zeta == [two_tenants["zeta"]]
    # The value given last wins.
    last = listed(
        "--tenant", "zeta", "--json", "--database-url", url, "workspace", "list", "--tenant", "acme"
    )
    assert last == acme


def test_json_after_the_subcommand_switches_the_output(
    database_url: str, two_tenants: dict[str, str]
) -> None:
    args = ("--database-url", database_url, "--tenant", "acme", "workspace", "show")
    table = run_cowork([*args, two_tenants["acme"]], timeout=60)
    assert table.returncode == 0 and "┃" in table.stdout  # a rich table, not JSON
    shown = run_cowork([*args, two_tenants["acme"], "--json"], timeout=60)
    assert json.loads(shown.stdout)["workspace_id"] == two_tenants["acme"]
    # Errors follow the same switch: one JSON object on stderr.
    missing = run_cowork([*args, "no-such-ws", "--json"], timeout=60)
    assert missing.returncode == 5
    assert json.loads(missing.stderr)["exit_code"] == 5


def test_every_command_accepts_the_global_options_after_it() -> None:
    def leaves(command: click.Command | None, path: str) -> list[tuple[str, click.Command]]:
        assert command is not None
        if isinstance(command, click.Group):
            return [
                leaf
                for name, sub in command.commands.items()
                for leaf in leaves(sub, f"{path} {name}")
            ]
        return [(path, command)]

    context = click.Context(cli, info_name="cowork")
    for name in COMMANDS:
        for path, command in leaves(cli.get_command(context, name), name):
            options = {o for p in command.params for o in p.opts}
            assert {"--database-url", "--config", "--tenant", "--json"} <= options, path


def _served(tmp_path: Path, *args: str) -> str:
    """Run ``cowork ARGS`` (a worker), give it time to discover tenants, SIGTERM it; stderr."""
    log = tmp_path / f"worker-{time.monotonic_ns()}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cowork", *args],
            cwd=ROOT,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker ready" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(1.5)  # several discovery rounds (--discover-interval 0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text()


@pytest.mark.parametrize("position", ["before", "after"])
def test_worker_tenant_before_or_after(
    sqlite_url: str, two_tenants_sqlite: None, tmp_path: Path, position: str
) -> None:
    worker = ["worker", "--log-level", "INFO", "--discover-interval", "0.1"]
    tenant = ["--tenant", "acme"]
    args = (
        ["--database-url", sqlite_url, *tenant, *worker]
        if position == "before"
        else ["--database-url", sqlite_url, *worker, *tenant]
    )
    log = _served(tmp_path, *args)
    assert "serving tenant acme" in log
    assert "serving tenant zeta" not in log


def test_worker_without_tenant_serves_every_tenant(
    sqlite_url: str, two_tenants_sqlite: None, tmp_path: Path
) -> None:
    """The control for the test above: discovery would have found zeta."""
    args = ["--database-url", sqlite_url, "worker", "--log-level", "INFO"]
    log = _served(tmp_path, *args, "--discover-interval", "0.1")
    assert "serving tenant acme" in log and "serving tenant zeta" in log


@pytest.fixture
def two_tenants_sqlite(sqlite_url: str) -> None:
    asyncio.run(_two_tenants(sqlite_url))
