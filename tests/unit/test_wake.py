"""The daemon's next wake-up: the earliest work, clipped to [min sleep, scan_interval]."""

from __future__ import annotations

import datetime as dt

from watchdog.scheduler import MIN_SLEEP, next_wake

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
INTERVAL = dt.timedelta(minutes=5)


def test_nothing_planned_sleeps_the_whole_interval() -> None:
    assert next_wake(NOW, None, INTERVAL) == NOW + INTERVAL


def test_work_between_two_ticks_gets_a_pass_at_its_instant() -> None:
    assert next_wake(NOW, NOW + 30 * SECOND, INTERVAL) == NOW + 30 * SECOND


def test_never_sooner_than_the_min_sleep() -> None:
    assert next_wake(NOW, NOW - SECOND, INTERVAL) == NOW + MIN_SLEEP  # overdue
    assert next_wake(NOW, NOW + MIN_SLEEP - SECOND, INTERVAL) == NOW + MIN_SLEEP
    assert next_wake(NOW, NOW + MIN_SLEEP, INTERVAL) == NOW + MIN_SLEEP
    assert next_wake(NOW, NOW + MIN_SLEEP + SECOND, INTERVAL) == NOW + MIN_SLEEP + SECOND


def test_never_later_than_the_interval() -> None:
    assert next_wake(NOW, NOW + INTERVAL - SECOND, INTERVAL) == NOW + INTERVAL - SECOND
    assert next_wake(NOW, NOW + INTERVAL, INTERVAL) == NOW + INTERVAL
    assert next_wake(NOW, NOW + INTERVAL + SECOND, INTERVAL) == NOW + INTERVAL


def test_an_interval_shorter_than_the_min_sleep_wins() -> None:
    assert next_wake(NOW, NOW, SECOND) == NOW + SECOND
