"""Test-only crash points: ``WATCHDOG_CRASH_AT=step[:n]`` kills the process at the n-th pass
through ``step`` with SIGKILL, so the torture tests can stop a real daemon at named instants.

Steps: before_intent, after_intent, after_send (while the request is in flight),
after_provider, before_outcome.
Unset (always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def checkpoint(step: str) -> None:
    """Die here if the environment asks for it."""
    spec = os.environ.get("WATCHDOG_CRASH_AT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != step:
        return
    _counts[step] = _counts.get(step, 0) + 1
    if _counts[step] >= int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)


def checkpoint_in_flight(step: str, delay: float = 0.01) -> None:
    """Arm ``step`` to fire shortly after the caller starts awaiting a request, so the
    process dies with the request on its way (or just answered) rather than before it."""
    if os.environ.get("WATCHDOG_CRASH_AT", "").partition(":")[0] != step:
        return
    import asyncio

    asyncio.get_running_loop().call_later(delay, checkpoint, step)
