"""A user mistake exits non-zero with a one-line message, no traceback.

Every case runs ``python -m cowork`` as a real process (with ``HOME`` and ``COWORK_DATA_DIR`` in
the test's temporary directory, so no default database outside it is touched). Exit codes are
the documented ones: 2 usage, 3 database unreachable, 5 not found, 6 configuration.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.support import run_cowork

PASSWORD = "s3cr3t-pw-never-shown"
UNREACHABLE = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/nowhere"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cowork_cli(tmp_path: Path) -> Run:
    env = {"HOME": str(tmp_path / "home"), "COWORK_DATA_DIR": str(tmp_path / "data")}

    def run(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cowork(args, env={**env, **(extra_env or {})}, timeout=60)

    return run


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single non-empty stderr line of a CoworkError exit (and no traceback anywhere)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    return lines[0]


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    """click's usage error: exit 2, ``Error: …`` on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_unreachable_database_names_the_host_and_hides_the_password(cowork_cli: Run) -> None:
    line = one_line(cowork_cli("--database-url", UNREACHABLE, "workspace", "list"), 3)
    assert line.startswith("error: ")
    assert "127.0.0.1" in line
    assert PASSWORD not in line


@pytest.mark.parametrize(
    "command",
    [
        ["workflow", "list"],
        ["events", "tail"],
        ["migrate", "--check"],
        ["migrate"],
        ["worker", "--tenant", "t1"],
    ],
    ids=" ".join,
)
def test_unreachable_database_for_other_commands(cowork_cli: Run, command: list[str]) -> None:
    line = one_line(cowork_cli("--database-url", UNREACHABLE, *command), 3)
    assert "127.0.0.1" in line and PASSWORD not in line


def test_unreachable_database_from_the_environment_as_json(cowork_cli: Run) -> None:
    result = cowork_cli(
        "--json", "workspace", "list", extra_env={"COWORK_DATABASE_URL": UNREACHABLE}
    )
    error = json.loads(one_line(result, 3))
    assert error["exit_code"] == 3 and "127.0.0.1" in error["error"]
    assert PASSWORD not in result.stderr + result.stdout


def test_status_reports_an_unreachable_database(cowork_cli: Run) -> None:
    """``status`` is a report: it says unhealthy (exit 3) instead of failing with a message."""
    result = cowork_cli("--database-url", UNREACHABLE, "--json", "status")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    info = json.loads(result.stdout)
    assert info["healthy"] is False and "127.0.0.1" in info["error"]
    assert PASSWORD not in result.stdout + result.stderr
    table = cowork_cli("--database-url", UNREACHABLE, "status")
    assert table.returncode == 3 and "Traceback" not in table.stderr
    assert "127.0.0.1" in table.stdout and PASSWORD not in table.stdout + table.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["workspace", "show", "no-such-workspace"],
        ["workspace", "close", "no-such-workspace"],
        ["workspace", "add-member", "no-such-workspace", "alice"],
        ["blackboard", "history", "no-such-workspace", "spec"],
    ],
    ids=" ".join,
)
def test_unknown_workspace(cowork_cli: Run, sqlite_url: str, command: list[str]) -> None:
    line = one_line(cowork_cli("--database-url", sqlite_url, *command), 5)
    assert line.startswith("error: ") and "no-such-workspace" in line


@pytest.mark.parametrize("action", ["show", "history", "cancel"])
def test_unknown_workflow_instance(cowork_cli: Run, sqlite_url: str, action: str) -> None:
    line = one_line(cowork_cli("--database-url", sqlite_url, "workflow", action, "no-such-id"), 5)
    assert line == "error: no workflow instance 'no-such-id'"


def test_unknown_workflow_instance_on_postgres(cowork_cli: Run, pg_url: str) -> None:
    line = one_line(cowork_cli("--database-url", pg_url, "workflow", "show", "no-such-id"), 5)
    assert line == "error: no workflow instance 'no-such-id'"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["workspace", "list", "--bogus"], "No such option '--bogus'"),
        (["--bogus", "status"], "No such option '--bogus'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["workflow", "list", "--status", "sleeping"], "'sleeping' is not one of"),
        (["events", "tail", "-n", "many"], "'many' is not a valid integer"),
        (["blackboard", "get", "ws"], "Missing argument 'ARTIFACT_KEY'"),
    ],
    ids=["unknown-option", "unknown-global-option", "unknown-command", "bad-choice", "bad-int",
         "missing-argument"],
)  # fmt: skip
def test_bad_flag(cowork_cli: Run, sqlite_url: str, command: list[str], message: str) -> None:
    assert message in usage_error(cowork_cli("--database-url", sqlite_url, *command))


def test_bad_json_payload_for_blackboard_put(cowork_cli: Run, sqlite_url: str) -> None:
    result = cowork_cli(
        "--database-url",
        sqlite_url,
        "blackboard",
        "put",
        "ws",
        "spec",
        "{not json",
        "--actor",
        "a",
    )
    assert "PAYLOAD is not JSON" in usage_error(result)


def test_invalid_to_for_consumers_reset(cowork_cli: Run, sqlite_url: str) -> None:
    result = cowork_cli(
        "--database-url", sqlite_url, "consumers", "reset", "c1", "--to", "yesterday", "--yes"
    )
    assert "--to must be 'beginning', 'now' or a position" in usage_error(result)


@pytest.mark.parametrize("command", [["workspace", "list"], ["status"], ["migrate"]], ids=" ".join)
def test_malformed_database_url_scheme(cowork_cli: Run, command: list[str]) -> None:
    line = one_line(cowork_cli("--database-url", "mysql://u:pw@db/x", *command), 6)
    assert line.startswith("error: ") and "mysql" in line


def test_bad_environment_value_names_the_variable(cowork_cli: Run, sqlite_url: str) -> None:
    result = cowork_cli(
        "--database-url",
        sqlite_url,
        "workspace",
        "list",
        extra_env={"COWORK_PERSISTENCE_POOL_SIZE": "lots"},
    )
    assert "COWORK_PERSISTENCE_POOL_SIZE" in one_line(result, 6)


@pytest.mark.parametrize("app", ["no.such.module:setup", "not-a-spec"])
def test_worker_with_a_bad_app(cowork_cli: Run, sqlite_url: str, app: str) -> None:
    line = one_line(cowork_cli("--database-url", sqlite_url, "worker", "--app", app), 6)
    assert "--app" in line
