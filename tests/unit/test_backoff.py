"""The one backoff (``watchdog.backoff``) and the three waits built on it.

Attempts mean tries, the first included, everywhere: after ``n`` failed tries the
next waits ``base · 2^(n - 1)``, capped; jitter comes from an injected random.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from watchdog.alerts.sender import backoff as delivery_backoff
from watchdog.alerts.settings import AlertSettings
from watchdog.backoff import delay
from watchdog.providers.retry import MAX_DELAY, retry_delay
from watchdog.scan.pacing import backoff as row_backoff


def test_doubles_from_base_after_each_failed_try() -> None:
    assert [delay(n, 0.5, 100.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_no_try_yet_waits_base() -> None:
    assert delay(0, 2.0, 100.0) == 2.0


def test_cap_holds_at_the_edge_and_far_beyond() -> None:
    assert delay(4, 1.0, 8.0) == 8.0  # exactly the cap
    assert delay(5, 1.0, 8.0) == 8.0  # one past
    assert delay(10_000, 1.0, 8.0) == 8.0  # no overflow however many tries
    assert delay(1, 20.0, 8.0) == 8.0  # a base above the cap is capped too


def test_retry_after_wins_when_longer_even_past_the_cap() -> None:
    assert delay(1, 1.0, 8.0, retry_after=3.0) == 3.0
    assert delay(1, 1.0, 8.0, retry_after=60.0) == 60.0
    assert delay(3, 1.0, 8.0, retry_after=0.5) == 4.0  # shorter: ours


def test_jitter_takes_off_up_to_its_fraction_by_the_injected_random() -> None:
    assert delay(3, 1.0, 100.0, jitter=0.5, rand=lambda: 0.0) == 4.0
    assert delay(3, 1.0, 100.0, jitter=0.5, rand=lambda: 0.5) == 3.0
    assert delay(3, 1.0, 100.0, jitter=1.0, rand=lambda: 0.75) == 1.0
    assert delay(3, 1.0, 100.0, jitter=1.0, rand=lambda: 0.75, retry_after=2.5) == 2.5


def test_no_jitter_never_asks_the_random() -> None:
    def forbidden() -> float:
        raise AssertionError("rand called without jitter")

    assert delay(2, 1.0, 100.0, rand=forbidden) == 2.0


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_outside_zero_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        delay(1, 1.0, 2.0, jitter=jitter)


# --------------------------------------------------------------------------- the three waits


def test_provider_retry_waits_are_seconds_capped_at_max_delay() -> None:
    assert [retry_delay(n, 0.5, None) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(1, 0.5, 9.0) == 9.0
    assert retry_delay(50, 0.5, None) == MAX_DELAY
    assert retry_delay(1, 0.5, 10 * MAX_DELAY) == MAX_DELAY


def test_row_waits_30s_doubling_to_an_hour_never_before_retry_after() -> None:
    seconds = [row_backoff(n, None).total_seconds() for n in (0, 1, 2, 3, 7, 8, 100)]
    assert seconds == [30, 30, 60, 120, 1920, 3600, 3600]
    assert row_backoff(1, 7200.7) == dt.timedelta(seconds=7200)  # whole seconds, uncapped
    assert row_backoff(3, 10.0) == dt.timedelta(seconds=120)


def test_delivery_waits_follow_the_alert_settings() -> None:
    settings = AlertSettings()  # 15 s doubling, at most 10 minutes
    waits = [delivery_backoff(settings, n) for n in (0, 1, 2, 3, 6, 32, 1000)]
    assert waits == [dt.timedelta(seconds=s) for s in (15, 15, 30, 60, 480, 600, 600)]
    odd = dataclasses.replace(settings, backoff=dt.timedelta(milliseconds=1500),
                              max_backoff=dt.timedelta(seconds=5))
    assert [delivery_backoff(odd, n) for n in (1, 2, 3)] == [
        dt.timedelta(seconds=1.5), dt.timedelta(seconds=3), dt.timedelta(seconds=5)]
