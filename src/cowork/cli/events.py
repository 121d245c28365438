"""``cowork events tail [--follow] [--type PATTERN]`` and ``cowork events export``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import click
from rich.progress import Progress

from cowork.cli.context import CliContext, pass_cli, to_jsonable
from cowork.events.envelope import EventEnvelope
from cowork.events.patterns import EventPattern


def _line(event: EventEnvelope) -> str:
    payload = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    if len(payload) > 120:
        payload = payload[:119] + "…"
    stamp = event.recorded_at.isoformat(timespec="milliseconds")
    return f"{event.position:>8}  {stamp}  {event.event_type:<32} {payload}"


@click.group("events")
def events_group() -> None:
    """Read the event log."""


@events_group.command("tail")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--type", "pattern", default="*", show_default=True, help="Event pattern.")
@click.option("--limit", "-n", default=20, show_default=True, help="How many past events.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between reads with -f.")
@pass_cli
def tail_command(cli: CliContext, follow: bool, pattern: str, limit: int, poll: float) -> None:
    """The last events (oldest first), optionally following new ones."""
    if limit < 0:
        raise click.BadParameter("--limit must be >= 0")

    async def run() -> None:
        matcher = EventPattern.parse(pattern)
        async with await cli.runtime() as rt:
            recent: list[EventEnvelope] = []
            last: EventEnvelope | None = None
            async for event in rt.events.iterate(page_size=1000):
                last = event
                if matcher.matches(event.event_type):
                    recent.append(event)
                    if len(recent) > limit:
                        recent.pop(0)
            for event in recent:
                _emit(cli, event)
            while follow:
                page = await rt.events.read(after=last, limit=1000)
                for event in page:
                    last = event
                    if matcher.matches(event.event_type):
                        _emit(cli, event)
                if not page:
                    await asyncio.sleep(poll)

    with contextlib.suppress(KeyboardInterrupt):
        cli.run(run)


def _emit(cli: CliContext, event: EventEnvelope) -> None:
    if cli.as_json:
        click.echo(json.dumps(to_jsonable(event), default=str, ensure_ascii=False))
    else:
        click.echo(_line(event))
    sys.stdout.flush()


@events_group.command("export")
@click.option("--type", "pattern", default="*", show_default=True, help="Event pattern.")
@pass_cli
def export_command(cli: CliContext, pattern: str) -> None:
    """Every event as JSON lines on stdout (a progress bar on stderr)."""

    async def run() -> int:
        matcher = EventPattern.parse(pattern)
        written = 0
        async with await cli.runtime() as rt:
            total = await rt.events.count()
            with Progress(console=cli.err_console, transient=True) as progress:
                task = progress.add_task("exporting", total=total)
                async for event in rt.events.iterate(page_size=1000):
                    progress.advance(task)
                    if matcher.matches(event.event_type):
                        click.echo(json.dumps(to_jsonable(event), default=str, ensure_ascii=False))
                        written += 1
        return written

    written = cli.run(run)
    cli.err_console.print(f"exported {written} events")
