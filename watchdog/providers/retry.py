"""Narrow retries: only RETRYABLE outcomes, exponential backoff honouring Retry-After.

REJECTED is terminal and UNKNOWN goes to recovery (a money call whose answer was
lost must be confirmed, not blindly repeated here). The caller's closure carries
the idempotency key, so every attempt replays the SAME request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from watchdog.providers.base import Outcome, ProviderResult

log = logging.getLogger("watchdog.providers.retry")

MAX_DELAY = 300.0  # never sleep longer than this between two attempts


def backoff_delay(attempt: int, backoff: float, retry_after: float | None) -> float:
    """Delay before attempt ``attempt + 1`` (0-based): backoff·2^attempt, at least Retry-After."""
    delay = float(backoff) * 2.0**attempt
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


async def with_retries(
    call: Callable[[], Awaitable[ProviderResult]],
    attempts: int,
    backoff: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    deadline_guard: Callable[[], bool] | None = None,
) -> ProviderResult:
    """Call until the outcome is not RETRYABLE, ``attempts`` calls are spent, or time is up.

    ``attempts`` is the total number of calls (values below 1 mean one call).
    ``deadline_guard()`` is asked before every retry: True means there is still time
    to try again; False stops and returns the last (RETRYABLE) result.
    """
    total = max(1, attempts)
    result = await call()
    for attempt in range(total - 1):
        if result.outcome is not Outcome.RETRYABLE:
            return result
        if deadline_guard is not None and not deadline_guard():
            log.info("no time left for another attempt: %s", result.describe(),
                     extra={"action": "provider.retry_stopped"})
            return result
        delay = backoff_delay(attempt, backoff, result.retry_after)
        log.info("retrying in %.2fs after: %s", delay, result.describe(),
                 extra={"action": "provider.retry"})
        await sleep(delay)
        if deadline_guard is not None and not deadline_guard():
            return result
        result = await call()
    return result
