"""``cowork demo [--tenant NAME]``."""

from __future__ import annotations

import click

from cowork.cli.context import CliContext, pass_cli


@click.command("demo")
@pass_cli
def demo_command(cli: CliContext) -> None:
    """Show the whole system on the configured database (default: the embedded SQLite file).

    Each run uses a new tenant unless --tenant names one: `cowork demo --tenant NAME` runs it
    again in that tenant. At the end the demo prints its tenant and the commands that inspect
    it."""
    from cowork.demo.scenario import run_demo
    from cowork.redaction import redact_url

    settings = cli.run_sync(cli.settings)
    url = settings.effective_database_url()
    # The options the inspection commands need to find the same data (a password masked).
    options: list[str] = []
    if cli.database_url:
        options += ["--database-url", redact_url(cli.database_url)]
    if cli.config_file:
        options += ["--config", cli.config_file]
    cli.run(lambda: run_demo(url, cli.console, tenant=cli.tenant_id, cli_options=options))
