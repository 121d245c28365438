"""Opening a SQLite URL: a missing directory is a ConfigError that creates nothing (never a
silent new database, never a fallback to memory); the default data directory is created;
in-memory forms are refused in required mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cowork
from cowork.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("COWORK_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COWORK_DATA_DIR", str(tmp_path / "data"))
    return work


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_a_missing_directory_is_a_config_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        await cowork.open("sqlite:///missing-dir/x.db")
    message = str(info.value)
    missing = tmp_path / "work" / "missing-dir"
    assert f"the directory {missing} of the SQLite database sqlite:///missing-dir/x.db" in message
    assert "does not exist" in message and f"mkdir -p {missing}" in message
    assert _tree(tmp_path) == ["work"]  # no directory, no file, not even the data directory


async def test_a_missing_absolute_directory_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await cowork.open(f"sqlite:///{tmp_path}/nowhere/deeper/x.db", required=True)
    assert not (tmp_path / "nowhere").exists()


async def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "work" / "plain").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        await cowork.open("sqlite:///plain/x.db")


async def test_tilde_is_not_expanded_and_the_message_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        await cowork.open("sqlite:///~/x.db")
    assert "'~' is not expanded" in str(info.value)
    assert "mkdir" not in str(info.value)
    assert _tree(tmp_path) == ["work"]


async def test_a_relative_url_is_relative_to_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "work" / "data").mkdir()
    async with await cowork.open("sqlite:///data/x.db", worker=False) as rt:
        assert rt.durable
    assert (tmp_path / "work" / "data" / "x.db").is_file()


async def test_the_default_data_directory_is_still_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COWORK_DATA_DIR", str(tmp_path / "fresh" / "deeper"))
    async with await cowork.open(worker=False) as rt:
        assert rt.durable
    assert (tmp_path / "fresh" / "deeper" / "cowork.db").is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_required_mode_refuses_sqlite_in_memory_forms(url: str) -> None:
    with pytest.raises(ConfigError, match="in-memory database"):
        await cowork.open(url, required=True)
