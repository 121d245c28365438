"""SQLite adapter (embedded default and ``memory://``)."""

from cowork.storage.sqlite.adapter import SqliteDatabase
from cowork.storage.sqlite.url import MEMORY, sqlite_path_from_url

__all__ = ["MEMORY", "SqliteDatabase", "sqlite_path_from_url"]

# sqlite3's :name placeholders: the shared queries are converted at load (cowork.storage.queries).
QUERY_PARAMSTYLE = "named"
