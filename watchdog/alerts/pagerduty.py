"""PagerDuty Events API v2: ``POST {url}/v2/enqueue`` with trigger / acknowledge / resolve.

The routing key comes from ``$WATCHDOG_PAGERDUTY_ROUTING_KEY`` (or the systemd
credentials directory); the ``dedup_key`` is the alert's, so PagerDuty folds repeats
into one incident and our resolve closes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from watchdog.alerts.base import compact_json, iso, post
from watchdog.alerts.message import Notification
from watchdog.alerts.settings import SinkSettings

SUMMARY_LIMIT = 1024


class PagerDutySink:
    """Sends events to one PagerDuty service."""

    def __init__(self, settings: SinkSettings, timeout: float) -> None:
        self._settings = settings
        self.timeout = timeout

    @property
    def settings(self) -> SinkSettings:
        """Its configuration."""
        return self._settings

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Enqueue one event."""
        assert self._settings.url is not None
        assert self._settings.secret is not None
        body = event_body(note, self._settings.secret.reveal(), self._settings.source, now)
        await post(client, self._settings, f"{self._settings.url}/v2/enqueue",
                   compact_json(body), self.timeout)


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
        "summary": note.summary[:SUMMARY_LIMIT],
        "source": source,
        "severity": note.severity,
        "timestamp": iso(note.updated_at),
        "component": note.provider or "expiry-watchdog",
        "group": "expiry-watchdog",
        "class": note.kind,
        "custom_details": {**note.details, "description": note.description(),
                           "revision": note.revision},
    }
    body["client"] = "expiry-watchdog"
    return body
