"""A generic JSON webhook, signed: ``X-Watchdog-Signature: sha256=<hex HMAC of the body>``.

The secret comes from ``$WATCHDOG_WEBHOOK_SECRET``. ``X-Watchdog-Delivery`` is stable
across retries of one delivery, so a receiver can drop duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import httpx

from watchdog.alerts.base import compact_json, iso, post
from watchdog.alerts.message import Notification
from watchdog.alerts.settings import SinkSettings

SIGNATURE_HEADER = "X-Watchdog-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time compare of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookSink:
    """Posts signed JSON to one URL."""

    def __init__(self, settings: SinkSettings, timeout: float) -> None:
        self._settings = settings
        self.timeout = timeout

    @property
    def settings(self) -> SinkSettings:
        """Its configuration."""
        return self._settings

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one signed event."""
        assert self._settings.url is not None
        assert self._settings.secret is not None
        body = compact_json({**note.facts(), "sent_at": iso(now),
                             "description": note.description()})
        headers = {
            SIGNATURE_HEADER: sign(self._settings.secret.reveal(), body),
            "X-Watchdog-Event": note.event.value,
            "X-Watchdog-Delivery": str(note.delivery_id),
        }
        await post(client, self._settings, self._settings.url, body, self.timeout, headers)
