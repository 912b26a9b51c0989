"""Slack incoming webhook. The webhook URL is a secret: ``$WATCHDOG_SLACK_WEBHOOK_URL``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from watchdog.alerts.base import compact_json, post
from watchdog.alerts.message import Event, Notification
from watchdog.alerts.settings import SinkSettings

_HEADLINE = {
    (Event.TRIGGER, "critical"): ":rotating_light: *CRITICAL*",
    (Event.TRIGGER, "warning"): ":warning: *WARNING*",
}


class SlackSink:
    """Posts messages to one Slack channel."""

    def __init__(self, settings: SinkSettings, timeout: float) -> None:
        self._settings = settings
        self.timeout = timeout

    @property
    def settings(self) -> SinkSettings:
        """Its configuration."""
        return self._settings

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one message."""
        assert self._settings.secret is not None
        await post(client, self._settings, self._settings.secret.reveal(),
                   compact_json(message_body(note)), self.timeout)


def headline(note: Notification) -> str:
    """The first line: what happened, how loud."""
    if note.event is Event.RESOLVE:
        return f":white_check_mark: *RESOLVED* {note.summary}"
    if note.event is Event.ACKNOWLEDGE:
        return f":eyes: *ACKNOWLEDGED* {note.summary}"
    return f"{_HEADLINE[(note.event, note.severity)]} {note.summary}"


def message_body(note: Notification) -> dict[str, Any]:
    """``text`` for notifications, ``blocks`` for the channel."""
    title = headline(note)
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": note.description()}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"`{note.dedup_key}` revision {note.revision}"},
            ]},
        ],
    }
