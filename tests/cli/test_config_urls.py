"""The installed ``cowork`` executable and SQLite URLs: a database in a directory that does not
exist is a configuration error (exit 6) that says so and creates nothing; a relative URL is
relative to the directory the command runs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.executable import run_cowork


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.mark.parametrize("command", [["status"], ["migrate"], ["workspace", "list"]])
def test_a_missing_directory_exits_6_and_creates_nothing(work: Path, command: list[str]) -> None:
    result = run_cowork(["--database-url", "sqlite:///missing/x.db", *command], work)
    assert result.returncode == 6, result.stderr
    missing = work / "missing"
    assert result.stderr.startswith(f"error: the directory {missing} of the SQLite database")
    assert "does not exist" in result.stderr and f"mkdir -p {missing}" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(work.iterdir()) == []


def test_a_host_in_a_sqlite_url_exits_6(work: Path) -> None:
    result = run_cowork(["--database-url", "sqlite://data/x.db", "status"], work)
    assert result.returncode == 6, result.stderr
    assert "sqlite:////absolute/path.db" in result.stderr
    assert list(work.iterdir()) == []


def test_a_relative_url_lands_in_the_working_directory(work: Path) -> None:
    (work / "data").mkdir()
    result = run_cowork(["--database-url", "sqlite:///data/x.db", "migrate"], work)
    assert result.returncode == 0, result.stderr
    assert (work / "data" / "x.db").is_file()
    assert "sqlite:///data/x.db" in result.stdout
