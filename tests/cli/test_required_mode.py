"""Required mode through the installed ``cowork`` executable: an in-memory database is refused
by every command when persistence is required, and the message names what required it (the
environment variable, the config file, or the command itself) — never a cause that is not set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.executable import run_cowork

IN_MEMORY = ["memory://", "sqlite://", "sqlite:///:memory:"]
COMMANDS = [
    ["status"],
    ["migrate"],
    ["migrate", "--check"],
    ["workspace", "list"],
    ["events", "tail"],
    ["consumers", "list"],
    ["workflow", "list"],
    ["worker"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_required_by_the_environment_refuses_memory_in_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    result = run_cowork(
        ["--database-url", "memory://", *command], tmp_path, COWORK_PERSISTENCE_REQUIRED="true"
    )
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert "persistence is required (" in result.stderr
    assert "memory:// is an in-memory database" in result.stderr
    if command[0] in ("status", "migrate"):  # they read the settings as given
        assert "(COWORK_PERSISTENCE_REQUIRED is true)" in result.stderr
        assert "or set COWORK_PERSISTENCE_REQUIRED to false" in result.stderr


@pytest.mark.parametrize("url", IN_MEMORY)
def test_every_in_memory_form_is_refused(tmp_path: Path, url: str) -> None:
    result = run_cowork(
        ["--database-url", url, "status"], tmp_path, COWORK_PERSISTENCE_REQUIRED="1"
    )
    assert result.returncode == 6, result.stderr
    assert f"{url} is an in-memory database" in result.stderr


def test_required_by_a_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "cowork.toml"
    config.write_text("persistence_required = true\n", encoding="utf-8")
    result = run_cowork(
        ["--config", str(config), "--database-url", "memory://", "migrate"], tmp_path
    )
    assert result.returncode == 6, result.stderr
    assert f"persistence_required is true in config file {config}" in result.stderr
    assert "COWORK_PERSISTENCE_REQUIRED" not in result.stderr


def test_a_command_that_requires_it_itself_says_so_not_the_variable(tmp_path: Path) -> None:
    result = run_cowork(["--database-url", "memory://", "workspace", "list"], tmp_path)
    assert result.returncode == 6, result.stderr
    assert "COWORK_PERSISTENCE_REQUIRED" not in result.stderr
    assert "the caller passed required=True" in result.stderr


def test_not_required_status_and_migrate_accept_memory(tmp_path: Path) -> None:
    status = run_cowork(["--json", "--database-url", "memory://", "status"], tmp_path)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert (info["durable"], info["persistence_required"]) == (False, False)
    migrate = run_cowork(["--database-url", "memory://", "migrate"], tmp_path)
    assert migrate.returncode == 0, migrate.stderr
