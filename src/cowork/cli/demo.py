"""``cowork demo``."""

from __future__ import annotations

import click

from cowork.cli.context import CliContext, pass_cli
from cowork.demo.scenario import run_demo


@click.command("demo")
@pass_cli
def demo_command(cli: CliContext) -> None:
    """Show the whole system on the configured database (default: the embedded SQLite file)."""
    settings = cli.run_sync(cli.settings)
    url = settings.effective_database_url()
    cli.run(lambda: run_demo(url, cli.console))
