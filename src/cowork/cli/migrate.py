"""``cowork migrate [--check]``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cowork.cli import exit_codes
from cowork.cli.context import CliContext, pass_cli

if TYPE_CHECKING:
    from cowork.migrations import MigrationReport


async def _run(cli: CliContext, check: bool) -> tuple[str, MigrationReport]:
    from cowork.migrations import migrate
    from cowork.runtime.factory import create_database

    settings = cli.settings()
    db = create_database(settings.effective_database_url(), settings)
    await db.open()
    try:
        report = await migrate(
            db,
            check_only=check,
            lock_timeout_seconds=settings.migration_lock_timeout_seconds,
        )
    finally:
        await db.close()
    return db.display_url, report


@click.command("migrate")
@click.option(
    "--check", is_flag=True, help="Apply nothing; exit 4 if anything is pending or wrong."
)
@pass_cli
def migrate_command(cli: CliContext, check: bool) -> None:
    """Apply pending schema migrations (forward-only, checksummed)."""
    url, report = cli.run(lambda: _run(cli, check))
    if cli.as_json:
        cli.emit_json(
            {
                "database": url,
                "backend": report.backend,
                "applied_now": list(report.applied_now),
                "already_applied": list(report.already_applied),
                "pending": list(report.pending),
                "schema_version": report.schema_version,
                "up_to_date": report.up_to_date,
            }
        )
    elif check:
        if report.pending:
            cli.console.print(f"{url}: {len(report.pending)} pending: {', '.join(report.pending)}")
        else:
            cli.console.print(f"{url}: up to date ({report.schema_version})")
    else:
        for name in report.applied_now:
            cli.console.print(f"applied {name}")
        cli.console.print(f"{url}: schema at {report.schema_version} ({report.backend})")
    if check and report.pending:
        sys.exit(exit_codes.MIGRATIONS)
