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
``COWORK_WORKFLOW_CONCURRENCY`` /              ``16``             workflow steps a worker runs at
``workflow_concurrency``                                           once per tenant (actions hold
                                                                   no connection while they wait)
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

Built on pydantic-settings: :class:`Settings` states each setting once (type, default, bounds,
variables); its sources (``cowork.config.sources``) read arguments, the environment and the
file; placeholders resolve after the merge (``cowork.config.secrets``); problems become one
message (``cowork.config.messages``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import annotated_types
from pydantic.fields import FieldInfo

from cowork._secrets import SecretResolver, redact_url, scrub
from cowork.config.model import LOG_LEVELS as LOG_LEVELS
from cowork.config.model import Settings, default_data_dir
from cowork.config.secrets import SecretProvider
from cowork.config.sources import CONFIG_FILE_ENV as CONFIG_FILE_ENV
from cowork.config.sources import Loading, env_names, given_config_file, setting_name

__all__ = [
    "SecretProvider",
    "Settings",
    "default_data_dir",
    "load_settings",
    "redact_url",
    "scrub",
]


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
    resolver = SecretResolver(secret_provider, env)
    loading = Loading(env, resolver, given_config_file(config_file, env))
    with loading.current():
        return Settings(**overrides)


@dataclass(frozen=True)
class SettingSpec:
    """One setting as documented: its environment variables (preferred first) and bounds."""

    env: tuple[str, ...]
    minimum: float | None = None
    exclusive: bool = False  # minimum itself not allowed
    maximum: float | None = None


def _spec(info: FieldInfo) -> SettingSpec:
    minimum: float | None = None
    maximum: float | None = None
    exclusive = False
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            minimum = cast(float, bound.ge)
        elif isinstance(bound, annotated_types.Gt):
            minimum, exclusive = cast(float, bound.gt), True
        elif isinstance(bound, annotated_types.Le):
            maximum = cast(float, bound.le)
    return SettingSpec(env_names(info), minimum, exclusive, maximum)


#: Setting name -> its variables and bounds, as the table above and the README show them;
#: derived from the model (tests/unit/test_readme_settings.py holds the README to it).
_SPECS: dict[str, SettingSpec] = {
    setting_name(name, info): _spec(info) for name, info in Settings.model_fields.items()
}
