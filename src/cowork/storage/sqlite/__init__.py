"""SQLite adapter (embedded default and ``memory://``)."""

from cowork.storage.sqlite.adapter import SqliteDatabase

__all__ = ["SqliteDatabase"]
