"""Config file sources: TOML, JSON or YAML (by extension), read by pydantic-settings' own
file sources, with every problem a :class:`~cowork.errors.ConfigError` naming the file.

A named file must exist; its top level is a mapping of setting names (an unknown key is an
error, ``null`` values are left out). A YAML syntax error shows its position only, never the
offending line (it may hold a secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from cowork.config.sources import setting_names
from cowork.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_settings.sources.types import Traversable

__all__ = ["config_file_source"]


def _read_checked(
    path: str,
    names: Mapping[str, str],
    read: Callable[[Path | Traversable], dict[str, Any]],
    file_path: Path | Traversable,
    syntax: Callable[[Exception], str | None],
) -> dict[str, Any]:
    """``read(file_path)``, its problems as ConfigError naming ``path``; keys checked."""
    try:
        data: Any = read(file_path)
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except Exception as exc:
        problem = syntax(exc)
        if problem is None:
            raise
        raise ConfigError(f"config file {path} is not valid {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings at the top level")
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(map(repr, unknown))}; "
            f"known settings: {', '.join(names)}"
        )
    return {k: v for k, v in data.items() if v is not None}


def _toml_syntax(exc: Exception) -> str | None:
    import tomllib

    return f"TOML: {exc}" if isinstance(exc, tomllib.TOMLDecodeError) else None


def _json_syntax(exc: Exception) -> str | None:
    import json

    return f"JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else None


def _yaml_syntax(exc: Exception) -> str | None:
    import yaml

    if not isinstance(exc, yaml.YAMLError):
        return None
    # The YAML error text quotes the offending line, which may hold a secret: show position.
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"YAML: {getattr(exc, 'problem', None) or 'syntax error'}{where}"


class _TomlFile(TomlConfigSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str) -> None:
        self.path, self.names = path, setting_names(settings_cls)
        super().__init__(settings_cls, toml_file=Path(path))

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        read = super()._read_file
        return _read_checked(self.path, self.names, read, file_path, _toml_syntax)


class _JsonFile(JsonConfigSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str) -> None:
        self.path, self.names = path, setting_names(settings_cls)
        super().__init__(settings_cls, json_file=Path(path), json_file_encoding="utf-8")

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        read = super()._read_file
        return _read_checked(self.path, self.names, read, file_path, _json_syntax)


class _YamlFile(YamlConfigSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str) -> None:
        self.path, self.names = path, setting_names(settings_cls)
        super().__init__(settings_cls, yaml_file=Path(path), yaml_file_encoding="utf-8")

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        read = super()._read_file
        return _read_checked(self.path, self.names, read, file_path, _yaml_syntax)


_FILE_SOURCES: dict[str, type[_TomlFile | _JsonFile | _YamlFile]] = {
    ".toml": _TomlFile,
    ".json": _JsonFile,
    ".yaml": _YamlFile,
    ".yml": _YamlFile,
}


def config_file_source(settings_cls: type[BaseSettings], path: str) -> PydanticBaseSettingsSource:
    suffix = Path(path).suffix.lower()
    kind = _FILE_SOURCES.get(suffix)
    if kind is None:
        raise ConfigError(
            f"config file {path}: unknown extension {suffix or '(none)'!r}; "
            "use .toml, .json, .yaml or .yml"
        )
    try:  # pydantic-settings skips a missing file: a named one must exist
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return kind(settings_cls, path)
