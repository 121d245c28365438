"""Hostile-input suite: prints how many cases each service got on each backend."""

from __future__ import annotations

import pytest

from tests.hostile.harness import RUN_COUNTS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hypothesis draws in a worker thread while the event loop thread runs the runtime, whose
    # retry jitter uses ``random``; hypothesis mistakes that for a strategy using ``random``.
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:Do not use the `random` module inside strategies"
                    ":hypothesis.errors.HypothesisDeprecationWarning"
                )
            )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUN_COUNTS:
        return
    terminalreporter.section("hostile input: generated cases")
    for (service, backend), counts in sorted(RUN_COUNTS.items()):
        outcomes = ", ".join(
            f"{name}={n}"
            for name, n in sorted(counts.items())
            if name not in ("cases", "seconds", "seconds in calls", "calls")
        )
        terminalreporter.write_line(
            f"{service:<11} {backend:<10} cases={counts['cases']:>5} calls={counts['calls']:>5} "
            f"time={counts['seconds']}s (in calls {counts['seconds in calls']}s)  {outcomes}"
        )
