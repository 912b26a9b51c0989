"""Prometheus Alertmanager: ``POST {url}/api/v2/alerts``.

Alertmanager identifies an alert by its label set. A firing alert is posted without
``endsAt`` and re-posted every ``resend_interval`` (Alertmanager expires it after its
``resolve_timeout`` otherwise); a resolved or acknowledged one is posted with
``endsAt`` = now, which ends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import httpx

from watchdog.alerts.base import HttpSink, compact_json, iso
from watchdog.alerts.message import Event, Notification
from watchdog.alerts.outbox import Severity


class AlertmanagerSink(HttpSink):
    """Posts alerts to one Alertmanager."""

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one alert (and end its other-severity twin when it changed severity)."""
        await self.post_many(client, [note], now)

    async def post_many(
        self, client: httpx.AsyncClient, notes: Sequence[Notification], now: dt.datetime
    ) -> None:
        """Post several alerts in one request (the periodic re-post of firing alerts)."""
        body: list[dict[str, Any]] = []
        for note in notes:
            body.append(alert_body(note, now))
            if note.event is Event.TRIGGER and note.revision > 1:
                other = (Severity.WARNING if note.severity == Severity.CRITICAL.value
                         else Severity.CRITICAL)
                twin = alert_body(note, now, severity=other.value)
                twin["endsAt"] = iso(now)
                body.append(twin)
        await self._post(client, f"{self._url()}/api/v2/alerts", compact_json(body))


def labels(note: Notification, severity: str | None = None) -> dict[str, str]:
    """The label set that identifies the alert in Alertmanager."""
    result = {
        "alertname": note.kind,
        "severity": severity or note.severity,
        "dedup_key": note.dedup_key,
        "service": "expiry-watchdog",
    }
    if note.provider:
        result["provider"] = note.provider
    if note.authorization_id is not None:
        result["authorization_id"] = str(note.authorization_id)
    return result


def alert_body(note: Notification, now: dt.datetime, severity: str | None = None) -> dict[str, Any]:
    """One element of the POST body."""
    annotations = {
        "summary": note.text(now),
        "description": note.description(now),
        "next_steps": note.next_steps,
    }
    for key in ("order_id", "reference", "amount_display", "authorized_display", "deadline_utc",
                "deadline_local", "display_zone"):
        value = note.details.get(key)
        if value is not None:
            annotations[key] = str(value)
    if note.acknowledged_by:
        annotations["acknowledged_by"] = note.acknowledged_by
    body: dict[str, Any] = {
        "labels": labels(note, severity),
        "annotations": annotations,
        "startsAt": iso(note.created_at),
    }
    if note.event is not Event.TRIGGER:
        body["endsAt"] = iso(note.resolved_at or now)
    return body
