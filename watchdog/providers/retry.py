"""Narrow retries: only RETRYABLE outcomes, exponential backoff honouring Retry-After.

REJECTED is terminal and UNKNOWN goes to recovery (a money call whose answer was
lost must be confirmed, not blindly repeated here). The caller's closure carries
the idempotency key, so every attempt replays the SAME request. Attempts and the
backoff are ``watchdog.backoff``'s: tries, the first included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from watchdog import backoff as backoffs
from watchdog.providers.base import Outcome, ProviderResult

log = logging.getLogger("watchdog.providers.retry")

MAX_DELAY = 300.0  # never sleep longer than this between two attempts


def retry_delay(attempts: int, base: float, retry_after: float | None) -> float:
    """Seconds to sleep after ``attempts`` failed calls: ``base`` doubled per call, at least
    the provider's Retry-After, never more than ``MAX_DELAY`` (a scan is waiting)."""
    return min(backoffs.delay(attempts, base, MAX_DELAY, retry_after=retry_after), MAX_DELAY)


async def with_retries(
    call: Callable[[], Awaitable[ProviderResult]],
    attempts: int,
    backoff: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    deadline_guard: Callable[[], bool] | None = None,
) -> ProviderResult:
    """Call until the outcome is not RETRYABLE, ``attempts`` calls are spent, or time is up.

    ``attempts`` is the total number of calls, the first included (values below 1 mean
    one call); ``backoff`` is the first retry's delay in seconds (see ``retry_delay``).
    ``deadline_guard()`` is asked before every retry: True means there is still time
    to try again; False stops and returns the last (RETRYABLE) result.
    """
    total = max(1, attempts)
    result = await call()
    for made in range(1, total):
        if result.outcome is not Outcome.RETRYABLE:
            return result
        if deadline_guard is not None and not deadline_guard():
            log.info("no time left for another attempt: %s", result.describe(),
                     extra={"action": "provider.retry_stopped"})
            return result
        delay = retry_delay(made, backoff, result.retry_after)
        log.info("retrying in %.2fs after: %s", delay, result.describe(),
                 extra={"action": "provider.retry"})
        await sleep(delay)
        if deadline_guard is not None and not deadline_guard():
            return result
        result = await call()
    return result
