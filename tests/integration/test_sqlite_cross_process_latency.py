"""On SQLite a durable consumer in another process learns of a commit by polling: every event
reaches it, within about one poll interval (the figure in docs/performance.md comes from
``python -m tests.support.sqlite_latency --events 50``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.sqlite_latency import measure

pytestmark = pytest.mark.slow


async def test_another_process_handles_each_event_within_about_a_poll(tmp_path: Path) -> None:
    poll = 0.25
    result = await measure(20, poll, (0.02, 0.3), tmp_path)
    # Polling, not wake-ups: some events wait most of an interval (no cross-process signal).
    assert result["max_ms"] > 0.5 * poll * 1000
    # Bounded by the interval plus the read and handler; generous for a loaded machine.
    assert result["max_ms"] < (poll + 1.0) * 1000, result
    assert result["p50_ms"] < (poll + 0.25) * 1000, result
