"""Bounds on every API client, so slow or idle connections cannot starve real requests.

Measured on the first version: 140 idle connections under a 128-descriptor limit made
authenticated requests time out (uvicorn has no deadline for a request head, and the
body-limit middleware waited on the body before authentication). Here:

- a connection must deliver its request head within ``header_timeout`` (else it is
  closed), and at most ``max_connections`` are open: a new connection beyond that evicts
  the oldest one still waiting for its head (an idle or trickling client), so a client
  that sends its request promptly is always served;
- h11 refuses a request head larger than ``max_header_bytes``; idle keep-alive
  connections close after ``keep_alive``;
- the body is read only after authentication, and must arrive within
  ``watchdog.api.errors.BODY_TIMEOUT`` (``BodyLimitMiddleware``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The API's per-client bounds (seconds, bytes, connections)."""

    header_timeout: float = 10.0
    keep_alive: float = 5.0
    max_connections: int = 256
    max_header_bytes: int = 16 * 1024


DEFAULT_LIMITS = ClientLimits()


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and idle-client eviction.

    ``config.client_limits`` (set by ``watchdog.api.server.uvicorn_config``) holds the
    ClientLimits.
    """

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ClientLimits = getattr(config, "client_limits", DEFAULT_LIMITS)
        self.opened_at = time.monotonic()
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; evict the oldest head-less one beyond the limit; arm the
        head deadline."""
        super().connection_made(transport)
        self.head_timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)
        # Connections already closing (evicted moments ago: asyncio accepts a burst before
        # their connection_lost runs) no longer count.
        live = [c for c in self.connections
                if isinstance(c, BoundedH11Protocol) and not c.transport.is_closing()]
        if len(live) > self.limits.max_connections:
            waiting = [c for c in live if c is not self and c.awaiting_head]
            if waiting:
                min(waiting, key=lambda c: c.opened_at).transport.close()
            else:  # every slot is serving a request: this one waits its turn elsewhere
                transport.close()

    @property
    def awaiting_head(self) -> bool:
        """True while no request is in progress on this connection (new, or kept alive)."""
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        """Feed h11; once a request head is complete, the head deadline is off."""
        super().data_received(data)
        if not self.awaiting_head and self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def on_response_complete(self) -> None:
        """Between requests the keep-alive timeout applies (uvicorn's own)."""
        super().on_response_complete()
        self.opened_at = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        """Disarm the head deadline."""
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self.head_timer = None
        if self.awaiting_head and not self.transport.is_closing():
            self.transport.close()
