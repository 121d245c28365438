"""The migration connection of the PostgreSQL adapter: advisory lock, ledger, per-file apply."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg
import psycopg.errors as pg_errors

from cowork.errors import MigrationError, MigrationLockTimeout
from cowork.redaction import scrub
from cowork.storage.port import AppliedMigration
from cowork.storage.queries import QuerySet
from cowork.storage.sqlsplit import split_statements

if TYPE_CHECKING:
    from psycopg.rows import DictRow

__all__ = ["MIGRATION_LOCK_KEY", "PostgresMigrationSession"]

# pg_advisory_lock key of the migration runner: the ASCII bytes of "cowork:m".
MIGRATION_LOCK_KEY = int.from_bytes(b"cowork:m", "big") & 0x7FFF_FFFF_FFFF_FFFF


class PostgresMigrationSession:
    def __init__(
        self, conn: psycopg.AsyncConnection[DictRow], queries: QuerySet, secrets: tuple[str, ...]
    ) -> None:
        self._conn = conn
        self._queries = queries
        self._secrets = secrets

    async def lock(self, timeout_seconds: float) -> None:
        # lock_timeout bounds the wait; pg_advisory_lock honours it. Session-level lock: held
        # until this dedicated connection closes, released by the server if the process dies.
        millis = max(1, int(timeout_seconds * 1000))
        try:
            await self._conn.execute(f"SET lock_timeout = {millis}".encode())
            await self._conn.execute(self._queries["migration_lock"], {"key": MIGRATION_LOCK_KEY})
            await self._conn.execute(b"SET lock_timeout = 0")
        except pg_errors.LockNotAvailable:
            raise MigrationLockTimeout(
                f"another process held the migration lock for more than {timeout_seconds:g}s; "
                "nothing was applied. Retry, or raise COWORK_MIGRATION_LOCK_TIMEOUT_SECONDS"
            ) from None

    async def ensure_ledger(self) -> None:
        await self._conn.execute(self._queries["ledger_create"])

    async def applied(self) -> list[AppliedMigration]:
        cur = await self._conn.execute(self._queries["ledger_exists"])
        row = await cur.fetchone()
        if row is None or not row["present"]:
            return []
        cur = await self._conn.execute(self._queries["ledger_select"])
        return [
            AppliedMigration(name=r["name"], checksum=r["checksum"], applied_at=r["applied_at"])
            for r in await cur.fetchall()
        ]

    async def apply(self, name: str, sql: str, checksum: str, *, transactional: bool) -> bool:
        started = time.perf_counter()
        try:
            if transactional:
                async with self._conn.transaction():
                    cur = await self._conn.execute(self._queries["ledger_has"], {"name": name})
                    if await cur.fetchone() is not None:
                        return False
                    await self._conn.execute(sql.encode("utf-8"))
                    await self._record(name, checksum, started)
            else:
                for statement in split_statements(sql):
                    await self._conn.execute(statement.encode("utf-8"))
                await self._record(name, checksum, started)
        except psycopg.Error as exc:
            detail = scrub(
                str(exc).strip().splitlines()[0] if str(exc).strip() else "", self._secrets
            )
            raise MigrationError(
                f"migration {name} failed and was rolled back: {detail}"
                if transactional
                else f"migration {name} (non-transactional) failed part-way: {detail}"
            ) from None
        return True

    async def _record(self, name: str, checksum: str, started: float) -> None:
        await self._conn.execute(
            self._queries["ledger_insert"],
            {
                "name": name,
                "checksum": checksum,
                "execution_ms": (time.perf_counter() - started) * 1000,
            },
        )
