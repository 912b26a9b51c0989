"""The health alerts: ``watchdog_stale`` (no successful scan pass for too long) and
``provider_unhealthy`` (a provider's calls fail without an answer), raised and resolved
from the facts ``watchdog.health`` reads.

The daemon's sender job calls ``evaluate_health`` every round (``expiry-watchdog notify``
once, in timer mode), so these travel through the same outbox as every other alert.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from watchdog import audit
from watchdog.alerts.outbox import AlertKind, AlertStatus, Severity, dedup_key, raise_alert
from watchdog.alerts.settings import AlertSettings
from watchdog.audit import AuditEvent, process_actor
from watchdog.clock import Clock
from watchdog.db import transaction
from watchdog.durations import format_duration
from watchdog.health import ProviderHealth, heartbeat_reference, provider_health
from watchdog.models import Alert

WATCHDOG_SUBJECT = "watchdog"


def evaluate_staleness(engine: Engine, settings: AlertSettings, clock: Clock,
                       actor: str | None = None) -> Severity | None:
    """Raise ``watchdog_stale`` when no pass succeeded for ``stale_warning``/``stale_critical``;
    resolve it when passes succeed again. Returns the severity raised, if any."""
    actor = actor or process_actor("health")
    now = clock.now()
    with transaction(engine) as session:
        reference = heartbeat_reference(session)
        if reference is None:
            return None
        age = now - reference
        severity = (Severity.CRITICAL if age > settings.stale_critical
                    else Severity.WARNING if age > settings.stale_warning else None)
        if severity is None:
            resolve_subject(session, AlertKind.WATCHDOG_STALE, WATCHDOG_SUBJECT, now, actor,
                            "a scan pass succeeded")
            return None
        details = {
            "subject": WATCHDOG_SUBJECT, "last_successful_pass_utc": reference.isoformat(),
            "age_seconds": int(age.total_seconds()),
            "tried": "scan passes run on schedule; none succeeded since "
                     f"{reference.isoformat()}",
        }
        raise_alert(session, AlertKind.WATCHDOG_STALE, severity,
                    f"expiry-watchdog: no successful scan pass for {format_duration(age)}",
                    details, now, actor, provider=WATCHDOG_SUBJECT)
        return severity


def _account_detail(subject: str) -> dict[str, str]:
    """``{"account": ...}`` of a ``provider/account`` subject (nothing for a provider)."""
    _, sep, account = subject.partition("/")
    return {"account": account} if sep else {}


def evaluate_providers(engine: Engine, settings: AlertSettings, clock: Clock,
                       actor: str | None = None) -> dict[str, Severity]:
    """Raise ``provider_unhealthy`` for providers whose error rate in ``provider_window``
    reaches ``provider_error_rate`` (over at least ``provider_min_calls`` calls); resolve the
    others. Critical when every call failed."""
    actor = actor or process_actor("health")
    now = clock.now()
    raised: dict[str, Severity] = {}
    with transaction(engine) as session:
        health = provider_health(session, now - settings.provider_window)
        firing = [key.partition(":provider:")[2] for key in session.scalars(
            select(Alert.dedup_key).where(
                Alert.kind == AlertKind.PROVIDER_UNHEALTHY.value,
                Alert.status.in_([AlertStatus.FIRING.value, AlertStatus.ACKNOWLEDGED.value]),
            )).all()]
        for provider in sorted(set(health) | {p for p in firing if p}):
            h = health.get(provider, ProviderHealth(provider, 0, 0))
            if h.calls >= settings.provider_min_calls and h.error_rate >= \
                    settings.provider_error_rate:
                severity = Severity.CRITICAL if h.errors == h.calls else Severity.WARNING
                raise_alert(
                    session, AlertKind.PROVIDER_UNHEALTHY, severity,
                    f"{provider}: {h.errors} of {h.calls} calls failed without an answer in the "
                    f"last {format_duration(settings.provider_window)}",
                    {"subject": provider, "provider": provider.partition("/")[0],
                     **_account_detail(provider), "calls": h.calls,
                     "errors": h.errors, "error_rate": round(h.error_rate, 3),
                     "tried": "status reads and capture/cancel requests with retries"},
                    now, actor, provider=provider,
                )
                raised[provider] = severity
            else:
                resolve_subject(session, AlertKind.PROVIDER_UNHEALTHY, provider, now, actor,
                                f"error rate {h.error_rate:.0%} over {h.calls} calls")
    return raised


def evaluate_health(engine: Engine, settings: AlertSettings, clock: Clock) -> None:
    """Both conditions; the sender job calls this every round."""
    evaluate_staleness(engine, settings, clock)
    evaluate_providers(engine, settings, clock)


def resolve_subject(session: Session, kind: AlertKind, subject: str, now: dt.datetime,
                    actor: str, reason: str) -> bool:
    """Resolve the firing (or acknowledged) alert of ``kind`` about a provider/the watchdog."""
    alert = session.execute(select(Alert).where(
        Alert.dedup_key == dedup_key(kind, None, subject),
        Alert.status.in_([AlertStatus.FIRING.value, AlertStatus.ACKNOWLEDGED.value]),
    )).scalar_one_or_none()
    if alert is None:
        return False
    alert.status = AlertStatus.RESOLVED.value
    alert.revision += 1
    alert.updated_at = now
    alert.resolved_at = now
    session.flush()
    audit.append(session, [AuditEvent(
        event=f"alert:{kind.value}:resolve", actor=actor,
        provider=subject.partition("/")[0][:16],
        detail={"dedup_key": alert.dedup_key, "reason": reason},
    )], now)
    return True
