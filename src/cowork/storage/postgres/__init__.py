"""PostgreSQL adapter (psycopg 3 async + psycopg_pool)."""

from cowork.storage.postgres.adapter import PostgresDatabase

__all__ = ["PostgresDatabase"]

# psycopg's %(name)s placeholders: the shared queries load as written (cowork.storage.queries).
QUERY_PARAMSTYLE = "pyformat"
