"""Shared pieces for the on-call tests: a loopback HTTP receiver and a scripted deadline."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import Engine, select

from tests.support.postgres import HOST, free_port
from watchdog import service
from watchdog.alerts.sender import DeliveryReport, deliver_pending
from watchdog.alerts.settings import AlertSettings
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.domain import InstructionKind, ProviderName
from watchdog.models import AlertDelivery
from watchdog.providers.fake import FakeProvider
from watchdog.scan import PassReport, Scanner


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny HTTP server on loopback in a thread; answers ``status`` to every POST."""

    port: int = field(default_factory=free_port)
    status: int = 202
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success"}')

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Deadline:
    """One clearpay authorization with on_deadline=alert, walked through its timeline."""

    def __init__(self, engine: Engine, config: Config, clock: FrozenClock,
                 order_id: str = "ORD-1", amount: int = 1820, currency: str = "GBP") -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self.fake = FakeProvider(ProviderName.CLEARPAY)
        self.expires_at = clock.now() + dt.timedelta(hours=47)
        self.fake.add(order_id, amount, expires_at=self.expires_at)
        registered = service.register(engine, config, {
            "provider": "clearpay", "order_id": order_id, "amount": amount, "currency": currency,
            "authorized_at": (clock.now() - dt.timedelta(days=2)).isoformat(),
            "expires_at": self.expires_at.isoformat(), "reference": "REF-77",
            "on_deadline": "alert",
        }, actor="test", clock=clock)
        self.id = registered.authorization.id

        async def no_sleep(_: float) -> None:
            return None

        self.scanner = Scanner(engine, config, {ProviderName.CLEARPAY: self.fake}, clock, "w1",
                               sleep=no_sleep)

    def scan(self) -> PassReport:
        return asyncio.run(self.scanner.run_pass())

    def go_critical(self) -> PassReport:
        self.clock.set(self.expires_at - dt.timedelta(hours=5))
        return self.scan()

    def go_expired(self) -> PassReport:
        self.clock.set(self.expires_at + dt.timedelta(minutes=1))
        return self.scan()

    def capture(self) -> PassReport:
        service.instruct(self.engine, self.config, self.id, InstructionKind.CAPTURE_NOW, "test",
                         clock=self.clock)
        return self.scan()


def deliver(engine: Engine, settings: AlertSettings, clock: FrozenClock) -> DeliveryReport:
    async def run() -> DeliveryReport:
        async with httpx.AsyncClient() as client:
            return await deliver_pending(engine, settings, client, clock)

    return asyncio.run(run())


def deliveries(engine: Engine, sink: str | None = None) -> list[AlertDelivery]:
    with transaction(engine) as session:
        query = select(AlertDelivery).order_by(AlertDelivery.id)
        if sink is not None:
            query = query.where(AlertDelivery.sink == sink)
        return list(session.scalars(query))
