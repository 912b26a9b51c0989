"""Running the API under uvicorn: standalone (``serve``), inside the daemon, or in a thread.

Inside the daemon the scheduler owns SIGTERM/SIGINT, so the embedded server installs no
signal handlers of its own; the daemon stops it with ``should_exit = True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from watchdog.api.bounds import DEFAULT_LIMITS, BoundedH11Protocol, ClientLimits
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.errors import WatchdogError

log = logging.getLogger("watchdog.api")


class ApiUnavailable(WatchdogError):
    """The HTTP API could not start (usually: the address is already in use)."""


def uvicorn_config(app: FastAPI, host: str, port: int,
                   limits: ClientLimits = DEFAULT_LIMITS) -> uvicorn.Config:
    """uvicorn settings: our logging, no lifespan, no websockets, no server banner, and
    every client bounded (``watchdog.api.bounds``: head and body deadlines, a connection
    budget that evicts idle clients first, a request-head size limit)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, lifespan="off", ws="none",
        http=BoundedH11Protocol, server_header=False, proxy_headers=False, access_log=True,
        timeout_graceful_shutdown=10, timeout_keep_alive=max(1, int(limits.keep_alive)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        # Connections are held at max_connections by eviction; uvicorn's own count also
        # includes evicted ones whose close is still pending (a burst of accepts), so its
        # 503 limit sits above ours and bounds the requests in progress, not the clients.
        limit_concurrency=2 * limits.max_connections + 1,
    )
    config.client_limits = limits  # type: ignore[attr-defined]  # read by BoundedH11Protocol
    return config


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to its host (the daemon or a test)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: the host stops us with ``should_exit``."""
        yield


def embedded_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    """A server to ``await server.serve()`` beside the scheduler on the daemon's loop."""
    return EmbeddedServer(uvicorn_config(app, host, port))


def health_routers(engine: Engine, config: Config, clock: Clock = SYSTEM_CLOCK) -> list[APIRouter]:
    """``/healthz``, ``/readyz`` and ``/metrics`` from ``watchdog.health``, when it is installed."""
    try:
        from watchdog.alerts.settings import alert_settings_of
        from watchdog.health import build_router, metrics_token_required
    except ImportError:
        return []
    return [build_router(engine, alert_settings_of(config), clock,
                         lease=config.scheduler.lease,
                         require_token=metrics_token_required(config))]


class EmbeddedApi:
    """The API as a task on the caller's event loop (the daemon's), started and stopped
    explicitly: ``start`` returns once the port is bound or raises ApiUnavailable."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host = host
        self.server = embedded_server(app, host, port)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; a daemon must not
            raise ApiUnavailable(
                f"the HTTP API could not listen on {self.host}:{self.server.config.port} "
                f"(see the log line before this one); set [api] host/port or enabled = false"
            ) from None

    async def start(self) -> None:
        """Serve; return once listening."""
        self._task = asyncio.create_task(self._serve(), name="watchdog-api")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises ApiUnavailable
                raise ApiUnavailable("the HTTP API stopped during startup")
            await asyncio.sleep(0.01)
        log.info("API listening", extra={"action": "api:start", "host": self.host,
                                         "port": self.port})

    async def stop(self) -> None:
        """Finish in-flight requests (up to the graceful timeout) and stop."""
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None


@contextlib.asynccontextmanager
async def embedded_api(
    engine: Engine, config: Config, clock: Clock = SYSTEM_CLOCK,
    extra_routers: Iterable[APIRouter] | None = None,
) -> AsyncIterator[EmbeddedApi | None]:
    """Run the API beside the scheduler while the block runs (None when [api] enabled = false)."""
    if not config.api.enabled:
        yield None
        return
    from watchdog.api.app import create_app

    routers = health_routers(engine, config, clock) if extra_routers is None else extra_routers
    api = EmbeddedApi(create_app(engine, config, clock, extra_routers=routers),
                      config.api.host, config.api.port)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


class ThreadedServer:
    """The API on a loopback port in a background thread (tests, demos)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                 limits: ClientLimits = DEFAULT_LIMITS) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.server = EmbeddedServer(uvicorn_config(app, self.host, self.port, limits))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="watchdog-api", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve; return once the socket accepts requests."""
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the API server thread exited during startup")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        """Finish in-flight requests and join the thread."""
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
