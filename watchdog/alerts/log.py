"""The log sink: always on, never fails; every alert lands in the structured log."""

from __future__ import annotations

import datetime as dt
import logging

import httpx

from watchdog.alerts.message import Event, Notification
from watchdog.alerts.settings import SinkSettings

log = logging.getLogger("watchdog.alerts")


class LogSink:
    """Writes each notification as one log line with a stable ``action`` key."""

    def __init__(self, settings: SinkSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> SinkSettings:
        """Its configuration."""
        return self._settings

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Log it: critical triggers at ERROR, other triggers at WARNING, the rest at INFO."""
        level = logging.INFO
        if note.event is Event.TRIGGER:
            level = logging.ERROR if note.severity == "critical" else logging.WARNING
        log.log(level, "%s: %s", note.event.value, note.text(now), extra={
            "action": f"alert:{note.kind}:{note.event.value}", "dedup_key": note.dedup_key,
            "severity": note.severity, "authorization_id": note.authorization_id,
            "provider": note.provider, "revision": note.revision,
            "next_steps": note.next_steps, "details": note.details,
        })
