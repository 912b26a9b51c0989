"""What a sink is asked to say: one alert revision, one event, everything on-call needs."""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from watchdog.accounts import DEFAULT_ACCOUNT, label
from watchdog.models import Alert
from watchdog.money import format_money


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

    def deadline(self) -> dt.datetime | None:
        """The authorization's absolute deadline from the details, if the alert has one."""
        raw = self.details.get("deadline_utc")
        if not isinstance(raw, str):
            return None
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            return None
        return value if value.tzinfo is not None else None

    def countdown(self, now: dt.datetime) -> str | None:
        """``deadline in 35h59m`` (or ``deadline passed 2h03m ago``) as of ``now``, the moment
        the message is sent, so a re-sent alert never repeats a countdown frozen at the moment
        the alert was written; None for an alert without a deadline or one no longer firing."""
        deadline = self.deadline()
        if deadline is None or self.event is not Event.TRIGGER:
            return None
        left = deadline - now
        if left >= dt.timedelta(0):
            return f"deadline in {_hours_minutes(left)}"
        return f"deadline passed {_hours_minutes(-left)} ago"

    def text(self, now: dt.datetime) -> str:
        """The one-line summary as of ``now``: the stored summary (amounts in major units,
        the absolute deadline) plus the countdown recomputed at ``now``."""
        countdown = self.countdown(now)
        return f"{self.summary} ({countdown})" if countdown else self.summary

    def description(self, now: dt.datetime | None = None) -> str:
        """A few lines with the authorization's facts, the deadline in UTC and local time, and
        (given ``now``, the sending moment) how long is left."""
        d = self.details
        lines = []
        if self.authorization_id is not None:
            ref = f", merchant reference {d['reference']}" if d.get("reference") else ""
            where = label(str(d.get("provider")), str(d.get("account") or DEFAULT_ACCOUNT))
            lines.append(f"Authorization {self.authorization_id}: {where} order "
                         f"{d.get('order_id')}{ref}.")
            amount = d.get("amount_display") or _display(d.get("amount"), d.get("currency"))
            authorized = d.get("authorized_display") or _display(
                d.get("amount_minor", d.get("amount")), d.get("currency"))
            lines.append(f"Open amount {amount} of {authorized} authorized, "
                         f"state {d.get('state')}.")
            zone = d.get("display_zone") or "local"
            line = f"Deadline {d.get('deadline_utc')} UTC ({d.get('deadline_local')} {zone})"
            countdown = self.countdown(now) if now is not None else None
            lines.append(f"{line}, {countdown} as of {_utc(now)}." if countdown and now
                         else f"{line}.")
        elif self.provider:
            subject = d.get("subject") if d.get("account") else self.provider
            lines.append(f"Subject: {subject}.")
        if d.get("tried"):
            lines.append(f"Watchdog tried: {d['tried']}.")
        if self.next_steps:
            lines.append(f"Next steps: {self.next_steps}.")
        if self.event is Event.ACKNOWLEDGE and self.acknowledged_by:
            lines.append(f"Acknowledged by {self.acknowledged_by}.")
        return "\n".join(lines)

    def facts(self, now: dt.datetime) -> dict[str, Any]:
        """The alert as a flat JSON-able dict (webhook body) as of ``now``: ``summary`` is the
        human text with its countdown recomputed; amounts in ``details`` a machine reads are
        minor units named ``*_minor``."""
        return {
            "event": self.event.value, "dedup_key": self.dedup_key, "kind": self.kind,
            "severity": self.severity, "status": self.status, "summary": self.text(now),
            "revision": self.revision, "authorization_id": self.authorization_id,
            "provider": self.provider, "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "details": self.details,
        }


def _hours_minutes(delta: dt.timedelta) -> str:
    """``35h59m`` (whole minutes, rounded down)."""
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _utc(value: dt.datetime | None) -> str:
    """``2026-12-03 16:42 UTC``."""
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if value is not None else ""


def _display(minor: object, currency: object) -> str:
    """Major units with currency for an alert written before ``*_display`` existed."""
    if isinstance(minor, int) and isinstance(currency, str):
        return format_money(minor, currency)
    return f"{minor} (minor units) {currency}"
