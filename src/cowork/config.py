"""Configuration: typed, frozen settings from arguments, environment, a file and defaults.

Precedence, highest first: explicit arguments to :func:`load_settings` (``None`` means "not
given"), environment variables, the optional config file, the defaults below.

=============================================== ================== =================================
Environment variable / setting                  Default            Meaning
=============================================== ================== =================================
``COWORK_TENANT_ID`` / ``tenant_id``            ``default``        process default tenant
``COWORK_TENANT_NAME`` / ``tenant_name``        ``Default Tenant`` display name of that tenant
``COWORK_TENANT_OWNER_ID`` / ``owner_id``       ``default-owner``  owner recorded on its rows
``COWORK_PERSISTENCE_REQUIRED`` /               ``false``          fail fast unless a durable
``persistence_required``                                           database is reachable/migrated
``COWORK_DATABASE_URL`` / ``database_url``      embedded SQLite    ``postgresql://…``,
                                                                   ``sqlite:///path`` or
                                                                   ``memory://``
``COWORK_PERSISTENCE_CONNECTION_STRING``        (unset)            alias of ``COWORK_DATABASE_URL``
                                                                   (used only when that is unset)
``COWORK_PERSISTENCE_POOL_MIN_SIZE`` /          ``1``              connections kept open (>= 0)
``pool_min_size``
``COWORK_PERSISTENCE_POOL_SIZE`` /              ``10``             pool maximum (>= 1, >= minimum)
``pool_max_size``
``COWORK_PERSISTENCE_IDLE_TIMEOUT_SECONDS`` /   ``300``            idle connection lifetime (> 0)
``pool_idle_timeout_seconds``
``COWORK_PERSISTENCE_CONNECT_TIMEOUT_SECONDS``  ``5``              connect timeout (> 0)
/ ``connect_timeout_seconds``
``COWORK_PERSISTENCE_STATEMENT_TIMEOUT_SECONDS`` ``30``            per statement (>= 0; 0 = none)
/ ``statement_timeout_seconds``
``COWORK_PERSISTENCE_AUTO_MIGRATE`` /           ``true``           apply pending migrations on open
``auto_migrate``
``COWORK_MIGRATION_LOCK_TIMEOUT_SECONDS`` /     ``60``             wait for the migration lock (> 0)
``migration_lock_timeout_seconds``
``COWORK_DATA_DIR`` / ``data_dir``              see below          directory of the embedded SQLite
``COWORK_LOG_LEVEL`` / ``log_level``            ``INFO``           DEBUG, INFO, WARNING or ERROR
``COWORK_LOG_FORMAT`` / ``log_format``          ``plain``          ``plain`` or ``json``
``COWORK_WORKFLOW_LEASE_SECONDS`` /            ``30``             a workflow step's lease; when
``workflow_lease_seconds``                                         it expires another worker resumes
``COWORK_WORKFLOW_CONCURRENCY`` /              ``4``              workflow steps a worker runs at
``workflow_concurrency``                                           once per tenant (PostgreSQL, at
                                                                   most the pool size; SQLite: 1)
``COWORK_WORKER_STOP_GRACE_SECONDS`` /          ``8``              on shutdown, how long a running
``stop_grace_seconds``                                             step may finish before it is
                                                                   rolled back and released
``COWORK_EVENT_MAX_BYTES`` /                    ``65536``          largest event payload, and
``event_max_bytes``                                                metadata, as compact UTF-8 JSON
                                                                   in bytes (16 to 2**30)
``COWORK_EVENT_MAX_STRING_LENGTH`` /            ``4096``           longest string in an event, in
``event_max_string_length``                                        characters (32 to 2**28)
``COWORK_EVENT_MAX_DEPTH`` /                    ``8``              deepest nesting in an event
``event_max_depth``                                                (top level = 1; 1 to 100)
``COWORK_REDACT_KEYS`` / ``redact_keys``        (none)             more key names whose values are
                                                                   redacted in events (comma-
                                                                   separated, or a list in a file)
``COWORK_CONFIG_FILE``                          (none)             config file to read (environment
                                                                   only; or ``config_file=``)
=============================================== ================== =================================

Booleans accept ``true/false/1/0/yes/no/on/off`` in any case. Empty values of the optional
``COWORK_DATABASE_URL`` / ``COWORK_DATA_DIR`` count as unset. Other ``COWORK_*`` variables are
left to the modules that own them.

The config file is TOML (``.toml``), JSON (``.json``) or YAML (``.yaml``/``.yml``); its keys are
the setting names above (``database_url = "…"``); an unknown key is an error.

Any string value, from any source, may hold ``${secret:NAME}`` placeholders: they resolve through
the ``secret_provider`` given to :func:`load_settings`, then the environment variable ``NAME``.

Default database: ``sqlite:///<data dir>/cowork.db`` where the data directory is ``data_dir``,
else ``$XDG_DATA_HOME/cowork``, else ``~/.local/share/cowork``; that directory is created on
first use. Other SQLite URLs read as SQLAlchemy reads them (``cowork.storage.sqlite.url``):
``sqlite:////abs/path.db`` is absolute, ``sqlite:///rel.db`` relative to the current directory,
and the file's directory must exist.

Errors are :class:`~cowork.errors.ConfigError`; they name the environment variable (or the
setting and its source) and never show a connection string or a secret.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pydantic
import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cowork._secrets import SecretResolver, redact_url, scrub, url_secrets
from cowork.errors import ConfigError

__all__ = [
    "SecretProvider",
    "Settings",
    "default_data_dir",
    "load_settings",
    "redact_url",
    "scrub",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CONFIG_FILE_ENV = "COWORK_CONFIG_FILE"
_BOOLS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLS |= {"false": False, "0": False, "no": False, "off": False}


class SecretProvider(Protocol):
    """Looks a secret up by name; ``None`` means "not known here" (the environment is next)."""

    def __call__(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class _Spec:
    kind: Literal["str", "optstr", "bool", "int", "float", "path", "level", "format", "keys"]
    env: tuple[str, ...]
    minimum: float | None = None
    exclusive: bool = False  # minimum itself not allowed
    maximum: int | None = None


_SPECS: dict[str, _Spec] = {
    "tenant_id": _Spec("str", ("COWORK_TENANT_ID",)),
    "tenant_name": _Spec("str", ("COWORK_TENANT_NAME",)),
    "owner_id": _Spec("str", ("COWORK_TENANT_OWNER_ID",)),
    "persistence_required": _Spec("bool", ("COWORK_PERSISTENCE_REQUIRED",)),
    "database_url": _Spec(
        "optstr", ("COWORK_DATABASE_URL", "COWORK_PERSISTENCE_CONNECTION_STRING")
    ),
    "pool_min_size": _Spec("int", ("COWORK_PERSISTENCE_POOL_MIN_SIZE",), 0),
    "pool_max_size": _Spec("int", ("COWORK_PERSISTENCE_POOL_SIZE",), 1),
    "pool_idle_timeout_seconds": _Spec(
        "float", ("COWORK_PERSISTENCE_IDLE_TIMEOUT_SECONDS",), 0, exclusive=True
    ),
    "connect_timeout_seconds": _Spec(
        "float", ("COWORK_PERSISTENCE_CONNECT_TIMEOUT_SECONDS",), 0, exclusive=True
    ),
    "statement_timeout_seconds": _Spec(
        "float", ("COWORK_PERSISTENCE_STATEMENT_TIMEOUT_SECONDS",), 0
    ),
    "auto_migrate": _Spec("bool", ("COWORK_PERSISTENCE_AUTO_MIGRATE",)),
    "migration_lock_timeout_seconds": _Spec(
        "float", ("COWORK_MIGRATION_LOCK_TIMEOUT_SECONDS",), 0, exclusive=True
    ),
    "data_dir": _Spec("path", ("COWORK_DATA_DIR",)),
    "log_level": _Spec("level", ("COWORK_LOG_LEVEL",)),
    "log_format": _Spec("format", ("COWORK_LOG_FORMAT",)),
    "workflow_lease_seconds": _Spec("float", ("COWORK_WORKFLOW_LEASE_SECONDS",), 0, exclusive=True),
    "workflow_concurrency": _Spec("int", ("COWORK_WORKFLOW_CONCURRENCY",), 1),
    "stop_grace_seconds": _Spec("float", ("COWORK_WORKER_STOP_GRACE_SECONDS",), 0),
    # Event payload limits and redaction (cowork.events.sanitize.SanitizePolicy, same bounds).
    "event_max_bytes": _Spec("int", ("COWORK_EVENT_MAX_BYTES",), 16, maximum=1 << 30),
    "event_max_string_length": _Spec(
        "int", ("COWORK_EVENT_MAX_STRING_LENGTH",), 32, maximum=1 << 28
    ),
    "event_max_depth": _Spec("int", ("COWORK_EVENT_MAX_DEPTH",), 1, maximum=100),
    "redact_keys": _Spec("keys", ("COWORK_REDACT_KEYS",)),
}
#: Settings whose values are never shown in an error message.
_SECRET_SETTINGS = frozenset({"database_url"})


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

    Build it with :func:`load_settings` (arguments, environment, config file, secrets).
    ``Settings(**values)`` takes explicit values only, on top of the defaults: it does not read
    the environment, so that code and tests constructing it get exactly what they wrote.
    ``repr`` and ``str`` show ``database_url`` redacted and mask every known secret.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(default="default", min_length=1)
    tenant_name: str = Field(default="Default Tenant", min_length=1)
    owner_id: str = Field(default="default-owner", min_length=1)
    persistence_required: bool = False
    database_url: str | None = None
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    pool_idle_timeout_seconds: float = Field(default=300.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    statement_timeout_seconds: float = Field(default=30.0, ge=0)
    auto_migrate: bool = True
    migration_lock_timeout_seconds: float = Field(default=60.0, gt=0)
    data_dir: Path | None = None
    log_level: str = "INFO"
    log_format: Literal["plain", "json"] = "plain"
    workflow_lease_seconds: float = Field(default=30.0, gt=0)
    workflow_concurrency: int = Field(default=4, ge=1)
    stop_grace_seconds: float = Field(default=8.0, ge=0)
    event_max_bytes: int = Field(default=65536, ge=16, le=1 << 30)
    event_max_string_length: int = Field(default=4096, ge=32, le=1 << 28)
    event_max_depth: int = Field(default=8, ge=1, le=100)
    redact_keys: tuple[str, ...] = ()

    _resolved_secrets: tuple[str, ...] = PrivateAttr(default=())
    #: Where each setting not left at its default came from (its label in error messages).
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        resolver = SecretResolver(None, os.environ)
        layers: list[_Layer] = [_explicit_values(values)]
        merged = _merge(layers, resolver)
        _init_settings(self, merged, tuple(resolver.resolved), _given_sources(layers))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Sources are merged by load_settings, which knows where each value came from.
        return (init_settings,)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @model_validator(mode="after")
    def _pool_bounds(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return self

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
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = redact_url(value)
            if isinstance(value, str):
                value = scrub(value, secrets)
            yield name, value


#: One source of values: setting name -> (label for errors, raw value).
_Layer = Mapping[str, tuple[str, Any]]


def _explicit_values(values: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    unknown = sorted(set(values) - set(_SPECS))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(map(repr, unknown))} (explicit argument); "
            f"known settings: {', '.join(_SPECS)}"
        )
    return {k: (f"{k} (explicit argument)", v) for k, v in values.items() if v is not None}


def _env_values(environ: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for name, spec in _SPECS.items():
        for var in spec.env:
            value = environ.get(var)
            if value is None or (value.strip() == "" and spec.kind in ("optstr", "path")):
                continue
            found[name] = (var, value)
            break
    return found


def _file_values(path: str) -> dict[str, tuple[str, Any]]:
    suffix = Path(path).suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise ConfigError(
            f"config file {path}: unknown extension {suffix or '(none)'!r}; "
            "use .toml, .json, .yaml or .yml"
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read config file {path}: {reason}") from None
    data: Any
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}") from None
    except yaml.YAMLError as exc:
        # The YAML error text quotes the offending line, which may hold a secret: show position.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings at the top level")
    unknown = sorted(str(k) for k in data if k not in _SPECS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(map(repr, unknown))}; "
            f"known settings: {', '.join(_SPECS)}"
        )
    return {k: (f"{k} (from config file {path})", v) for k, v in data.items() if v is not None}


def _merge(layers: list[_Layer], resolver: SecretResolver) -> dict[str, Any]:
    """Pick each setting from the highest layer, expand secrets, convert, check; all problems
    are reported together in one :class:`ConfigError`."""
    chosen: dict[str, tuple[str, Any]] = {}
    for layer in layers:  # lowest precedence first
        chosen.update(layer)
    values: dict[str, Any] = {}
    labels = {name: f"{name} (default)" for name in _SPECS}
    hidden: set[str] = set()
    problems: list[str] = []
    for name, (label, raw) in chosen.items():
        labels[name] = label
        secret = name in _SECRET_SETTINGS
        try:
            if isinstance(raw, str) and resolver.has_placeholder(raw):
                raw = resolver.expand(raw, label)
                secret = True
                hidden.add(name)
            converted = _convert(_SPECS[name], raw, label, secret)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if converted is not None:
            values[name] = converted
    low = values.get("pool_min_size", 1)
    high = values.get("pool_max_size", 10)
    if not problems and low > high:
        shown = "" if hidden & {"pool_min_size", "pool_max_size"} else f" ({low} > {high})"
        problems.append(
            f"{labels['pool_min_size']} must not exceed {labels['pool_max_size']}{shown}"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    return values


def _convert(spec: _Spec, raw: Any, label: str, secret: bool) -> Any:
    """``raw`` as the setting's type, or a ConfigError naming ``label`` (value hidden if
    ``secret``)."""
    got = f", got a {type(raw).__name__}" if secret else f", got {raw!r}"
    text = raw.strip() if isinstance(raw, str) else None
    if spec.kind in ("str", "optstr"):
        if text is None:
            raise ConfigError(f"{label} must be a string{got}")
        if not text and spec.kind == "str":
            raise ConfigError(f"{label} must not be empty")
        return text or None
    if spec.kind == "path":
        if not isinstance(raw, str | os.PathLike):
            raise ConfigError(f"{label} must be a directory path{got}")
        return Path(raw).expanduser() if str(raw).strip() else None
    if spec.kind == "bool":
        if isinstance(raw, bool) or (type(raw) is int and raw in (0, 1)):
            return bool(raw)
        if text is None or text.lower() not in _BOOLS:
            raise ConfigError(f"{label} must be a boolean (true/false/1/0/yes/no/on/off){got}")
        return _BOOLS[text.lower()]
    if spec.kind in ("level", "format"):
        allowed = LOG_LEVELS if spec.kind == "level" else ("plain", "json")
        chosen = None if text is None else text.upper() if spec.kind == "level" else text.lower()
        if chosen not in allowed:
            raise ConfigError(f"{label} must be one of {', '.join(allowed)}{got}")
        return chosen
    if spec.kind == "keys":
        return _keys(raw, text, label, got)
    number = _number(spec.kind == "int", raw, text)
    if number is None:
        noun = "an integer" if spec.kind == "int" else "a number"
        raise ConfigError(f"{label} must be {noun}{got}")
    if spec.minimum is not None and (
        number < spec.minimum or (spec.exclusive and number == spec.minimum)
    ):
        op = ">" if spec.exclusive else ">="
        shown = "" if secret else f", got {number}"
        raise ConfigError(f"{label} must be {op} {spec.minimum:g}{shown}")
    if spec.maximum is not None and number > spec.maximum:
        shown = "" if secret else f", got {number}"
        raise ConfigError(f"{label} must be <= {spec.maximum}{shown}")
    return number


def _keys(raw: Any, text: str | None, label: str, got: str) -> tuple[str, ...]:
    """Key names: a comma-separated string or a list of strings; blanks between commas are
    skipped, duplicates dropped."""
    items = text.split(",") if text is not None else raw
    if isinstance(items, set | frozenset):
        items = sorted(items, key=str)
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise ConfigError(f"{label} must be key names separated by commas, or a list{got}")
    keys = tuple(dict.fromkeys(k.strip() for k in items if k.strip()))
    for key in keys:
        if not key.strip("_-. "):  # compared without _ - . and spaces: nothing left
            raise ConfigError(f"{label}: {key!r} is not a key name; use letters or digits")
    return keys


def _number(integer: bool, raw: Any, text: str | None) -> int | float | None:
    if isinstance(raw, bool):
        return None
    value: int | float
    try:
        if text is not None:
            value = int(text) if integer else float(text)
        elif isinstance(raw, int | float):
            value = raw
        else:
            return None
    except ValueError:
        return None
    if integer:
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value)
    return float(value) if math.isfinite(value) else None


def _given_sources(layers: list[_Layer]) -> dict[str, str]:
    """Each given setting's label, from the highest layer that holds it."""
    return {name: label for layer in layers for name, (label, _) in layer.items()}


def _init_settings(
    target: Settings,
    values: Mapping[str, Any],
    secrets: tuple[str, ...],
    sources: dict[str, str],
) -> None:
    try:
        BaseSettings.__init__(target, **values)
    except pydantic.ValidationError as exc:  # a backstop: _merge checks everything first
        names = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
        raise ConfigError(f"invalid setting(s): {', '.join(names) or 'unknown'}") from None
    target._resolved_secrets = secrets
    target._sources = sources


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    secret_provider: SecretProvider | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve the configuration: ``overrides`` > ``environ`` > config file > defaults.

    ``config_file`` defaults to ``$COWORK_CONFIG_FILE`` (none if unset or empty); ``environ``
    defaults to ``os.environ``; ``overrides`` are settings by name, ``None`` meaning "not given".
    Raises :class:`~cowork.errors.ConfigError` with every problem found.
    """
    env = os.environ if environ is None else environ
    if config_file is None:
        config_file = env.get(CONFIG_FILE_ENV) or None
    layers: list[_Layer] = []
    if config_file is not None:
        layers.append(_file_values(os.fspath(config_file)))
    layers.append(_env_values(env))
    layers.append(_explicit_values(overrides))
    resolver = SecretResolver(secret_provider, env)
    values = _merge(layers, resolver)
    settings = Settings.__new__(Settings)
    _init_settings(settings, values, tuple(resolver.resolved), _given_sources(layers))
    return settings
