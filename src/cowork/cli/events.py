"""``cowork events tail [--follow] [--type PATTERN]``, ``cowork events export`` and
``cowork events publish``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from cowork.cli.context import CliContext, pass_cli, to_jsonable
from cowork.cli.payload import JSON_PAYLOAD
from cowork.events.envelope import EventEnvelope
from cowork.events.patterns import EventPattern

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from cowork.runtime import Runtime

# Rows per backward page when a --type pattern filters them (an unfiltered tail reads exactly
# the rows it prints).
TAIL_PAGE = 1000


def _line(event: EventEnvelope) -> str:
    payload = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    if len(payload) > 120:
        payload = payload[:119] + "…"
    stamp = event.recorded_at.isoformat(timespec="milliseconds")
    return f"{event.position:>8}  {stamp}  {event.event_type:<32} {payload}"


@click.group("events")
def events_group() -> None:
    """Read and publish events."""


@events_group.command("tail")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until stopped.")
@click.option("--type", "pattern", default="*", show_default=True, help="Event pattern.")
@click.option("--limit", "-n", default=20, show_default=True, help="How many past events.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between reads with -f.")
@pass_cli
def tail_command(cli: CliContext, follow: bool, pattern: str, limit: int, poll: float) -> None:
    """The last events (oldest first), optionally following new ones.

    The log is read backwards from its end, so a tail is quick however long the log is; a
    long search (a rare --type) shows its progress on stderr. Ctrl-C (SIGINT) or SIGTERM
    ends it with exit code 0."""
    if limit < 0:
        raise click.BadParameter("--limit must be >= 0")

    async def run() -> None:
        stop = _stop_on_signals()
        matcher = EventPattern.parse(pattern)
        async with await cli.runtime() as rt:
            recent, last = await _last_matching(cli, rt, matcher, limit, stop, head=follow)
            if stop.is_set():
                return
            for event in recent:
                _emit(cli, event)
            while follow and not stop.is_set():
                page = await rt.events.read(after=last, limit=1000)
                for event in page:
                    last = event
                    if matcher.matches(event.event_type):
                        _emit(cli, event)
                if not page:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), poll)

    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before the loop listens for it
        cli.run(run)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: a tail stopped either way exits 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _last_matching(
    cli: CliContext,
    rt: Runtime,
    matcher: EventPattern,
    limit: int,
    stop: asyncio.Event,
    *,
    head: bool,
) -> tuple[list[EventEnvelope], EventEnvelope | None]:
    """The last ``limit`` events that match (oldest first), read page by page backwards from
    the end of the log, and (with ``head``) the newest event of the log, where following
    starts. Stops early when ``stop`` is set."""
    if limit == 0 and not head:
        return [], None
    # Unfiltered (or -n 0, which only needs the newest event to follow on from), a page holds
    # exactly the rows wanted; a pattern may skip many rows, so it reads bigger pages.
    filtered = matcher.text != "*" and limit > 0
    page_size = TAIL_PAGE if filtered else max(1, min(limit, TAIL_PAGE))
    found: list[EventEnvelope] = []  # newest first
    newest: EventEnvelope | None = None
    before: EventEnvelope | None = None
    scanned = 0
    progress: tuple[Progress, TaskID] | None = None
    try:
        while not stop.is_set():
            page = await rt.events.read_before(before=before, limit=page_size)
            if newest is None and page:
                newest = page[-1]
            scanned += len(page)
            for event in reversed(page):
                if len(found) == limit:
                    break
                if matcher.matches(event.event_type):
                    found.append(event)
            if len(found) == limit or len(page) < page_size:
                break
            before = page[0]
            if progress is None:
                progress = _progress(cli, limit)
            bar, task = progress
            bar.update(
                task,
                completed=len(found),
                description=f"reading the log backwards: {scanned} events, "
                f"before position {before.position}",
            )
    finally:
        if progress is not None:
            progress[0].stop()
    return found[::-1], newest


def _progress(cli: CliContext, total: int) -> tuple[Progress, TaskID]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=cli.err_console,
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("reading the log backwards", total=total)


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
    from rich.progress import Progress

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


@events_group.command("publish")
@click.argument("event_type")
@click.argument("payload", type=JSON_PAYLOAD, default="{}", required=False)
@click.option("--aggregate-type", help="What the event is about (e.g. order).")
@click.option("--aggregate-id", help="Which one (e.g. the order id).")
@click.option("--correlation-id")
@click.option("--causation-id")
@click.option(
    "--event-id", help="Idempotency key: publishing the same id again returns the stored event."
)
@pass_cli
def publish_command(
    cli: CliContext,
    event_type: str,
    payload: Any,
    aggregate_type: str | None,
    aggregate_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    event_id: str | None,
) -> None:
    """Append one event; PAYLOAD is a JSON object, @FILE, or - (standard input)."""
    if not isinstance(payload, dict):
        raise click.BadParameter(
            f"must be a JSON object ({{...}}), got {type(payload).__name__}", param_hint="PAYLOAD"
        )

    async def run() -> EventEnvelope:
        async with await cli.runtime() as rt:
            return await rt.events.publish(
                event_type,
                payload,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                correlation_id=correlation_id,
                causation_id=causation_id,
                event_id=event_id,
            )

    event = cli.run(run)
    if cli.as_json:
        cli.emit_json(event)
    else:
        cli.console.print(
            f"published {event.event_type} at position {event.position} ({event.event_id})"
        )
