"""PagerDuty Events API v2: ``POST {url}/v2/enqueue`` with trigger / acknowledge / resolve.

The routing key comes from ``$WATCHDOG_PAGERDUTY_ROUTING_KEY`` (or the systemd
credentials directory); the ``dedup_key`` is the alert's, so PagerDuty folds repeats
into one incident and our resolve closes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from watchdog.alerts.base import HttpSink, compact_json, iso
from watchdog.alerts.message import Notification

SUMMARY_LIMIT = 1024


class PagerDutySink(HttpSink):
    """Sends events to one PagerDuty service."""

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Enqueue one event."""
        url = f"{self._url()}/v2/enqueue"
        body = event_body(note, self._secret(), self._settings.source, now)
        await self._post(client, url, compact_json(body))


def event_body(note: Notification, routing_key: str, source: str,
               now: dt.datetime) -> dict[str, Any]:
    """The Events v2 body; trigger carries the payload, acknowledge/resolve only the key."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": note.event.value,
        "dedup_key": note.dedup_key,
    }
    if note.event.value != "trigger":
        return body
    body["payload"] = {
        "summary": note.text(now)[:SUMMARY_LIMIT],
        "source": source,
        "severity": note.severity,
        "timestamp": iso(note.updated_at),
        "component": note.provider or "expiry-watchdog",
        "group": "expiry-watchdog",
        "class": note.kind,
        "custom_details": {**note.details, "description": note.description(now),
                           "revision": note.revision},
    }
    body["client"] = "expiry-watchdog"
    return body
