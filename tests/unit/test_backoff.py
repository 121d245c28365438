"""The one retry delay (``cowork.kernel.backoff``) and the delays built on it: a consumer's
handler retries, a workflow action's retries. Every delay doubles from its initial value and
never exceeds its cap, jitter included, whatever the attempt number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cowork.consumers.options import ConsumerOptions
from cowork.kernel.backoff import backoff_delay
from cowork.workflows.attempts import backoff_for
from cowork.workflows.definition import ActionStep

attempts = st.integers(min_value=-5, max_value=100_000)
seconds = st.floats(min_value=0.001, max_value=86_400, allow_nan=False)


def test_the_delay_doubles_per_attempt_from_the_initial_one() -> None:
    delays = [backoff_delay(n, initial=0.05, cap=100.0) for n in range(1, 6)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8]


def test_the_delay_stops_at_the_cap() -> None:
    delays = [backoff_delay(n, initial=1.0, cap=5.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("attempt", [0, -3])
def test_an_attempt_below_one_counts_as_the_first(attempt: int) -> None:
    assert backoff_delay(attempt, initial=0.3, cap=10.0) == 0.3


def test_a_huge_attempt_number_gives_the_cap_without_overflowing() -> None:
    assert backoff_delay(10**9, initial=0.001, cap=86_400.0) == 86_400.0
    assert backoff_delay(10**9, initial=0.2, cap=5.0, jitter=0.2) <= 5.0


@given(attempt=attempts, initial=seconds, cap=seconds, jitter=st.floats(0.0, 0.9))
def test_no_delay_exceeds_its_cap(attempt: int, initial: float, cap: float, jitter: float) -> None:
    delay = backoff_delay(attempt, initial=initial, cap=cap, jitter=jitter)
    assert 0.0 <= delay <= cap


@given(attempt=st.integers(1, 40), initial=seconds, cap=seconds)
def test_jitter_stays_within_its_fraction_of_the_capped_delay(
    attempt: int, initial: float, cap: float
) -> None:
    plain = backoff_delay(attempt, initial=initial, cap=cap)
    jittered = backoff_delay(attempt, initial=initial, cap=cap, jitter=0.2)
    assert plain * 0.8 * (1 - 1e-12) <= jittered <= min(cap, plain * 1.2 * (1 + 1e-12))


def test_jitter_spreads_the_delays() -> None:
    delays = {backoff_delay(2, initial=1.0, cap=60.0, jitter=0.2) for _ in range(50)}
    assert len(delays) > 1, "every jittered delay was the same"
    assert all(1.6 <= d <= 2.4 for d in delays), delays


def test_jitter_still_spreads_the_delays_at_the_cap() -> None:
    delays = {backoff_delay(50, initial=1.0, cap=5.0, jitter=0.2) for _ in range(50)}
    assert len(delays) > 1, "delays at the cap lost their jitter"
    assert all(4.0 <= d <= 5.0 for d in delays), delays


# -- durable consumers: handler retries -------------------------------------------------------
@given(attempt=st.integers(1, 1000))
def test_a_consumers_retry_delay_never_exceeds_backoff_max(attempt: int) -> None:
    options = ConsumerOptions(backoff_initial=0.05, backoff_max=0.3)
    assert 0.0 < options.backoff(attempt) <= 0.3


def test_a_consumers_retry_delays_grow_from_backoff_initial_with_jitter() -> None:
    options = ConsumerOptions(backoff_initial=0.1, backoff_max=60.0)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2)]:
        for _ in range(20):
            assert base * 0.8 - 1e-9 <= options.backoff(attempt) <= base * 1.2 + 1e-9


# -- workflow actions: retries --------------------------------------------------------------
def test_an_actions_retry_delay_doubles_from_backoff_seconds() -> None:
    step = ActionStep(name="call", action="call", backoff_seconds=0.5, max_attempts=10)
    assert [backoff_for(step, n) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]


@given(attempt=st.integers(1, 1000), backoff=st.floats(0.0, 86_400, allow_nan=False))
def test_an_actions_retry_delay_is_capped_at_a_day(attempt: int, backoff: float) -> None:
    step = ActionStep(name="call", action="call", backoff_seconds=backoff, max_attempts=1000)
    assert 0.0 <= backoff_for(step, attempt) <= 86_400.0


def test_an_action_without_backoff_is_retried_at_once() -> None:
    step = ActionStep(name="call", action="call", backoff_seconds=0.0)
    assert backoff_for(step, 3) == 0.0
