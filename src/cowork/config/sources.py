"""Where setting values come from: explicit arguments, the environment and a config file.

Each source is a pydantic-settings source; :meth:`Settings.settings_customise_sources` puts
them in precedence order, highest first, and pydantic-settings merges them. The inputs of one
:func:`~cowork.config.load_settings` call (its environment, config file and secret resolver)
reach the sources through a :class:`Loading` made current for that call; each source records
the label of every value it gives (``COWORK_X`` or ``name (from config file F)``), so that an
error names where its value came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from cowork._secrets import SecretResolver

__all__ = [
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "Environment",
    "Loading",
    "Recorded",
    "env_names",
    "field_of",
    "given_config_file",
    "setting_name",
    "setting_names",
]

CONFIG_FILE_ENV = "COWORK_CONFIG_FILE"
#: Validation aliases starting with this are environment variables; any other alias is the
#: setting's name in arguments and files (when it differs from the field's name).
ENV_PREFIX = "COWORK_"


def _aliases(info: FieldInfo) -> tuple[str, ...]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(choice for choice in alias.choices if isinstance(choice, str))
    return (alias,) if isinstance(alias, str) else ()


def env_names(info: FieldInfo) -> tuple[str, ...]:
    """The environment variables of a setting, the preferred one first."""
    return tuple(alias for alias in _aliases(info) if alias.startswith(ENV_PREFIX))


def setting_name(field_name: str, info: FieldInfo) -> str:
    """The setting's key in arguments and config files (and in messages)."""
    return next((a for a in _aliases(info) if not a.startswith(ENV_PREFIX)), field_name)


def setting_names(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Setting name -> field name, in declaration order."""
    return {setting_name(n, info): n for n, info in settings_cls.model_fields.items()}


@cache
def _field_by_key(settings_cls: type[BaseSettings]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name, info in settings_cls.model_fields.items():
        keys.update(dict.fromkeys((name, *_aliases(info)), name))
    return keys


def field_of(settings_cls: type[BaseSettings], key: str) -> str | None:
    """The field a merged value's key (a field name or any of its aliases) belongs to."""
    return _field_by_key(settings_cls).get(key)


@dataclass
class Loading:
    """The inputs of one resolution, and what it learnt on the way (for messages)."""

    environ: Mapping[str, str]
    resolver: SecretResolver
    config_file: str | None = None
    #: False: explicit arguments only (``Settings(**values)``), no environment and no file.
    read_sources: bool = True
    #: Field name -> label of the value that won ("COWORK_X", "x (explicit argument)", ...).
    labels: dict[str, str] = field(default_factory=dict)
    #: Fields whose value came through a ``${secret:…}`` placeholder: never shown.
    hidden: set[str] = field(default_factory=set)
    #: Field name -> problem found before validation (an unresolvable placeholder).
    problems: dict[str, str] = field(default_factory=dict)

    def label(self, settings_cls: type[BaseSettings], field_name: str) -> str:
        given = self.labels.get(field_name)
        info = settings_cls.model_fields[field_name]
        return given or f"{setting_name(field_name, info)} (default)"

    @contextmanager
    def current(self) -> Iterator[Loading]:
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    @staticmethod
    def active() -> Loading | None:
        return _CURRENT.get()


_CURRENT: ContextVar[Loading | None] = ContextVar("cowork_config_loading", default=None)


class Recorded(PydanticBaseSettingsSource):
    """Another source's values, each one's label (``describe(setting name)``) kept in the
    loading: pydantic-settings calls the sources highest precedence first, so the first label
    of a setting is the one of the value that wins."""

    def __init__(
        self, inner: PydanticBaseSettingsSource, loading: Loading, describe: Callable[[str], str]
    ) -> None:
        super().__init__(inner.settings_cls)
        self.inner, self.loading, self.describe = inner, loading, describe
        self.__name__ = type(inner).__name__  # its name in pydantic-settings' debug log

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self.inner()
        fields = self.settings_cls.model_fields
        for key in data:
            name = field_of(self.settings_cls, key)
            if name is not None and name not in self.loading.labels:
                self.loading.labels[name] = self.describe(setting_name(name, fields[name]))
        return data


class Environment(EnvSettingsSource):
    """The ``COWORK_*`` variables of a given mapping (``os.environ`` by default).

    Only a setting's variables are read (never its field name), in their order; case matters.
    A blank value of an optional setting counts as unset: the next variable (an alias) or the
    config file decides. :meth:`variable` names the variable each setting was read from.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._read_from: dict[str, str] = {}
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self.environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for variable in env_names(field):
            value = self.environ.get(variable)
            if value is None or (field.default is None and not value.strip()):
                continue
            self._read_from[setting_name(field_name, field)] = variable
            return value, variable, False
        return None, field_name, False

    def variable(self, setting: str) -> str:
        return self._read_from.get(setting, setting)


def given_config_file(
    config_file: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> str | None:
    """``config_file``, else ``$COWORK_CONFIG_FILE`` (none if unset or empty)."""
    if config_file is None:
        return environ.get(CONFIG_FILE_ENV) or None
    return os.fspath(config_file)
