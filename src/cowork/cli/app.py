"""The ``cowork`` command group and its global options."""

from __future__ import annotations

import logging

import click
from rich.console import Console

from cowork import __version__
from cowork.cli.blackboard import blackboard_group
from cowork.cli.consumers import consumers_group
from cowork.cli.context import CliContext
from cowork.cli.demo import demo_command
from cowork.cli.events import events_group
from cowork.cli.migrate import migrate_command
from cowork.cli.release import release_check_command
from cowork.cli.status import status_command
from cowork.cli.worker import worker_command
from cowork.cli.workflow import workflow_group
from cowork.cli.workspace import workspace_group

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    metavar="URL",
    help="postgresql://…, sqlite:///path or memory:// (default: COWORK_DATABASE_URL, "
    "else the embedded SQLite file).",
)
@click.option("--config", "config_file", metavar="FILE", help="TOML, JSON or YAML config file.")
@click.option("--tenant", "tenant_id", metavar="ID", help="Tenant to act for (COWORK_TENANT_ID).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.version_option(__version__, prog_name="cowork")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    config_file: str | None,
    tenant_id: str | None,
    as_json: bool,
) -> None:
    """Cowork foundation: durable workspaces, blackboard, event log and workflows."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(
        database_url=database_url,
        config_file=config_file,
        tenant_id=tenant_id,
        as_json=as_json,
        console=Console(),
        err_console=Console(stderr=True),
    )


for _command in (
    demo_command,
    migrate_command,
    status_command,
    worker_command,
    workspace_group,
    blackboard_group,
    events_group,
    consumers_group,
    workflow_group,
    release_check_command,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="cowork")
