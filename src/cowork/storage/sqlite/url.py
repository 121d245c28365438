"""SQLite database URLs, read by SQLAlchemy's rule.

=========================================  ===============================================
URL                                        database file
=========================================  ===============================================
``sqlite:////var/lib/cowork/cowork.db``    ``/var/lib/cowork/cowork.db`` (absolute: four
                                           slashes, the fourth starts the path)
``sqlite:///cowork.db``                    ``cowork.db`` in the current directory
``sqlite:///data/cowork.db``               ``data/cowork.db`` under the current directory
``sqlite://``, ``sqlite:///:memory:``      none: in memory, like ``memory://``
=========================================  ===============================================

The path is what follows ``sqlite:///``, taken literally: no ``~`` expansion and no
percent-decoding. Anything between ``sqlite://`` and that third slash (a host, a user, a port) is
an error, as in SQLAlchemy; so is a query string, because no ``?option`` is read here and a
dropped option would go unnoticed. The parent directory of the file must exist (the adapter
checks when it opens); only the default data directory is created.
"""

from __future__ import annotations

from cowork.errors import ConfigError

__all__ = ["MEMORY", "sqlite_path_from_url"]

MEMORY = ":memory:"
_FORMS = "sqlite:///relative/to/cwd.db, sqlite:////absolute/path.db or memory://"


def sqlite_path_from_url(url: str) -> str:
    """The file path of a ``sqlite://`` URL as written (relative paths stay relative), or
    :data:`MEMORY` for ``memory://``, ``sqlite://`` and ``sqlite:///:memory:``.

    Raises :class:`~cowork.errors.ConfigError` for a URL of another form.
    """
    if url.startswith("memory://"):
        return MEMORY
    if not url.startswith("sqlite://"):
        raise ConfigError(f"not a SQLite URL; use {_FORMS}")
    rest = url[len("sqlite://") :]
    if not rest:
        return MEMORY
    if not rest.startswith("/"):
        # The text may be user:password@host: never repeat it.
        raise ConfigError(
            "a SQLite URL has no host, user or port: the path starts after the third slash; "
            f"use {_FORMS}"
        )
    path = rest[1:]
    if "?" in path:
        raise ConfigError(
            f"a SQLite URL takes no query string (no '?option' is read); remove it and use {_FORMS}"
        )
    if not path or path == MEMORY:
        return MEMORY
    return path
