"""SQLite URLs read by SQLAlchemy's rule: ``sqlite:////abs`` is absolute, ``sqlite:///rel`` is
relative to the current directory, ``sqlite://`` and ``sqlite:///:memory:`` are in memory; a
host, user, port or query string is an error. No database is opened here."""

from __future__ import annotations

from pathlib import Path

import pytest

from cowork.config import Settings
from cowork.errors import ConfigError
from cowork.runtime.factory import create_database
from cowork.storage.sqlite import MEMORY, SqliteDatabase, sqlite_path_from_url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////var/lib/cowork/cowork.db", "/var/lib/cowork/cowork.db"),
        ("sqlite:////x.db", "/x.db"),
        ("sqlite:///cowork.db", "cowork.db"),
        ("sqlite:///data/x.db", "data/x.db"),
        ("sqlite:///./x.db", "./x.db"),
        ("sqlite:///../up/x.db", "../up/x.db"),
        # Taken literally, as SQLAlchemy does: no ~ expansion, no percent-decoding.
        ("sqlite:///~/x.db", "~/x.db"),
        ("sqlite:///a%20b.db", "a%20b.db"),
        ("sqlite:///with space.db", "with space.db"),
        ("sqlite://", MEMORY),
        ("sqlite:///", MEMORY),
        ("sqlite:///:memory:", MEMORY),
        ("memory://", MEMORY),
    ],
)
def test_path_of_a_url(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://x.db", "no host, user or port"),
        ("sqlite://localhost/x.db", "no host, user or port"),
        ("sqlite://user:hunter2@host/x.db", "no host, user or port"),
        ("sqlite:///x.db?mode=ro", "no query string"),
        ("sqlite:////abs/x.db?timeout=5", "no query string"),
    ],
)
def test_malformed_urls_are_config_errors_naming_both_forms(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        sqlite_path_from_url(url)
    message = str(info.value)
    assert says in message
    assert "sqlite:///relative/to/cwd.db" in message and "sqlite:////absolute/path.db" in message
    assert "hunter2" not in message


def test_a_relative_path_is_resolved_against_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    db = SqliteDatabase("sqlite:///data/x.db")
    assert db.path == "data/x.db"
    assert db.display_url == "sqlite:///data/x.db"
    assert db._file == str(tmp_path / "data" / "x.db")
    assert db.durable


def test_an_absolute_path_stays_absolute(tmp_path: Path) -> None:
    db = SqliteDatabase(f"sqlite:///{tmp_path}/x.db")  # four slashes: tmp_path starts with /
    assert db._file == str(tmp_path / "x.db")
    assert db.display_url == f"sqlite:///{tmp_path}/x.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "memory://"])
def test_every_in_memory_form_is_memory_only(url: str) -> None:
    assert Settings(database_url=url).is_memory_only()
    assert not create_database(url, Settings()).durable


def test_only_the_default_data_directory_is_created(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    default = create_database(settings.effective_database_url(), settings)
    explicit_there = create_database(f"sqlite:///{tmp_path}/data/other.db", settings)
    elsewhere = create_database(f"sqlite:///{tmp_path}/elsewhere/x.db", settings)
    assert isinstance(default, SqliteDatabase) and default._create_directory
    assert isinstance(explicit_there, SqliteDatabase) and explicit_there._create_directory
    assert isinstance(elsewhere, SqliteDatabase) and not elsewhere._create_directory
