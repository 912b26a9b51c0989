"""The one place that reads the time. Everything else takes ``now`` as an argument."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    """A source of aware UTC instants."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        """Return the current instant as an aware UTC datetime."""
        return dt.datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = ensure_utc(start, "start")

    def now(self) -> dt.datetime:
        """Return the frozen instant."""
        return self._now

    def set(self, instant: dt.datetime) -> None:
        """Jump to ``instant``."""
        self._now = ensure_utc(instant, "instant")

    def advance(self, delta: dt.timedelta) -> None:
        """Move forward by ``delta``."""
        self._now = self._now + delta


def ensure_utc(value: dt.datetime, field: str) -> dt.datetime:
    """Return ``value`` in UTC; a naive datetime is refused because its zone is a guess."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{field} must carry a time-zone offset, got naive {value.isoformat()}")
    return value.astimezone(UTC)


SYSTEM_CLOCK = SystemClock()
