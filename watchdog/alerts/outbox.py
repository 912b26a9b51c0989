"""Alerts as an outbox: raised and resolved in the same transaction as the state change.

A sender (``watchdog.alerts.sender``) delivers them to the sinks later; a sink that is down
delays delivery, never the scan. De-duplication key: ``kind:authorization``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from watchdog import audit
from watchdog.audit import AuditEvent
from watchdog.models import Alert, Authorization
from watchdog.money import format_money


class AlertKind(enum.StrEnum):
    """What an alert is about."""

    DEADLINE_APPROACHING = "deadline_approaching"
    DEADLINE_CRITICAL = "deadline_critical"
    ACTION_FAILED = "action_failed"
    NEEDS_ATTENTION = "needs_attention"
    AUTHORIZATION_EXPIRED = "authorization_expired"
    EFFECT_PENDING = "effect_pending"  # our capture/cancel is still pending at critical_at
    PROVIDER_MISMATCH = "provider_mismatch"  # the provider's amount/currency is not ours
    PROVIDER_UNHEALTHY = "provider_unhealthy"
    WATCHDOG_STALE = "watchdog_stale"


class Severity(enum.StrEnum):
    """How loud: warning notifies, critical pages."""

    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(enum.StrEnum):
    """Lifecycle of an alert."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"


# Kinds that concern one authorization's deadline; one resolves the others.
AUTHORIZATION_KINDS = (
    AlertKind.DEADLINE_APPROACHING,
    AlertKind.DEADLINE_CRITICAL,
    AlertKind.ACTION_FAILED,
    AlertKind.NEEDS_ATTENTION,
    AlertKind.EFFECT_PENDING,
)

NEXT_STEPS: dict[AlertKind, str] = {
    AlertKind.DEADLINE_APPROACHING: "capture or cancel it (expiry-watchdog show ID), or instruct "
    "the watchdog through the API",
    AlertKind.DEADLINE_CRITICAL: "act now: capture or cancel in the provider's dashboard or via "
    "the API before the deadline",
    AlertKind.ACTION_FAILED: "read the provider's answer in `expiry-watchdog show ID` and fix the "
    "cause (credentials, amount, state) before the deadline",
    AlertKind.NEEDS_ATTENTION: "check the provider dashboard for what really happened, then record "
    "it; the watchdog will not guess",
    AlertKind.AUTHORIZATION_EXPIRED: "the authorization lapsed: contact the customer or create a "
    "new checkout",
    AlertKind.EFFECT_PENDING: "the provider accepted the capture/cancel but has not confirmed "
    "it: check its dashboard and ask the provider before the deadline; the watchdog keeps "
    "polling and pages again at the deadline",
    AlertKind.PROVIDER_MISMATCH: "the provider holds a different amount or currency than was "
    "registered: find out which is right before the deadline; the watchdog never captures more "
    "than registered nor more than the provider holds",
    AlertKind.PROVIDER_UNHEALTHY: "check the provider's status page and the watchdog's logs",
    AlertKind.WATCHDOG_STALE: "check that the daemon or timer runs: "
    "systemctl status expiry-watchdog",
}


def dedup_key(kind: AlertKind, authorization_id: int | None, provider: str | None = None) -> str:
    """Stable key: the same condition on the same subject is one alert."""
    subject = (
        f"authorization:{authorization_id}"
        if authorization_id is not None
        else f"provider:{provider}"
    )
    return f"expiry-watchdog:{kind.value}:{subject}"


def alert_details(row: Authorization, tried: str, zone: dt.tzinfo | None = None) -> dict[str, Any]:
    """Everything on-call needs in the alert body.

    Amounts a machine reads are integer minor units and say so in their key
    (``amount_minor``); the ``*_display`` keys are what a human reads, in major units with
    the currency. The deadline is absolute (UTC and the display zone): a countdown is only
    ever computed when a message is sent (``Notification.text``), never stored.
    """
    local = row.deadline.astimezone(zone) if zone is not None else row.deadline
    open_minor = row.amount - row.captured_amount
    return {
        "authorization_id": row.id,
        "provider": row.provider,
        "account": row.account,
        "order_id": row.order_id,
        "reference": row.reference,
        "amount_minor": row.amount,
        "captured_amount_minor": row.captured_amount,
        "open_amount_minor": open_minor,
        "currency": row.currency,
        "amount_display": format_money(open_minor, row.currency),
        "authorized_display": format_money(row.amount, row.currency),
        "state": row.state,
        "deadline_utc": row.deadline.isoformat(),
        "deadline_local": local.isoformat(),
        "display_zone": str(zone) if zone is not None else "UTC",
        "tried": tried,
    }


def deadline_text(deadline: dt.datetime, zone: dt.tzinfo | None) -> str:
    """``2026-12-05 10:00 UTC (19:00 JST Asia/Tokyo)``: the absolute deadline for a human."""
    utc = deadline.astimezone(dt.UTC)
    text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if zone is not None and str(zone) != "UTC":
        local = deadline.astimezone(zone)
        text += f" ({local:%Y-%m-%d %H:%M %Z} {zone})"
    return text


def raise_alert(
    session: Session,
    kind: AlertKind,
    severity: Severity,
    summary: str,
    details: dict[str, Any],
    now: dt.datetime,
    actor: str,
    authorization_id: int | None = None,
    provider: str | None = None,
) -> Alert:
    """Fire (or escalate) the alert for (kind, subject); firing twice does not notify twice."""
    key = dedup_key(kind, authorization_id, provider)
    details = {**details, "next_steps": NEXT_STEPS[kind], "kind": kind.value}
    provider = provider.partition("/")[0] if provider else provider  # "<provider>/<account>"
    alert = session.execute(select(Alert).where(Alert.dedup_key == key)).scalar_one_or_none()
    if alert is None:
        alert = Alert(
            dedup_key=key,
            kind=kind.value,
            severity=severity.value,
            status=AlertStatus.FIRING.value,
            authorization_id=authorization_id,
            provider=provider,
            summary=summary,
            details=json.dumps(details, default=str),
            revision=1,
            notified_revision=0,
            created_at=now,
            updated_at=now,
        )
        session.add(alert)
    elif alert.status != AlertStatus.FIRING.value or alert.severity != severity.value:
        if alert.status == AlertStatus.ACKNOWLEDGED.value and alert.severity == severity.value:
            return alert
        alert.status = AlertStatus.FIRING.value
        alert.severity = severity.value
        alert.summary = summary
        alert.details = json.dumps(details, default=str)
        alert.revision += 1
        alert.updated_at = now
        alert.resolved_at = None
    else:
        return alert
    session.flush()
    audit.append(
        session,
        [
            AuditEvent(
                event=f"alert:{kind.value}:fire",
                actor=actor,
                authorization_id=authorization_id,
                provider=provider or details.get("provider"),
                order_id=details.get("order_id"),
                amount=details.get("amount_minor"),
                currency=details.get("currency"),
                outcome=severity.value,
                detail={"summary": summary, "dedup_key": key},
            )
        ],
        now,
    )
    return alert


def resolve_alerts(
    session: Session,
    authorization_id: int,
    now: dt.datetime,
    actor: str,
    reason: str,
    kinds: Iterable[AlertKind] = AUTHORIZATION_KINDS,
) -> int:
    """Resolve the authorization's firing alerts of ``kinds``; returns how many."""
    return resolve_alerts_many(session, [(authorization_id, tuple(kinds), reason)], now, actor)


def resolve_alerts_many(
    session: Session,
    requests: Iterable[tuple[int, Iterable[AlertKind], str]],
    now: dt.datetime,
    actor: str,
) -> int:
    """Resolve, for each (authorization, kinds, reason), its firing alerts of those kinds,
    with one query for all of them (a pass settles many rows at once); returns how many."""
    reasons: dict[str, tuple[int, str]] = {}
    for authorization_id, kinds, reason in requests:
        for kind in kinds:
            reasons.setdefault(dedup_key(kind, authorization_id), (authorization_id, reason))
    if not reasons:
        return 0
    alerts = list(
        session.scalars(
            select(Alert)
            .where(
                Alert.dedup_key.in_(list(reasons)),
                Alert.status.in_([AlertStatus.FIRING.value, AlertStatus.ACKNOWLEDGED.value]),
            )
            .order_by(Alert.id)
        )
    )
    for alert in alerts:
        alert.status = AlertStatus.RESOLVED.value
        alert.revision += 1
        alert.updated_at = now
        alert.resolved_at = now
    if alerts:
        session.flush()
        audit.append(
            session,
            [
                AuditEvent(
                    event=f"alert:{alert.kind}:resolve",
                    actor=actor,
                    authorization_id=reasons[alert.dedup_key][0],
                    detail={"dedup_key": alert.dedup_key, "reason": reasons[alert.dedup_key][1]},
                )
                for alert in alerts
            ],
            now,
        )
    return len(alerts)
