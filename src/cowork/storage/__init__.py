"""The storage port and its adapters (PostgreSQL, SQLite, memory)."""
