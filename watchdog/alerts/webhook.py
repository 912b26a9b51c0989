"""A generic JSON webhook, signed: ``X-Watchdog-Signature: sha256=<hex HMAC of the body>``.

The secret comes from ``$WATCHDOG_WEBHOOK_SECRET``. ``X-Watchdog-Delivery`` is stable
across retries of one delivery, so a receiver can drop duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import httpx

from watchdog.alerts.base import HttpSink, compact_json, iso
from watchdog.alerts.message import Notification

SIGNATURE_HEADER = "X-Watchdog-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time compare of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookSink(HttpSink):
    """Posts signed JSON to one URL."""

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Post one signed event."""
        url = self._url()
        body = compact_json({**note.facts(now), "sent_at": iso(now),
                             "description": note.description(now)})
        headers = {
            SIGNATURE_HEADER: sign(self._secret(), body),
            "X-Watchdog-Event": note.event.value,
            "X-Watchdog-Delivery": str(note.delivery_id),
        }
        await self._post(client, url, body, headers)
