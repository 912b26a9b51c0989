"""Test-only crash points: ``WATCHDOG_CRASH_AT=step[:n]`` kills the process at the n-th pass
through ``step`` with SIGKILL, so the torture tests can stop a real daemon at named instants.

Steps: before_intent, after_intent, after_send, after_provider, before_outcome.
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
