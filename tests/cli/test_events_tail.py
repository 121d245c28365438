"""``cowork events tail`` reads the log backwards from its end (a tail of a long log
reads only the rows it prints), shows the progress of a long search on stderr, and exits 0 on
SIGTERM as on SIGINT."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import cowork
import cowork.events.log
from cowork import NewEvent
from tests.cli.support import ROOT, TENANT, WIDE, invoke, ok

EVENTS = 3000
RARE_AT = (100, 1200)  # the indexes of the two rare:hit events among the bulk:tick ones


async def _long_log(url: str) -> list[int]:
    """EVENTS events for the tenant (and a few of another one); their positions, in order."""
    events = [
        NewEvent(event_type="rare:hit" if i in RARE_AT else "bulk:tick", payload={"i": i})
        for i in range(EVENTS)
    ]
    async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
        positions = []
        for start in range(0, EVENTS, 1000):
            positions += [
                e.position for e in await rt.events.publish_many(events[start : start + 1000])
            ]
        await rt.for_tenant("zeta").events.publish("bulk:tick", {"i": -1})
    return positions


@pytest.fixture
def long_log(database_url: str) -> tuple[str, list[int]]:
    return database_url, asyncio.run(_long_log(database_url))


def positions_of(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines()]


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many event rows the command in this process decoded from the database."""
    count = 0
    real = cowork.events.log.envelope_from_row

    def counting(row: Any) -> cowork.EventEnvelope:
        nonlocal count
        count += 1
        return real(row)

    monkeypatch.setattr(cowork.events.log, "envelope_from_row", counting)
    return lambda: count


def test_tail_reads_only_the_end_of_a_long_log(
    long_log: tuple[str, list[int]], rows_read: Callable[[], int]
) -> None:
    url, positions = long_log
    out = ok(invoke(url, "events", "tail", "-n", "5"))
    assert positions_of(out) == positions[-5:]
    assert [line.split()[2] for line in out.splitlines()] == ["bulk:tick"] * 5
    assert rows_read() == 5  # not the EVENTS rows of a read from the start

    everything = ok(invoke(url, "events", "tail", "-n", str(EVENTS + 10)))
    assert positions_of(everything) == positions  # several pages back, in order, no duplicate


def test_tail_with_a_pattern_pages_back_to_the_matches(
    long_log: tuple[str, list[int]], rows_read: Callable[[], int]
) -> None:
    url, positions = long_log
    newest = ok(invoke(url, "events", "tail", "--type", "rare:hit", "-n", "1"))
    assert positions_of(newest) == [positions[RARE_AT[1]]]
    # Pages of 1000 back to the newest match, and no further.
    assert rows_read() == 2000 < EVENTS
    out = ok(invoke(url, "events", "tail", "--type", "rare:hit", "-n", "2"))
    assert positions_of(out) == [positions[i] for i in RARE_AT]
    assert ok(invoke(url, "events", "tail", "--type", "none:such", "-n", "3")) == ""


def test_a_long_search_shows_progress_on_stderr(long_log: tuple[str, list[int]]) -> None:
    """On a terminal (forced here), paging back through the log shows a progress line on
    stderr; stdout holds the events only."""
    url, positions = long_log
    result = subprocess.run(
        [sys.executable, "-m", "cowork", "--database-url", url, "--tenant", TENANT,
         "events", "tail", "--type", "rare:hit", "-n", "2"],
        cwd=ROOT,
        env={**os.environ, **WIDE, "TERM": "xterm", "TTY_COMPATIBLE": "1",
             "TTY_INTERACTIVE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert positions_of(result.stdout) == [positions[i] for i in RARE_AT]
    assert "reading the log backwards" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_before_pages_back_to_the_start(long_log: tuple[str, list[int]]) -> None:
    """The service call the tail uses: pages of the newest events before a cursor, each in
    commit order, down to an empty page at the start; ``before`` may be a position."""
    url, positions = long_log

    async def pages() -> tuple[list[int], list[int], list[int]]:
        async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
            seen: list[int] = []
            before = None
            while True:
                page = await rt.events.read_before(before=before, limit=700)
                if not page:
                    break
                assert [e.position for e in page] == sorted(e.position for e in page)
                seen = [e.position for e in page] + seen
                before = page[0]
            by_position = await rt.events.read_before(before=positions[10], limit=3)
            at_start = await rt.events.read_before(before=positions[0], limit=3)
        return seen, [e.position for e in by_position], [e.position for e in at_start]

    seen, by_position, at_start = asyncio.run(pages())
    assert seen == positions  # every event of the tenant once, none of the other tenant's
    assert by_position == positions[7:10]
    assert at_start == []


def _follow(url: str, stop: signal.Signals) -> tuple[int, str]:
    """Start ``events tail -f``, wait for its first line, send ``stop``; (exit code, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cowork", "--database-url", url, "--tenant", TENANT,
         "events", "tail", "--follow", "-n", "1", "--poll", "0.1"],
        cwd=ROOT,
        env={**os.environ, **WIDE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert first.split()[2] == "bulk:tick"
        process.send_signal(stop)
        code = process.wait(timeout=15)
        return code, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_following_tail_exits_0_on_sigterm_and_sigint(
    long_log: tuple[str, list[int]], stop: signal.Signals
) -> None:
    code, stderr = _follow(long_log[0], stop)
    assert code == 0, stderr
    assert "Traceback" not in stderr
