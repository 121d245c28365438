"""Required-mode messages name what made persistence required: the environment variable, the
config file or the caller's argument, whichever won; never one that is not set."""

from __future__ import annotations

from pathlib import Path

import pytest

import cowork
from cowork.config import load_settings
from cowork.errors import ConfigError, PersistenceUnavailable


def test_from_the_environment() -> None:
    s = load_settings(environ={"COWORK_PERSISTENCE_REQUIRED": "yes"})
    assert s.required_reason() == "COWORK_PERSISTENCE_REQUIRED is true"
    assert s.required_remedy() == ", or set COWORK_PERSISTENCE_REQUIRED to false"


def test_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("persistence_required: true\n", encoding="utf-8")
    s = load_settings(environ={}, config_file=path)
    assert s.required_reason() == f"persistence_required is true in config file {path}"
    assert s.required_remedy() == f", or set persistence_required to false in config file {path}"


def test_the_argument_wins_over_the_environment_and_says_so() -> None:
    s = load_settings(environ={"COWORK_PERSISTENCE_REQUIRED": "false"}, persistence_required=True)
    assert s.required_reason().startswith("the caller passed required=True")
    assert "COWORK_PERSISTENCE_REQUIRED" not in s.required_reason()
    assert s.required_remedy() == ""


async def test_open_in_memory_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COWORK_PERSISTENCE_REQUIRED", "true")
    with pytest.raises(ConfigError) as info:
        await cowork.open("memory://")
    assert str(info.value).startswith(
        "persistence is required (COWORK_PERSISTENCE_REQUIRED is true) but memory:// is an "
        "in-memory database"
    )


async def test_open_unreachable_names_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COWORK_PERSISTENCE_REQUIRED", raising=False)
    monkeypatch.setenv("COWORK_PERSISTENCE_CONNECT_TIMEOUT_SECONDS", "2")
    with pytest.raises(PersistenceUnavailable) as info:
        await cowork.open("postgresql://u:pw-secret@127.0.0.1:1/db", required=True)
    message = str(info.value)
    assert message.startswith("persistence is required (the caller passed required=True")
    assert "unreachable" in message and "COWORK_PERSISTENCE_REQUIRED" not in message
    assert "pw-secret" not in message
