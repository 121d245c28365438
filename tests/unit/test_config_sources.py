"""Configuration on pydantic-settings: the sources' precedence, the database URL alias,
``${secret:NAME}`` placeholders from every source, and the URL held as a secret.

Like tests/unit/test_config.py, no test reads the real process environment: every load passes
``environ=`` (the few that check it is not read set it through monkeypatch).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import pytest

from cowork import config
from cowork.config import Settings, load_settings
from cowork.errors import ConfigError
from tests.support.settings import config_error, load

PASSWORD = "pa55-w0rd-xyz"
URL = f"postgresql://app:{PASSWORD}@db.example:5432/cowork?sslmode=require"
REDACTED = "postgresql://app:***@db.example:5432/cowork?sslmode=require"


def config_file(tmp_path: Path, suffix: str, values: Mapping[str, Any]) -> Path:
    """``values`` written as a config file of the format ``suffix`` names."""
    path = tmp_path / f"settings{suffix}"
    if suffix == ".json":
        text = json.dumps(values)
    elif suffix == ".toml":
        text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    else:  # YAML: JSON is a subset, and flow style keeps this one line per key
        text = "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())
    path.write_text(text, encoding="utf-8")
    return path


FORMATS = [".toml", ".json", ".yaml", ".yml"]


# --- precedence: arguments > environment > config file > defaults -----------------------------


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_level_wins_over_the_ones_below(tmp_path: Path, suffix: str) -> None:
    path = config_file(
        tmp_path,
        suffix,
        {"tenant_id": "file", "tenant_name": "file", "owner_id": "file", "pool_max_size": 5},
    )
    env = {
        "COWORK_TENANT_ID": "env",
        "COWORK_TENANT_NAME": "env",
        "COWORK_PERSISTENCE_POOL_SIZE": "6",
    }
    s = load(env, config_file=path, tenant_id="argument", pool_max_size=None)
    assert s.tenant_id == "argument"  # argument > environment > file
    assert s.tenant_name == "env"  # environment > file
    assert s.pool_max_size == 6  # None is "not given": the environment decides
    assert s.owner_id == "file"  # file > default
    assert s.workflow_concurrency == 16  # nobody set it: the default


def test_the_value_that_wins_is_the_one_validated(tmp_path: Path) -> None:
    """A bad value hidden by a higher level is not an error: each setting comes whole from
    the highest level that gives it."""
    path = config_file(tmp_path, ".json", {"pool_max_size": "lots", "log_level": "loud"})
    env = {"COWORK_PERSISTENCE_POOL_SIZE": "many", "COWORK_LOG_LEVEL": "warning"}
    s = load(env, config_file=path, pool_max_size=3)
    assert (s.pool_max_size, s.log_level) == (3, "WARNING")


def test_errors_name_the_level_that_won(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".yaml", {"pool_max_size": "x", "auto_migrate": "x"})
    message = config_error(
        {"COWORK_PERSISTENCE_POOL_SIZE": "y", "COWORK_LOG_FORMAT": "xml"},
        config_file=path,
        workflow_concurrency="z",
    )
    assert "COWORK_PERSISTENCE_POOL_SIZE must be an integer, got 'y'" in message
    assert f"auto_migrate (from config file {path}) must be a boolean" in message
    assert "COWORK_LOG_FORMAT must be one of plain, json, got 'xml'" in message
    assert "workflow_concurrency (explicit argument) must be an integer, got 'z'" in message
    assert "pool_max_size (from config file" not in message  # hidden by the environment


def test_pool_bound_names_both_levels(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".toml", {"pool_max_size": 3})
    message = config_error({"COWORK_PERSISTENCE_POOL_MIN_SIZE": "5"}, config_file=path)
    assert message == (
        f"COWORK_PERSISTENCE_POOL_MIN_SIZE must not exceed pool_max_size (from config file "
        f"{path}) (5 > 3)"
    )


def test_required_reason_follows_the_winning_level(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".json", {"persistence_required": False})
    env = {"COWORK_PERSISTENCE_REQUIRED": "on"}
    assert load(env, config_file=path).required_reason() == "COWORK_PERSISTENCE_REQUIRED is true"
    path = config_file(tmp_path, ".json", {"persistence_required": True})
    assert load(config_file=path).required_reason() == (
        f"persistence_required is true in config file {path}"
    )


def test_settings_constructor_never_reads_the_environment_or_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COWORK_TENANT_ID", "from-env")
    monkeypatch.setenv("COWORK_CONFIG_FILE", str(config_file(tmp_path, ".json", {"owner_id": "f"})))
    s = Settings(tenant_name="explicit")
    assert (s.tenant_id, s.owner_id, s.tenant_name) == ("default", "default-owner", "explicit")
    assert load_settings().tenant_id == "from-env"  # load_settings reads os.environ by default
    assert load_settings().owner_id == "f"


def test_only_the_documented_variables_are_read() -> None:
    """Field names and other spellings are not variables: case matters, as on Linux."""
    env = {"tenant_id": "a", "TENANT_ID": "b", "cowork_tenant_id": "c", "database_url": "memory://"}
    s = load(env)
    assert s.tenant_id == "default"
    assert s.database_url is None


def test_a_file_takes_setting_names_not_variable_names(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".toml", {"COWORK_TENANT_ID": "t"})
    assert "unknown setting(s) 'COWORK_TENANT_ID'" in config_error(config_file=path)


def test_arguments_take_setting_names_only() -> None:
    message = config_error(COWORK_TENANT_ID="t", database_url_secret="memory://")
    assert "unknown setting(s) 'COWORK_TENANT_ID', 'database_url_secret'" in message


def test_null_in_a_file_means_not_given(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".json", {"tenant_id": None, "database_url": None})
    s = load(config_file=path)
    assert (s.tenant_id, s.database_url) == ("default", None)


def test_blank_required_variable_is_an_error_not_unset() -> None:
    """Only the optional settings (database URL, data directory) treat blank as unset."""
    assert config_error({"COWORK_TENANT_NAME": " "}) == "COWORK_TENANT_NAME must not be empty"
    assert load({"COWORK_DATA_DIR": "  "}).data_dir is None


def test_loads_in_parallel_threads_keep_their_own_inputs() -> None:
    results: dict[int, str] = {}

    def work(n: int) -> None:
        for _ in range(20):
            results[n] = load({"COWORK_TENANT_ID": f"t{n}"}).tenant_id
            assert results[n] == f"t{n}"

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"t{n}" for n in range(4)}


def test_specs_come_from_the_field_constraints() -> None:
    specs = config._SPECS
    assert list(specs) == [
        "database_url" if name == "database_url_secret" else name for name in Settings.model_fields
    ]
    assert specs["pool_idle_timeout_seconds"].minimum == 0
    assert specs["pool_idle_timeout_seconds"].exclusive
    assert (specs["statement_timeout_seconds"].minimum, specs["pool_max_size"].minimum) == (0, 1)
    assert specs["event_max_bytes"].maximum == 1 << 30
    assert specs["tenant_id"].minimum is None
    assert specs["database_url"].env == (
        "COWORK_DATABASE_URL",
        "COWORK_PERSISTENCE_CONNECTION_STRING",
    )


# --- the connection-string alias ------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COWORK_PERSISTENCE_CONNECTION_STRING": "memory://"}, "memory://"),
        ({"COWORK_DATABASE_URL": "sqlite:///a.db", "COWORK_PERSISTENCE_CONNECTION_STRING": "x"}, "sqlite:///a.db"),
        ({"COWORK_DATABASE_URL": "", "COWORK_PERSISTENCE_CONNECTION_STRING": "memory://"}, "memory://"),
        ({"COWORK_DATABASE_URL": " \t", "COWORK_PERSISTENCE_CONNECTION_STRING": "memory://"}, "memory://"),
        ({"COWORK_DATABASE_URL": "", "COWORK_PERSISTENCE_CONNECTION_STRING": ""}, None),
    ],
)  # fmt: skip
def test_the_alias_is_used_only_when_the_primary_is_unset(
    env: dict[str, str], expected: str | None
) -> None:
    assert load(env).database_url == expected


def test_the_alias_is_an_environment_value(tmp_path: Path) -> None:
    """Through the alias the URL still beats the file, and loses to an argument."""
    path = config_file(tmp_path, ".yaml", {"database_url": "sqlite:///file.db"})
    env = {"COWORK_PERSISTENCE_CONNECTION_STRING": "sqlite:///alias.db"}
    assert load(env, config_file=path).database_url == "sqlite:///alias.db"
    assert load(env, config_file=path, database_url="memory://").database_url == "memory://"
    assert load({"COWORK_DATABASE_URL": ""}, config_file=path).database_url == "sqlite:///file.db"


def test_errors_name_the_alias_that_was_read() -> None:
    message = config_error({"COWORK_PERSISTENCE_CONNECTION_STRING": "${secret:ABSENT}"})
    assert message.startswith("COWORK_PERSISTENCE_CONNECTION_STRING: secret ${secret:ABSENT}")


# --- ${secret:NAME} in every source ------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
def test_placeholders_in_a_file(tmp_path: Path, suffix: str) -> None:
    path = config_file(
        tmp_path,
        suffix,
        {"database_url": "postgresql://app:${secret:DB_PW}@h/db", "pool_max_size": "${secret:N}"},
    )
    provider = {"DB_PW": PASSWORD}.get
    s = load({"N": "7"}, config_file=path, secret_provider=provider)
    assert s.database_url == f"postgresql://app:{PASSWORD}@h/db"
    assert s.pool_max_size == 7  # the environment answers what the provider does not know
    assert {PASSWORD, "7"} <= set(s.secret_values())
    assert PASSWORD not in repr(s)


def test_placeholders_in_the_environment() -> None:
    env = {"COWORK_DATABASE_URL": "postgresql://app:${secret:DB_PW}@h/db", "DB_PW": PASSWORD}
    s = load(env)
    assert s.database_url == f"postgresql://app:{PASSWORD}@h/db"
    assert PASSWORD in s.secret_values()
    assert PASSWORD not in str(s)


def test_a_placeholder_hidden_by_a_higher_level_is_never_looked_up(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".toml", {"tenant_id": "${secret:NOT_THERE}"})
    calls: list[str] = []

    def provider(name: str) -> str | None:
        calls.append(name)
        return None

    s = load({"COWORK_TENANT_ID": "env"}, config_file=path, secret_provider=provider)
    assert s.tenant_id == "env"
    assert calls == []


def test_unresolved_placeholder_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".json", {"owner_id": "${secret:MISSING}", "pool_max_size": 0})
    message = config_error(config_file=path)
    assert f"owner_id (from config file {path}): secret ${{secret:MISSING}}" in message
    assert f"pool_max_size (from config file {path}) must be >= 1, got 0" in message


def test_a_bad_value_from_a_secret_is_never_shown(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".yaml", {"event_max_depth": "${secret:DEPTH}"})
    message = config_error({"DEPTH": "4242"}, config_file=path)
    assert message == f"event_max_depth (from config file {path}) must be <= 100"
    message = config_error({"COWORK_LOG_LEVEL": "${secret:L}", "L": "hush-hush"})
    assert message == "COWORK_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got a str"


def test_model_validate_is_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like Settings(...): explicit values only, placeholders from the process environment."""
    monkeypatch.setenv("TENANT_SECRET", "t-from-env")
    monkeypatch.setenv("COWORK_TENANT_NAME", "ignored")
    s = Settings.model_validate({"tenant_id": "${secret:TENANT_SECRET}"})
    assert (s.tenant_id, s.tenant_name) == ("t-from-env", "Default Tenant")
    assert "t-from-env" in s.secret_values()


# --- the URL held as a secret ----------------------------------------------------------------


def test_the_url_is_held_as_a_secret_and_given_back_as_text() -> None:
    s = load({"COWORK_DATABASE_URL": URL})
    assert isinstance(s.database_url_secret, pydantic.SecretStr)
    assert s.database_url_secret.get_secret_value() == URL
    assert s.database_url == URL
    assert type(s.effective_database_url()) is str
    assert s.effective_database_url() == URL
    assert s.model_dump()["database_url"] == URL
    assert "database_url_secret" not in s.model_dump()


def test_repr_and_str_never_show_the_url() -> None:
    s = load(database_url=URL)
    for text in (repr(s), str(s), f"{s!r}", f"{s}"):
        assert PASSWORD not in text
        assert URL not in text
        assert f"database_url='{REDACTED}'" in text
        assert "database_url_secret" not in text


def test_config_errors_never_show_the_url(tmp_path: Path) -> None:
    path = config_file(tmp_path, ".json", {"database_url": {"url": URL}})
    message = config_error(config_file=path)
    assert message == f"database_url (from config file {path}) must be a string, got a dict"
    messages = [
        config_error({"COWORK_DATABASE_URL": URL}, pool_min_size=20),
        config_error(database_url=URL, log_level="chatty", tenant_id=""),
    ]
    with pytest.raises(ConfigError) as info:
        Settings.model_validate({"database_url": URL, "pool_min_size": 9, "pool_max_size": 2})
    messages.append(str(info.value))
    for text in messages:
        assert PASSWORD not in text
        assert "db.example" not in text


def test_pydantic_errors_never_show_the_url() -> None:
    """The one pydantic error left to callers, assigning to the frozen settings, hides its
    input."""
    s = load(database_url=URL)
    with pytest.raises(pydantic.ValidationError) as info:
        s.database_url_secret = pydantic.SecretStr(URL)  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError) as other:
        s.tenant_id = URL  # type: ignore[misc]
    for text in (str(info.value), repr(info.value), str(other.value)):
        assert "frozen" in text
        assert PASSWORD not in text
