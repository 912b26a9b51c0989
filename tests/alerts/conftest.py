"""Fixtures for the on-call tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.support.alertmanager import AlertmanagerServer
from tests.support.alerts import Receiver
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP receiver that records every POST."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    """A real Alertmanager per test (both backends produce the same dedup keys)."""
    with AlertmanagerServer() as server:
        yield server


@pytest.fixture
def past_clock() -> FrozenClock:
    """Frozen time safely before the wall clock (Alertmanager judges endsAt by real time)."""
    return FrozenClock(dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def tokyo_config(db_url: str) -> Config:
    """Default configuration, displayed in Asia/Tokyo."""
    return parse_config({"database": {"url": db_url}, "display": {"timezone": "Asia/Tokyo"}},
                        environ={})
