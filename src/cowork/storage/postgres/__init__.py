"""PostgreSQL adapter (psycopg 3 async + psycopg_pool)."""

from cowork.storage.postgres.adapter import PostgresDatabase

__all__ = ["PostgresDatabase"]
