"""The settings model: each setting's type, default, bounds and variables, stated once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    computed_field,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from cowork._secrets import SecretResolver, redact_url, scrub, url_secrets
from cowork.config.files import config_file_source
from cowork.config.messages import describe
from cowork.config.secrets import expand_placeholders
from cowork.config.sources import (
    Environment,
    Loading,
    Recorded,
    setting_name,
    setting_names,
)
from cowork.config.values import (
    LOG_LEVELS,
    Count,
    Directory,
    Flag,
    Format,
    KeyNames,
    LogLevel,
    Seconds,
    Secret,
    Text,
)
from cowork.errors import ConfigError

__all__ = ["LOG_LEVELS", "Settings", "default_data_dir"]


def default_data_dir(explicit: Path | None = None) -> Path:
    """Where the embedded SQLite file lives: ``explicit``, else ``$XDG_DATA_HOME/cowork``,
    else ``~/.local/share/cowork`` (a relative ``XDG_DATA_HOME`` is ignored, as the XDG spec
    says)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "cowork"
    return Path.home() / ".local" / "share" / "cowork"


class Settings(BaseSettings):
    """The resolved configuration of one process (frozen).

    Build it with :func:`~cowork.config.load_settings` (arguments, environment, config file,
    secrets). ``Settings(**values)`` takes explicit values only, on top of the defaults: it
    does not read the environment, so that code and tests constructing it get exactly what
    they wrote. The database URL is held as a :class:`~pydantic.SecretStr`; ``repr`` and
    ``str`` show it redacted and mask every known secret.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        case_sensitive=True,
        hide_input_in_errors=True,
    )

    tenant_id: Text = Field(
        "default", min_length=1, validation_alias=AliasChoices("COWORK_TENANT_ID")
    )
    tenant_name: Text = Field(
        "Default Tenant", min_length=1, validation_alias=AliasChoices("COWORK_TENANT_NAME")
    )
    owner_id: Text = Field(
        "default-owner", min_length=1, validation_alias=AliasChoices("COWORK_TENANT_OWNER_ID")
    )
    persistence_required: Flag = Field(
        False, validation_alias=AliasChoices("COWORK_PERSISTENCE_REQUIRED")
    )
    # The setting is ``database_url``; the field holds it as a secret (see ``database_url``).
    database_url_secret: Secret = Field(
        None,
        validation_alias=AliasChoices(
            "database_url", "COWORK_DATABASE_URL", "COWORK_PERSISTENCE_CONNECTION_STRING"
        ),
        exclude=True,
    )
    pool_min_size: Count = Field(
        1, ge=0, validation_alias=AliasChoices("COWORK_PERSISTENCE_POOL_MIN_SIZE")
    )
    pool_max_size: Count = Field(
        10, ge=1, validation_alias=AliasChoices("COWORK_PERSISTENCE_POOL_SIZE")
    )
    pool_idle_timeout_seconds: Seconds = Field(
        300.0, gt=0, validation_alias=AliasChoices("COWORK_PERSISTENCE_IDLE_TIMEOUT_SECONDS")
    )
    connect_timeout_seconds: Seconds = Field(
        5.0, gt=0, validation_alias=AliasChoices("COWORK_PERSISTENCE_CONNECT_TIMEOUT_SECONDS")
    )
    statement_timeout_seconds: Seconds = Field(
        30.0, ge=0, validation_alias=AliasChoices("COWORK_PERSISTENCE_STATEMENT_TIMEOUT_SECONDS")
    )
    auto_migrate: Flag = Field(
        True, validation_alias=AliasChoices("COWORK_PERSISTENCE_AUTO_MIGRATE")
    )
    migration_lock_timeout_seconds: Seconds = Field(
        60.0, gt=0, validation_alias=AliasChoices("COWORK_MIGRATION_LOCK_TIMEOUT_SECONDS")
    )
    data_dir: Directory = Field(None, validation_alias=AliasChoices("COWORK_DATA_DIR"))
    log_level: LogLevel = Field("INFO", validation_alias=AliasChoices("COWORK_LOG_LEVEL"))
    log_format: Format = Field("plain", validation_alias=AliasChoices("COWORK_LOG_FORMAT"))
    workflow_lease_seconds: Seconds = Field(
        30.0, gt=0, validation_alias=AliasChoices("COWORK_WORKFLOW_LEASE_SECONDS")
    )
    # Steps are agents' model and tool calls: they wait, holding no connection, so a worker
    # runs many at once; their checkpoints then share commits (group commit).
    workflow_concurrency: Count = Field(
        16, ge=1, validation_alias=AliasChoices("COWORK_WORKFLOW_CONCURRENCY")
    )
    stop_grace_seconds: Seconds = Field(
        8.0, ge=0, validation_alias=AliasChoices("COWORK_WORKER_STOP_GRACE_SECONDS")
    )
    # Event payload limits and redaction (cowork.events.sanitize.SanitizePolicy, same bounds).
    event_max_bytes: Count = Field(
        65536, ge=16, le=1 << 30, validation_alias=AliasChoices("COWORK_EVENT_MAX_BYTES")
    )
    event_max_string_length: Count = Field(
        4096, ge=32, le=1 << 28, validation_alias=AliasChoices("COWORK_EVENT_MAX_STRING_LENGTH")
    )
    event_max_depth: Count = Field(
        8, ge=1, le=100, validation_alias=AliasChoices("COWORK_EVENT_MAX_DEPTH")
    )
    redact_keys: KeyNames = Field((), validation_alias=AliasChoices("COWORK_REDACT_KEYS"))

    _resolved_secrets: tuple[str, ...] = PrivateAttr(default=())
    #: Where each setting not left at its default came from (its label in error messages).
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        loading = Loading.active() or Loading(
            os.environ, SecretResolver(None, os.environ), read_sources=False
        )
        given = {name: value for name, value in values.items() if value is not None}
        known = setting_names(cls)
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(map(repr, unknown))} (explicit argument); "
                f"known settings: {', '.join(known)}"
            )
        with loading.current():
            try:
                super().__init__(**given)
            except pydantic.ValidationError as exc:
                raise ConfigError(describe(cls, exc, loading)) from None
            except SettingsError as exc:  # a source failed; its message holds no value
                raise ConfigError(f"cannot read the settings: {exc}") from None
        if loading.problems:
            raise ConfigError(describe(cls, None, loading))
        self._resolved_secrets = tuple(loading.resolver.resolved)
        fields = cls.model_fields
        self._sources = {setting_name(n, fields[n]): s for n, s in loading.labels.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest precedence first: explicit arguments, the environment, the config file;
        # pydantic-settings adds the defaults last. Settings(**values): the arguments only.
        loading = Loading.active()
        if loading is None:
            return (init_settings,)
        found = [Recorded(init_settings, loading, lambda s: f"{s} (explicit argument)")]
        if loading.read_sources:
            env = Environment(settings_cls, loading.environ)
            found.append(Recorded(env, loading, env.variable))
            path = loading.config_file
            if path is not None:
                source = config_file_source(settings_cls, path)
                found.append(Recorded(source, loading, lambda s: f"{s} (from config file {path})"))
        return tuple(found)

    @model_validator(mode="before")
    @classmethod
    def _resolve_placeholders(cls, data: Any) -> Any:
        return expand_placeholders(cls, data)

    @model_validator(mode="after")
    def _pool_bounds(self) -> Settings:
        low, high = self.pool_min_size, self.pool_max_size
        if low > high:
            message = "pool_min_size must not exceed pool_max_size ({low} > {high})"
            raise PydanticCustomError("pool_bounds", message, {"low": low, "high": high})
        return self

    @computed_field(repr=False)  # type: ignore[prop-decorator]
    @property
    def database_url(self) -> str | None:
        """The configured database URL as plain text; ``None`` when not set."""
        secret = self.database_url_secret
        return None if secret is None else secret.get_secret_value()

    def effective_database_url(self) -> str:
        """``database_url``, else the embedded SQLite file in :func:`default_data_dir`."""
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(default_data_dir(self.data_dir) / "cowork.db")

    def is_memory_only(self) -> bool:
        """True when the effective database is in memory (nothing survives the process):
        ``memory://``, or ``sqlite://`` / ``sqlite:///:memory:`` as SQLAlchemy reads them."""
        url = self.effective_database_url()
        return url.startswith("memory://") or url in (
            "sqlite://",
            "sqlite:///",
            "sqlite:///:memory:",
        )

    def required_reason(self) -> str:
        """What made ``persistence_required`` true, for error messages: the environment
        variable (``COWORK_PERSISTENCE_REQUIRED is true``), the config file, or the caller."""
        found = self._required_source()
        if found is None:
            return (
                "the caller passed required=True; cowork commands and the worker pass it so "
                "that they never fall back to memory"
            )
        name, where = found
        return f"{name} is true{where}"

    def required_remedy(self) -> str:
        """``", or set <it> to false"`` naming where it was set; empty when the caller asked."""
        found = self._required_source()
        return "" if found is None else f", or set {found[0]} to false{found[1]}"

    def _required_source(self) -> tuple[str, str] | None:
        """(variable or key, " in config file F" or ""); None for an explicit argument."""
        label = self._sources.get("persistence_required", "persistence_required (default)")
        if label.endswith("(explicit argument)"):
            return None
        name, _, rest = label.partition(" (from ")
        return name, f" in {rest.removesuffix(')')}" if rest else ""

    def redacted_url(self) -> str:
        """The effective database URL with its password masked, fit for logs."""
        return redact_url(self.effective_database_url())

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string this configuration knows, for :func:`scrub`: the URL password
        and secret query values (raw and decoded) and every ``${secret:…}`` value."""
        found = list(self._resolved_secrets)
        if self.database_url:
            found.extend(url_secrets(self.database_url))
        return tuple(dict.fromkeys(s for s in found if s))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        secrets = self.secret_values()
        fields = type(self).model_fields
        for name, value in super().__repr_args__():
            if name in fields:  # shown under the setting's name: database_url, not the field's
                name = setting_name(name, fields[name])
            if isinstance(value, SecretStr):  # the database URL: shown redacted
                value = redact_url(value.get_secret_value())
            if isinstance(value, str):
                value = scrub(value, secrets)
            yield name, value
