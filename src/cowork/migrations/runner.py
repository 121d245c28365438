"""The migration runner.

Files are ``NNNN_description.sql`` in ``cowork/storage/<backend>/migrations`` (shipped in the
package), applied in name order, each in its own transaction, and recorded in the ledger
``cowork_migrations`` with the SHA-256 of their text after line endings are normalised to LF
(so a CRLF checkout of the same file is the same migration).

The runner refuses to go on, naming the file, when an applied file was edited, an applied file
is missing, or a new file sorts before the last applied one; it never edits history. Concurrent
runners serialise on a lock (a PostgreSQL advisory lock; SQLite's write lock per file) and fail
closed when the lock is not acquired in time.

A file whose first lines contain ``-- cowork:no-transaction`` runs outside a transaction (for
``CREATE INDEX CONCURRENTLY``); such a file should hold statements that are safe to re-run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from cowork.errors import MigrationIntegrityError
from cowork.storage.port import AppliedMigration, Backend, Database

__all__ = [
    "NO_TRANSACTION_MARKER",
    "MigrationFile",
    "MigrationReport",
    "checksum",
    "discover",
    "migrate",
    "normalise",
    "plan",
]

NO_TRANSACTION_MARKER = "-- cowork:no-transaction"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_MARKER_SCAN_LINES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationFile:
    name: str
    sql: str
    checksum: str
    transactional: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationReport:
    """What a run found and did."""

    backend: Backend
    applied_now: tuple[str, ...] = ()
    already_applied: tuple[str, ...] = ()
    pending: tuple[str, ...] = field(default=())

    @property
    def up_to_date(self) -> bool:
        return not self.pending

    @property
    def schema_version(self) -> str | None:
        names = (*self.already_applied, *self.applied_now)
        return max(names) if names else None


def normalise(text: str) -> str:
    """Line endings to LF: the form that is hashed and executed."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def _source_dir(backend: Backend) -> Traversable:
    package = {"postgresql": "postgres", "sqlite": "sqlite"}[backend]
    return resources.files(f"cowork.storage.{package}").joinpath("migrations")


def discover(backend: Backend, directory: str | Path | None = None) -> list[MigrationFile]:
    """The migration files of a backend (or of ``directory``), in name order."""
    source: Traversable = Path(directory) if directory is not None else _source_dir(backend)
    files: list[MigrationFile] = []
    for entry in source.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        if not _FILE_NAME.match(entry.name):
            raise MigrationIntegrityError(
                f"migration file {entry.name} is not named NNNN_description.sql "
                "(four digits, underscore, lowercase words); rename it"
            )
        text = normalise(entry.read_bytes().decode("utf-8"))
        head = text.splitlines()[:_MARKER_SCAN_LINES]
        files.append(
            MigrationFile(
                name=entry.name,
                sql=text,
                checksum=checksum(text),
                transactional=not any(line.strip() == NO_TRANSACTION_MARKER for line in head),
            )
        )
    files.sort(key=lambda f: f.name)
    numbers = [f.name[:4] for f in files]
    for number in set(numbers):
        if numbers.count(number) > 1:
            clash = ", ".join(f.name for f in files if f.name.startswith(number))
            raise MigrationIntegrityError(f"two migration files share number {number}: {clash}")
    return files


def plan(
    files: Sequence[MigrationFile], applied: Iterable[AppliedMigration]
) -> list[MigrationFile]:
    """The files still to apply; raises MigrationIntegrityError if history and files disagree."""
    by_name = {f.name: f for f in files}
    applied_list = sorted(applied, key=lambda a: a.name)
    for row in applied_list:
        file = by_name.get(row.name)
        if file is None:
            raise MigrationIntegrityError(
                f"migration {row.name} is recorded as applied but its file is missing; "
                "restore the file (migrations are never deleted)"
            )
        if file.checksum != row.checksum:
            raise MigrationIntegrityError(
                f"migration {row.name} was edited after it was applied (checksum "
                f"{row.checksum[:12]}… recorded, {file.checksum[:12]}… on disk); restore the "
                "original and put the change in a new migration file"
            )
    applied_names = {row.name for row in applied_list}
    pending = [f for f in files if f.name not in applied_names]
    if applied_list and pending:
        last = applied_list[-1].name
        early = [f.name for f in pending if f.name < last]
        if early:
            raise MigrationIntegrityError(
                f"migration {early[0]} is new but sorts before {last}, which is already "
                "applied; renumber it after the last applied migration"
            )
    return pending


async def migrate(
    db: Database,
    *,
    directory: str | Path | None = None,
    lock_timeout_seconds: float = 60.0,
    check_only: bool = False,
) -> MigrationReport:
    """Apply pending migrations (or, with ``check_only``, report them without applying)."""
    files = discover(db.backend, directory)
    async with db.migration_session() as session:
        if check_only:
            applied = await session.applied()
            pending = plan(files, applied)
            return MigrationReport(
                backend=db.backend,
                already_applied=tuple(a.name for a in applied),
                pending=tuple(f.name for f in pending),
            )
        await session.lock(lock_timeout_seconds)
        await session.ensure_ledger()
        applied = await session.applied()
        pending = plan(files, applied)
        done: list[str] = []
        for file in pending:
            if await session.apply(
                file.name, file.sql, file.checksum, transactional=file.transactional
            ):
                done.append(file.name)
        return MigrationReport(
            backend=db.backend,
            applied_now=tuple(done),
            already_applied=tuple(a.name for a in applied),
        )
