"""How long a row waits after a failure, and when repeated failures page someone."""

from __future__ import annotations

import datetime as dt

FAILURES_BEFORE_ALERT = 3


def backoff(attempts: int, retry_after: float | None) -> dt.timedelta:
    """30 s doubling per attempt, capped at an hour; never sooner than the provider's
    Retry-After."""
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    if retry_after is not None:
        seconds = max(seconds, int(retry_after))
    return dt.timedelta(seconds=seconds)
