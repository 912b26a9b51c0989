"""Fault injection: what goes wrong, for which provider and operation, how many times.

A fault matches a request when its provider is the request's provider or
``"*"`` and its operation is the request's operation (``capture`` | ``cancel`` |
``status``) or ``"*"``.  Each match uses up one of its ``count``.  Every
matching ``latency`` fault adds its delay; the first matching fault of any
other kind decides the request's fate:

- ``error``: HTTP ``status`` (500/502/503, default 503), empty body (502: an
  HTML page), nothing applied.
- ``rate_limit``: HTTP 429 with ``Retry-After: retry_after`` (default 1), nothing applied.
- ``drop_before_apply``: the connection is aborted, nothing applied.
- ``drop_after_apply``: the effect is applied and written to the ledger, then the
  connection is aborted without an answer.
- ``hang``: sleep ``seconds`` (capped at ``MAX_HANG_SECONDS``) before answering;
  ``apply`` says when the effect happens: ``after`` the hang (default),
  ``before`` it, or ``never`` (then the late answer is an empty 504).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Final

FAULT_KINDS: Final = (
    "latency", "error", "rate_limit", "drop_after_apply", "drop_before_apply", "hang",
)
ERROR_STATUSES: Final = (500, 502, 503)
HANG_APPLY: Final = ("after", "before", "never")
MAX_HANG_SECONDS: Final = 300.0


@dataclass(slots=True)
class Fault:
    """One injected fault and how many more requests it will affect."""

    id: int
    provider: str
    operation: str
    kind: str
    count: int
    seconds: float = 0.0
    status: int = 503
    retry_after: int = 1
    apply: str = "after"

    def as_json(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        return {
            "id": self.id, "provider": self.provider, "operation": self.operation,
            "kind": self.kind, "remaining": self.count, "seconds": self.seconds,
            "status": self.status, "retry_after": self.retry_after, "apply": self.apply,
        }


class FaultBook:
    """The active faults, in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, provider: str, operation: str, kind: str, count: int = 1, *,
            seconds: float = 0.0, status: int = 503, retry_after: int = 1,
            apply: str = "after") -> Fault:
        """Register a fault (arguments already validated by the caller)."""
        fault = Fault(next(self._ids), provider, operation, kind, count,
                      min(seconds, MAX_HANG_SECONDS) if kind == "hang" else seconds,
                      status, retry_after, apply)
        self._faults.append(fault)
        return fault

    def take(self, provider: str, operation: str) -> tuple[float, Fault | None]:
        """Use up the faults matching one request: (extra latency, deciding fault or None)."""
        if not self._faults:
            return 0.0, None
        delay = 0.0
        decisive: Fault | None = None
        used = False
        for fault in self._faults:
            if fault.provider not in ("*", provider) or fault.operation not in ("*", operation):
                continue
            if fault.kind == "latency":
                delay += fault.seconds
            elif decisive is None:
                decisive = fault
            else:
                continue
            fault.count -= 1
            used = True
        if used:
            self._faults = [f for f in self._faults if f.count > 0]
        return delay, decisive

    def active(self) -> list[Fault]:
        """The faults that still have uses left."""
        return list(self._faults)

    def clear(self) -> int:
        """Remove every fault; return how many there were."""
        n = len(self._faults)
        self._faults.clear()
        return n
