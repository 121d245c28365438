"""Loading settings in tests: from a given environment only (never the process's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from cowork.config import Settings, load_settings
from cowork.errors import ConfigError


def load(env: Mapping[str, str] | None = None, **kwargs: Any) -> Settings:
    return load_settings(environ=dict(env or {}), **kwargs)


def config_error(env: Mapping[str, str] | None = None, **kwargs: Any) -> str:
    """The message of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        load(env, **kwargs)
    return str(info.value)
