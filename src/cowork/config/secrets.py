"""``${secret:NAME}`` placeholders in setting values, resolved after the sources are merged.

Only the value that wins is resolved (an overridden placeholder is never looked up), through
the ``secret_provider`` given to :func:`~cowork.config.load_settings`, then the environment
variable ``NAME`` (:class:`cowork._secrets.SecretResolver`). A resolved value is remembered so
that ``Settings.secret_values()`` can mask it, and the setting's value is never shown in an
error message.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic_settings import BaseSettings

from cowork.config.sources import Loading, field_of
from cowork.errors import ConfigError

__all__ = ["SecretProvider", "expand_placeholders"]


class SecretProvider(Protocol):
    """Looks a secret up by name; ``None`` means "not known here" (the environment is next)."""

    def __call__(self, name: str) -> str | None: ...


def expand_placeholders(settings_cls: type[BaseSettings], data: Any) -> Any:
    """``data`` (the merged values, before validation) with its placeholders resolved.

    A value that cannot be resolved is left out and its problem kept in the loading, to be
    reported with every other problem. Outside a resolution (``Settings.__init__``, which
    ``model_validate`` calls too), values are taken as they are.
    """
    loading = Loading.active()
    if loading is None or not isinstance(data, dict):
        return data
    resolver = loading.resolver
    expanded: dict[str, Any] = {}
    for key, value in data.items():
        name = field_of(settings_cls, key)
        if name is None or not isinstance(value, str) or not resolver.has_placeholder(value):
            expanded[key] = value
            continue
        try:
            expanded[key] = resolver.expand(value, loading.label(settings_cls, name))
        except ConfigError as exc:
            loading.problems[name] = str(exc)
            continue
        loading.hidden.add(name)
    return expanded
