"""Slack incoming webhook. The webhook URL is a secret: ``$WATCHDOG_SLACK_WEBHOOK_URL``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from watchdog.alerts.base import HttpSink, compact_json
from watchdog.alerts.message import Event, Notification
from watchdog.text import slack_escaped

_HEADLINE = {
    (Event.TRIGGER, "critical"): ":rotating_light: *CRITICAL*",
    (Event.TRIGGER, "warning"): ":warning: *WARNING*",
}


class SlackSink(HttpSink):
    """Posts messages to one Slack channel (the secret is the webhook URL)."""

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one message."""
        await self._post(client, self._secret(), compact_json(message_body(note, now)))


def headline(note: Notification, now: dt.datetime) -> str:
    """The first line: what happened, how loud, the countdown as of ``now`` (escaped: the
    summary may quote a merchant's reference or an operator's note)."""
    summary = slack_escaped(note.summary)
    if note.event is Event.RESOLVE:
        return f":white_check_mark: *RESOLVED* {summary}"
    if note.event is Event.ACKNOWLEDGE:
        return f":eyes: *ACKNOWLEDGED* {summary}"
    return f"{_HEADLINE[(note.event, note.severity)]} {slack_escaped(note.text(now))}"


def message_body(note: Notification, now: dt.datetime) -> dict[str, Any]:
    """``text`` for notifications, ``blocks`` for the channel, as of ``now``."""
    title = headline(note, now)
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": title}},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": slack_escaped(note.description(now))}},
            {"type": "context", "elements": [
                {"type": "mrkdwn",
                 "text": f"`{slack_escaped(note.dedup_key)}` revision {note.revision}"},
            ]},
        ],
    }
