"""Slack incoming webhook. The webhook URL is a secret: ``$WATCHDOG_SLACK_WEBHOOK_URL``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from watchdog.alerts.base import HttpSink, compact_json
from watchdog.alerts.message import Event, Notification

_HEADLINE = {
    (Event.TRIGGER, "critical"): ":rotating_light: *CRITICAL*",
    (Event.TRIGGER, "warning"): ":warning: *WARNING*",
}


class SlackSink(HttpSink):
    """Posts messages to one Slack channel (the secret is the webhook URL)."""

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one message."""
        await self._post(client, self._secret(), compact_json(message_body(note)))


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
