"""The one backoff: how long to wait after failed tries before the next one.

One meaning of "attempts" everywhere in the code: the number of tries, the first
included. ``with_retries(attempts=3)`` makes at most three calls;
``Authorization.attempts`` and ``AlertDelivery.attempts`` count the tries made so far.
After ``attempts`` failed tries the next one waits ``base · 2^(attempts - 1)``: the
first retry waits ``base``, each later one twice the one before, up to ``cap``.

Pure: no clock, no sleep; randomness only through the injected ``rand``. The
callers keep their own bases and caps (a provider call in-process: seconds; a row's
next scan: 30 s to an hour; an alert delivery: the ``[alerts]`` settings).
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 64  # 2^64 times any base is past every cap; no float overflow beyond


def delay(
    attempts: int, base: float, cap: float, *, retry_after: float | None = None,
    jitter: float = 0.0, rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after ``attempts`` failed tries (the first included) before the next.

    ``base · 2^(attempts - 1)`` (``base`` for 0 or 1 attempts), at most ``cap``; then,
    with ``jitter`` in [0, 1], up to that fraction of it taken off at random
    (``rand()`` in [0, 1), so 1 is "full jitter"); then never less than the
    provider's ``retry_after`` — its word beats our schedule, uncapped here (a caller
    that sleeps in-process caps what it sleeps).
    """
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")
    doublings = max(attempts - 1, 0)
    seconds = cap if doublings >= _MAX_DOUBLINGS else min(base * 2.0**doublings, cap)
    if jitter:
        seconds -= seconds * jitter * rand()
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return seconds
