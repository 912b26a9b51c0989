"""What every sink shares: the protocol, one careful HTTP POST, and the HTTP sinks' base."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import httpx

from watchdog.alerts.message import DeliveryError, Notification
from watchdog.alerts.settings import SinkSettings
from watchdog.secrets import redact

USER_AGENT = "expiry-watchdog-notifier/0.1"
BODY_EXCERPT = 200


class Sink(Protocol):
    """One destination for alerts."""

    @property
    def settings(self) -> SinkSettings: ...

    async def send(self, client: httpx.AsyncClient, note: Notification, now: dt.datetime) -> None:
        """Deliver one notification; raise DeliveryError when the sink did not take it."""
        ...


async def post(
    client: httpx.AsyncClient, settings: SinkSettings, url: str, content: bytes,
    seconds: float, headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``content`` as JSON; turn every failure into a DeliveryError without secrets."""
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = await client.post(url, content=content, headers=all_headers, timeout=seconds)
    except httpx.TimeoutException as exc:
        raise DeliveryError(
            _clean(settings, f"timed out after {seconds:g}s ({type(exc).__name__})")
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(_clean(settings, f"{type(exc).__name__}: {exc}")) from None
    if response.is_success:
        return response
    excerpt = response.text[:BODY_EXCERPT].replace("\n", " ")
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429)
    raise DeliveryError(_clean(settings, f"HTTP {response.status_code}: {excerpt}"),
                        permanent=permanent)


class HttpSink:
    """What every HTTP sink shares: its settings and timeout, and one POST through ``post``.

    A subclass implements ``send``: it builds the body its service expects and
    hands it to ``_post``.
    """

    def __init__(self, settings: SinkSettings, timeout: float) -> None:
        """Keep the sink's configuration and its per-call timeout in seconds."""
        self._settings = settings
        self.timeout = timeout

    @property
    def settings(self) -> SinkSettings:
        """Its configuration."""
        return self._settings

    def _url(self) -> str:
        """The configured URL (the settings parser requires one for this sink type)."""
        assert self._settings.url is not None
        return self._settings.url

    def _secret(self) -> str:
        """The configured secret, revealed for the wire (required for this sink type)."""
        assert self._settings.secret is not None
        return self._settings.secret.reveal()

    async def _post(
        self, client: httpx.AsyncClient, url: str, content: bytes,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``content`` within this sink's timeout; a failure is a DeliveryError, redacted."""
        return await post(client, self._settings, url, content, self.timeout, headers)


def _clean(settings: SinkSettings, text: str) -> str:
    """``text`` with the sink's secret masked (an error message may echo a URL or a key)."""
    return redact(text, [settings.secret])


def iso(value: dt.datetime) -> str:
    """RFC 3339 with a Z."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def compact_json(value: Any) -> bytes:
    """Deterministic JSON bytes (what the webhook signature covers)."""
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
