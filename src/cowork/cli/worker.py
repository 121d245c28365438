"""``cowork worker``: the long-running process."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

import click

from cowork.cli.context import CliContext, pass_cli
from cowork.logs import configure_logging

if TYPE_CHECKING:
    from cowork.runtime.operator import Operator
    from cowork.runtime.worker import Setup


@click.command("worker")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="Serve only these tenants (repeatable; also `cowork --tenant T worker`).",
)
@click.option(
    "--app",
    "app",
    metavar="MODULE:FUNCTION",
    help="Called with each tenant's runtime to register consumers and actions.",
)
@click.option(
    "--log-format",
    type=click.Choice(["plain", "json"]),
    default=None,
    help="Default: COWORK_LOG_FORMAT.",
)
@click.option("--log-level", default=None, help="Default: COWORK_LOG_LEVEL.")
@click.option(
    "--discover-interval",
    default=5.0,
    show_default=True,
    help="Seconds between looks for new tenants (without --tenant).",
)
@pass_cli
def worker_command(
    cli: CliContext,
    tenants: tuple[str, ...],
    app: str | None,
    log_format: str | None,
    log_level: str | None,
    discover_interval: float,
) -> None:
    """Run durable consumers and workflows until SIGTERM/SIGINT (then exit 0)."""
    from cowork.runtime.worker import load_setup, run_worker

    if not tenants and cli.tenant_id:
        tenants = (cli.tenant_id,)  # `cowork --tenant T worker` serves T only, as --tenant T
    settings = cli.run_sync(cli.settings)
    configure_logging(log_level or settings.log_level, log_format or settings.log_format)  # type: ignore[arg-type]
    setup: Setup | None = cli.run_sync(lambda: load_setup(app)) if app else None

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def ready(op: Operator) -> None:
            logging.getLogger("cowork.runtime.worker").info("worker ready: %s", op.display_url)

        await run_worker(
            stop,
            database_url=cli.database_url,
            tenants=tenants,
            setup=setup,
            discover_interval=discover_interval,
            ready=ready,
            config_file=cli.config_file,
        )

    cli.run(run)
