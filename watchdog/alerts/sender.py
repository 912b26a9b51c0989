"""The outbox worker: alert revisions -> one delivery row per routed sink -> sinks.

Runs as its own job (never inside a scan pass). Each round:

1. **enqueue** — every alert with ``revision > notified_revision`` gets one
   ``alert_deliveries`` row per routed sink for that revision (unique
   ``alert_id, sink, revision``); older pending revisions are superseded, so a
   stale trigger is never sent after its resolve;
2. **claim** — due pending rows get ``next_attempt_at`` pushed out by a short claim
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), then the transaction ends;
3. **send** — all claimed rows in parallel, each bounded by the per-call timeout;
4. **record** — sent, or retried with exponential backoff, or given up (a 4xx, or
   older than ``give_up_after``); one audit row per attempt
   (``notify:<sink>:sent|failed``, never a secret); ``notified_revision`` moves
   once no delivery of that revision is pending;
5. **re-post** firing alerts to Alertmanager every ``resend_interval``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from watchdog import audit
from watchdog import backoff as backoffs
from watchdog.alerts.alertmanager import AlertmanagerSink
from watchdog.alerts.base import Sink
from watchdog.alerts.message import DeliveryError, Event, Notification
from watchdog.alerts.outbox import AlertStatus
from watchdog.alerts.routing import build_sinks, event_for, targets
from watchdog.alerts.settings import AlertSettings
from watchdog.audit import AuditEvent, process_actor
from watchdog.clock import Clock
from watchdog.db import is_postgres, transaction
from watchdog.metrics import DEFAULT_METRICS, Metrics
from watchdog.models import Alert, AlertDelivery
from watchdog.secrets import redact

log = logging.getLogger("watchdog.alerts.sender")

PENDING, SENT, FAILED, SUPERSEDED = "pending", "sent", "failed", "superseded"
ERROR_LIMIT = 500
MAX_PARALLEL = 32


@dataclass
class DeliveryReport:
    """What one round did."""

    enqueued: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed and will be retried
    gave_up: int = 0
    superseded: int = 0
    reposted: int = 0
    notified: int = 0  # alert revisions now fully delivered

    def summary(self) -> str:
        """One line for logs."""
        return (f"enqueued {self.enqueued}, sent {self.sent}, failed {self.failed}, gave up "
                f"{self.gave_up}, superseded {self.superseded}, re-posted {self.reposted}")


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery_id: int
    alert_id: int
    sink: str
    note: Notification


@dataclass(frozen=True, slots=True)
class _Result:
    claimed: _Claimed
    error: str | None
    permanent: bool = False


async def deliver_pending(
    engine: Engine, settings: AlertSettings, client: httpx.AsyncClient, clock: Clock,
    metrics: Metrics = DEFAULT_METRICS, actor: str | None = None,
) -> DeliveryReport:
    """One sender round (see the module docstring). Never raises for a sink's failure."""
    actor = actor or process_actor("notifier")
    sinks = build_sinks(settings)
    report = DeliveryReport()
    alert_ids = _enqueue(engine, settings, clock.now(), report)
    claimed = _claim(engine, settings, sinks, clock.now(), report)
    limit = asyncio.Semaphore(MAX_PARALLEL)

    async def attempt(item: _Claimed) -> _Result:
        async with limit:
            return await _send(sinks[item.sink], client, item, clock.now(), settings)

    results = await asyncio.gather(*(attempt(c) for c in claimed))
    _record(engine, settings, results, clock.now(), actor, report, metrics)
    report.notified = _mark_notified(engine, alert_ids | {c.alert_id for c in claimed})
    await _repost(engine, settings, sinks, client, clock.now(), report, metrics)
    if report.enqueued or report.sent or report.failed or report.gave_up:
        log.info(report.summary(), extra={"action": "notify:round", "sent": report.sent,
                                          "failed": report.failed})
    return report


async def sender_tick(
    engine: Engine, settings: AlertSettings, client: httpx.AsyncClient, clock: Clock,
    metrics: Metrics = DEFAULT_METRICS,
) -> DeliveryReport | None:
    """The daemon's job: evaluate health alerts, then deliver. A database outage is logged."""
    from watchdog.alerts.health import evaluate_health

    try:
        evaluate_health(engine, settings, clock)
        return await deliver_pending(engine, settings, client, clock, metrics)
    except OperationalError as exc:
        log.warning("database unavailable; alerts wait for the next round",
                    extra={"action": "notify:db_unavailable",
                           "error": str(exc).splitlines()[0]})
        return None


# ---------------------------------------------------------------- enqueue


def _enqueue(engine: Engine, settings: AlertSettings, now: dt.datetime,
             report: DeliveryReport) -> set[int]:
    with transaction(engine) as session:
        alerts = session.scalars(
            select(Alert).where(Alert.revision > Alert.notified_revision)
            .order_by(Alert.id).limit(settings.batch_size)
        ).all()
        for alert in alerts:
            event = event_for(alert.status)
            earlier = session.scalars(
                select(AlertDelivery.sink).where(
                    AlertDelivery.alert_id == alert.id, AlertDelivery.event == Event.TRIGGER.value,
                    AlertDelivery.revision < alert.revision,
                ).distinct()
            ).all()
            for name in targets(settings, event, alert.severity, earlier):
                report.enqueued += _insert_delivery(session, alert, name, event, now)
            superseded = session.execute(
                update(AlertDelivery).where(
                    AlertDelivery.alert_id == alert.id, AlertDelivery.revision < alert.revision,
                    AlertDelivery.status == PENDING,
                ).values(status=SUPERSEDED, last_error=f"superseded by revision {alert.revision}")
            )
            report.superseded += superseded.rowcount or 0  # type: ignore[attr-defined]
        return {a.id for a in alerts}


def _insert_delivery(session: Session, alert: Alert, sink: str, event: Event,
                     now: dt.datetime) -> int:
    values = {
        "alert_id": alert.id, "sink": sink, "revision": alert.revision, "event": event.value,
        "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now,
    }
    insert = pg_insert if is_postgres(session.get_bind()) else sqlite_insert  # type: ignore[arg-type]
    statement = insert(AlertDelivery).values(**values).on_conflict_do_nothing(
        index_elements=["alert_id", "sink", "revision"]
    )
    result = session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- claim and send


def _claim(engine: Engine, settings: AlertSettings, sinks: dict[str, Sink], now: dt.datetime,
           report: DeliveryReport) -> list[_Claimed]:
    claimed: list[_Claimed] = []
    with transaction(engine) as session:
        query = (
            select(AlertDelivery, Alert).join(Alert, Alert.id == AlertDelivery.alert_id)
            .where(AlertDelivery.status == PENDING, AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(settings.batch_size)
        )
        if is_postgres(engine):
            query = query.with_for_update(skip_locked=True, of=AlertDelivery)
        for delivery, alert in session.execute(query):
            if delivery.revision < alert.revision:
                delivery.status = SUPERSEDED
                delivery.last_error = f"superseded by revision {alert.revision}"
                report.superseded += 1
                continue
            if delivery.sink not in sinks:
                delivery.status = FAILED
                delivery.last_error = f"sink {delivery.sink} is no longer configured"
                report.gave_up += 1
                continue
            delivery.next_attempt_at = now + settings.claim
            claimed.append(_Claimed(delivery.id, alert.id, delivery.sink,
                                    Notification.of(alert, Event(delivery.event), delivery.id)))
    return claimed


async def _send(sink: Sink, client: httpx.AsyncClient, item: _Claimed, now: dt.datetime,
                settings: AlertSettings) -> _Result:
    budget = settings.timeout.total_seconds() + 1.0
    try:
        await asyncio.wait_for(sink.send(client, item.note, now), budget)
    except DeliveryError as exc:
        return _Result(item, str(exc)[:ERROR_LIMIT], exc.permanent)
    except TimeoutError:
        return _Result(item, f"no answer within {budget:g}s")
    except Exception as exc:  # a bug in one sink must not stop the others
        log.exception("sink raised", extra={"action": f"notify:{item.sink}:error"})
        text = redact(f"{type(exc).__name__}: {exc}", [sink.settings.secret])
        return _Result(item, text[:ERROR_LIMIT])
    return _Result(item, None)


def backoff(settings: AlertSettings, attempts: int) -> dt.timedelta:
    """The wait after ``attempts`` failed tries of a delivery (``watchdog.backoff``):
    ``settings.backoff`` doubled per try, capped at ``settings.max_backoff``."""
    return dt.timedelta(seconds=backoffs.delay(
        attempts, settings.backoff.total_seconds(), settings.max_backoff.total_seconds()))


def _record(engine: Engine, settings: AlertSettings, results: list[_Result], now: dt.datetime,
            actor: str, report: DeliveryReport, metrics: Metrics) -> None:
    if not results:
        return
    with transaction(engine) as session:
        events: list[AuditEvent] = []
        for result in results:
            item = result.claimed
            delivery = session.get(AlertDelivery, item.delivery_id)
            if delivery is None or delivery.status != PENDING:
                continue
            delivery.attempts += 1
            detail: dict[str, Any] = {
                "dedup_key": item.note.dedup_key, "revision": delivery.revision,
                "event": delivery.event, "attempt": delivery.attempts,
            }
            if result.error is None:
                delivery.status, delivery.sent_at, delivery.last_error = SENT, now, None
                outcome, suffix = "sent", "sent"
                report.sent += 1
            else:
                delivery.last_error = result.error
                detail["error"] = result.error
                suffix = "failed"
                if result.permanent or now - delivery.created_at >= settings.give_up_after:
                    delivery.status, outcome = FAILED, "gave_up"
                    report.gave_up += 1
                else:
                    delivery.next_attempt_at = now + backoff(settings, delivery.attempts)
                    detail["next_attempt_at"] = delivery.next_attempt_at.isoformat()
                    outcome = "retry"
                    report.failed += 1
                log.warning("alert delivery failed", extra={
                    "action": f"notify:{item.sink}:failed", "dedup_key": item.note.dedup_key,
                    "error": result.error, "outcome": outcome})
            metrics.alert_delivery(item.sink, outcome)
            events.append(AuditEvent(
                event=f"notify:{item.sink}:{suffix}", actor=actor,
                authorization_id=item.note.authorization_id, provider=item.note.provider,
                order_id=_str_or_none(item.note.details.get("order_id")),
                outcome=outcome, detail=detail,
            ))
        audit.append(session, events, now)


def _mark_notified(engine: Engine, alert_ids: set[int]) -> int:
    done = 0
    with transaction(engine) as session:
        for alert_id in sorted(alert_ids):
            alert = session.get(Alert, alert_id)
            if alert is None or alert.notified_revision >= alert.revision:
                continue
            statuses = session.scalars(select(AlertDelivery.status).where(
                AlertDelivery.alert_id == alert_id, AlertDelivery.revision == alert.revision,
            )).all()
            if statuses and PENDING not in statuses:
                result = session.execute(update(Alert).where(
                    Alert.id == alert_id, Alert.revision == alert.revision,
                    Alert.notified_revision < alert.revision,
                ).values(notified_revision=alert.revision))
                done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


# ---------------------------------------------------------------- Alertmanager re-post


async def _repost(engine: Engine, settings: AlertSettings, sinks: dict[str, Sink],
                  client: httpx.AsyncClient, now: dt.datetime, report: DeliveryReport,
                  metrics: Metrics) -> None:
    for name, sink in sinks.items():
        if not isinstance(sink, AlertmanagerSink):
            continue
        with transaction(engine) as session:
            rows = session.execute(
                select(AlertDelivery.id, Alert).join(Alert, Alert.id == AlertDelivery.alert_id)
                .where(AlertDelivery.sink == name, AlertDelivery.status == SENT,
                       AlertDelivery.event == Event.TRIGGER.value,
                       AlertDelivery.revision == Alert.revision,
                       Alert.status == AlertStatus.FIRING.value,
                       AlertDelivery.sent_at <= now - settings.resend_interval)
                .order_by(AlertDelivery.id).limit(settings.batch_size)
            ).all()
            notes = [Notification.of(alert, Event.TRIGGER, delivery_id)
                     for delivery_id, alert in rows]
        if not notes:
            continue
        try:
            await asyncio.wait_for(sink.post_many(client, notes, now),
                                   settings.timeout.total_seconds() + 1.0)
        except (DeliveryError, TimeoutError) as exc:
            metrics.alert_delivery(name, "repost_failed")
            log.warning("re-post to Alertmanager failed; will retry", extra={
                "action": f"notify:{name}:repost_failed", "error": str(exc)[:ERROR_LIMIT]})
            continue
        metrics.alert_delivery(name, "reposted")
        report.reposted += len(notes)
        with transaction(engine) as session:
            session.execute(update(AlertDelivery).where(
                AlertDelivery.id.in_([n.delivery_id for n in notes])).values(sent_at=now))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)[:64]


def pending_summary(engine: Engine) -> dict[str, int]:
    """Pending deliveries per sink (for ``alerts`` CLI and metrics)."""
    from sqlalchemy import func

    with transaction(engine) as session:
        rows = session.execute(
            select(AlertDelivery.sink, func.count()).where(AlertDelivery.status == PENDING)
            .group_by(AlertDelivery.sink)
        ).all()
    return {sink: int(count) for sink, count in rows}


__all__ = ["DeliveryReport", "backoff", "deliver_pending", "sender_tick"]
