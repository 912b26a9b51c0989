"""What a sink is asked to say: one alert revision, one event, everything on-call needs."""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from watchdog.models import Alert


class Event(enum.StrEnum):
    """What a delivery tells a sink."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"
    ACKNOWLEDGE = "acknowledge"


class DeliveryError(Exception):
    """A sink did not take the message. ``permanent`` means retrying cannot help (a 4xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert revision as the sinks see it."""

    event: Event
    dedup_key: str
    kind: str
    severity: str
    status: str
    summary: str
    revision: int
    authorization_id: int | None
    provider: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    delivery_id: int
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, alert: Alert, event: Event, delivery_id: int) -> Notification:
        """Build from the outbox row."""
        try:
            details = json.loads(alert.details or "{}")
        except ValueError:
            details = {"raw": alert.details}
        return cls(
            event=event, dedup_key=alert.dedup_key, kind=alert.kind, severity=alert.severity,
            status=alert.status, summary=alert.summary, revision=alert.revision,
            authorization_id=alert.authorization_id, provider=alert.provider,
            created_at=alert.created_at, updated_at=alert.updated_at,
            resolved_at=alert.resolved_at, delivery_id=delivery_id,
            details=details if isinstance(details, dict) else {"raw": details},
        )

    @property
    def next_steps(self) -> str:
        """What on-call should do."""
        return str(self.details.get("next_steps", ""))

    @property
    def acknowledged_by(self) -> str | None:
        """The operator who acknowledged, with their note."""
        ack = self.details.get("acknowledged")
        if isinstance(ack, dict):
            return f"{ack.get('by')}: {ack.get('note')}"
        return None

    def description(self) -> str:
        """A few lines with the authorization's facts, the deadline in UTC and local time."""
        d = self.details
        lines = []
        if self.authorization_id is not None:
            ref = f", merchant reference {d['reference']}" if d.get("reference") else ""
            lines.append(f"Authorization {self.authorization_id}: {d.get('provider')} order "
                         f"{d.get('order_id')}{ref}.")
            amount = d.get("amount_display") or f"{d.get('amount')} {d.get('currency')}"
            lines.append(f"Open amount {amount} (authorized {d.get('amount')} minor units "
                         f"{d.get('currency')}), state {d.get('state')}.")
            lines.append(f"Deadline {d.get('deadline_utc')} UTC ({d.get('deadline_local')} "
                         "local).")
        elif self.provider:
            lines.append(f"Subject: {self.provider}.")
        if d.get("tried"):
            lines.append(f"Watchdog tried: {d['tried']}.")
        if self.next_steps:
            lines.append(f"Next steps: {self.next_steps}.")
        if self.event is Event.ACKNOWLEDGE and self.acknowledged_by:
            lines.append(f"Acknowledged by {self.acknowledged_by}.")
        return "\n".join(lines)

    def facts(self) -> dict[str, Any]:
        """The alert as a flat JSON-able dict (webhook body, PagerDuty custom_details)."""
        return {
            "event": self.event.value, "dedup_key": self.dedup_key, "kind": self.kind,
            "severity": self.severity, "status": self.status, "summary": self.summary,
            "revision": self.revision, "authorization_id": self.authorization_id,
            "provider": self.provider, "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "details": self.details,
        }
