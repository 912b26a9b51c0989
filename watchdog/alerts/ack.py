"""Operator acknowledgement: silence an authorization's firing alerts until they escalate.

An acknowledged alert gets a new revision, so the sender tells the sinks that took
its trigger (PagerDuty ``acknowledge``; Alertmanager ends it; Slack, webhook and the
log say who acknowledged and why). ``raise_alert`` re-fires it only at a different
severity, and any new kind of alert fires as usual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine, select

from watchdog import audit
from watchdog.alerts.outbox import AlertStatus
from watchdog.audit import AuditEvent
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.db import transaction
from watchdog.errors import WatchdogError
from watchdog.models import Alert, Authorization
from watchdog.text import printable


class NothingToAcknowledge(WatchdogError):
    """The authorization has no firing alert to acknowledge."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """One alert that was acknowledged."""

    dedup_key: str
    kind: str
    severity: str
    summary: str


def acknowledge(
    engine: Engine, authorization_id: int, note: str, actor: str, clock: Clock = SYSTEM_CLOCK,
) -> list[Acknowledged]:
    """Acknowledge every firing alert of the authorization; audit who and why."""
    note = printable("--note", note).strip()
    if not note:
        raise WatchdogError("--note: say why (it goes to the audit trail and to on-call)")
    now = clock.now()
    with transaction(engine) as session:
        row = session.get(Authorization, authorization_id)
        alerts = list(session.scalars(select(Alert).where(
            Alert.authorization_id == authorization_id,
            Alert.status == AlertStatus.FIRING.value,
        ).order_by(Alert.id)))
        if not alerts:
            what = "no such authorization" if row is None else "no firing alerts"
            raise NothingToAcknowledge(
                f"authorization {authorization_id}: {what}; nothing to acknowledge")
        events = []
        for alert in alerts:
            details = json.loads(alert.details or "{}")
            details["acknowledged"] = {"by": actor, "note": note, "at": now.isoformat()}
            alert.details = json.dumps(details, default=str)
            alert.status = AlertStatus.ACKNOWLEDGED.value
            alert.revision += 1
            alert.updated_at = now
            events.append(AuditEvent(
                event=f"alert:{alert.kind}:ack", actor=actor, authorization_id=authorization_id,
                provider=alert.provider, order_id=row.order_id if row else None,
                outcome=alert.severity, detail={"dedup_key": alert.dedup_key, "note": note},
            ))
        session.flush()
        audit.append(session, events, now)
        return [Acknowledged(a.dedup_key, a.kind, a.severity, a.summary) for a in alerts]
