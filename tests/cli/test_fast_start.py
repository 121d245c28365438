"""``cowork --help`` and the inspection of a command's usage start fast.

No timing is asserted (the machine may be busy); instead each case runs the ``cowork`` entry
point in a fresh interpreter and checks which modules it imported: a subcommand's module and the
heavy libraries (the drivers, pydantic, rich, the runtime) load only when a command runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cowork.cli.app import COMMANDS, cli
from tests.cli.support import ROOT

# Loaded only when a command runs: each costs tens of milliseconds at start-up.
HEAVY = (
    "psycopg",
    "psycopg_pool",
    "pydantic",
    "pydantic_settings",
    "rich",
    "yaml",
    "sqlite3",
    "asyncio",
    "cowork.runtime",
    "cowork.config",
    "cowork.storage",
    "cowork.events",
    "cowork.workflows",
)

COWORK = Path(sys.executable).with_name("cowork")  # the installed console script

# Runs the console script as `cowork ARGS` would, then prints the imported modules' names.
PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def imported_by(*args: str) -> set[str]:
    """The modules the real ``cowork ARGS`` imports (it must exit 0)."""
    assert COWORK.is_file(), f"no cowork executable beside {sys.executable}"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(COWORK), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stderr.rsplit("MODULES ", 1)[1]
    modules = set(json.loads(report))
    assert "cowork.cli.app" in modules  # the probe sees the CLI's own imports
    return modules


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-h"]], ids=" ".join)
def test_top_level_help_imports_no_subcommand_and_nothing_heavy(args: list[str]) -> None:
    modules = imported_by(*args)
    assert heavy_among(modules) == []
    loaded = sorted(m for m in modules if m.startswith("cowork.cli.") and m != "cowork.cli.app")
    assert loaded == ["cowork.cli.context", "cowork.cli.exit_codes"]


@pytest.mark.parametrize(
    "args",
    [
        *([name, "--help"] for name in COMMANDS),
        ["workspace", "list", "--help"],
        ["events", "tail", "--help"],
        ["blackboard", "put", "--help"],
    ],
    ids=" ".join,
)
def test_a_command_s_help_loads_only_that_command(args: list[str]) -> None:
    modules = imported_by(*args)
    for heavy in ("psycopg", "pydantic", "pydantic_settings", "rich", "cowork.runtime"):
        assert heavy not in modules, f"`cowork {' '.join(args)}` imported {heavy}"
    commands = {m.rsplit(".", 1)[1] for m in modules if m.startswith("cowork.cli.")}
    others = {target.split(":")[0].rsplit(".", 1)[1] for target, _ in COMMANDS.values()}
    assert commands & others == {COMMANDS[args[0]][0].split(":")[0].rsplit(".", 1)[1]}


def test_help_lists_every_command_with_its_own_summary() -> None:
    """The summaries `cowork --help` shows without importing match each command's help."""
    context = click.Context(cli, info_name="cowork")
    for name, (_, summary) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(500) == summary, name
    listed = subprocess.run(
        [sys.executable, "-m", "cowork", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line.split(None, 1) for line in listed.split("Commands:", 1)[1].splitlines()]
    shown = {row[0]: row[1] for row in rows if len(row) == 2}
    assert set(shown) == set(COMMANDS)
    for name, text in shown.items():  # click shortens a long summary with "..."
        assert COMMANDS[name][1].startswith(text.removesuffix("...")), (name, text)


def test_an_inspection_command_loads_only_the_services_it_uses(tmp_path: Path) -> None:
    """`cowork workspace list` opens a runtime without a worker: it loads the workspaces
    service and nothing of the workflow engine, the blackboard, snapshots or the PostgreSQL
    driver (each costs milliseconds at every call; with bytecode cached the whole command took
    0.24-0.30 s here, from 0.28-0.31 s when the runtime imported every service)."""
    url = f"sqlite:///{tmp_path / 'cowork.db'}"
    modules = imported_by("--database-url", url, "workspace", "list")
    assert "cowork.workspaces.service" in modules
    for unused in (
        "cowork.workflows",
        "cowork.blackboard",
        "cowork.snapshots",
        "psycopg",
        "yaml",
    ):
        assert unused not in modules, f"`cowork workspace list` imported {unused}"
