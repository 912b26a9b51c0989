"""One pass: due rows -> claim -> act -> record. The only place that joins policy,
store and providers.

Each row is leased by this worker; every write after a provider call is fenced by
the lease generation, so a worker that lost its lease cannot overwrite the one that
took the row after it. No database transaction is held across a network call. The
writes of rows that are ready at the same moment share one transaction (group commit);
each row's writes still stand or fall together.

Modules, in the order a row meets them:

- ``scanner``  the pass loop: claim due rows, step each one, dispatch the step
- ``report``   what a pass did, and its ``passes`` row
- ``context``  the worker's dependencies and the row helpers every step shares
- ``writes``   what one step of a row writes, gathered before it is written, and the
               transition (``watchdog.transitions``) it makes
- ``committer`` group commit: many rows' writes in one transaction; the scan's only
               writer (claims and leases included)
- ``sync``     read the provider's status and reconcile
- ``stages``   deadline alerts and expiry
- ``actions``  capture/cancel: intent -> send -> outcome
- ``guards``   guard rails, holds and deferrals before money moves
- ``outcome``  record the provider's answer (or abandonment at the deadline guard)
- ``recovery`` in-flight intents without an outcome
- ``pacing``   back-off after failures
"""

from watchdog.scan.actions import OPEN
from watchdog.scan.committer import idempotency_key
from watchdog.scan.pacing import FAILURES_BEFORE_ALERT
from watchdog.scan.recovery import MAX_RECOVERIES
from watchdog.scan.report import PassReport
from watchdog.scan.scanner import MAX_STEPS_PER_ROW, Scanner

__all__ = [
    "FAILURES_BEFORE_ALERT",
    "MAX_RECOVERIES",
    "MAX_STEPS_PER_ROW",
    "OPEN",
    "PassReport",
    "Scanner",
    "idempotency_key",
]
