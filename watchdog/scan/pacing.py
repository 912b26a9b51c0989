"""How long a row waits after a failure, and when repeated failures page someone."""

from __future__ import annotations

import datetime as dt

from watchdog import backoff as backoffs

FAILURES_BEFORE_ALERT = 3
FIRST_WAIT = 30.0  # seconds before a row is tried again after its first failed try
LONGEST_WAIT = 3600.0  # a failing row is still tried at least hourly


def backoff(attempts: int, retry_after: float | None) -> dt.timedelta:
    """How long a row waits after ``attempts`` failed tries (``watchdog.backoff``): 30 s
    doubling per try, capped at an hour; never sooner than the provider's Retry-After
    (in whole seconds)."""
    floor = None if retry_after is None else float(int(retry_after))
    return dt.timedelta(seconds=backoffs.delay(attempts, FIRST_WAIT, LONGEST_WAIT,
                                               retry_after=floor))
