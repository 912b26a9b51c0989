"""Wiring: config -> engine, HTTP client, adapters, scanner; shared by ``scan`` and ``run``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from watchdog import schema
from watchdog.audit import process_actor
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config
from watchdog.domain import ProviderName
from watchdog.errors import WatchdogError
from watchdog.metrics import MeteredAdapter
from watchdog.providers import registry
from watchdog.providers.accounted import AccountRouter
from watchdog.providers.base import ProviderAdapter
from watchdog.providers.http import make_http_client
from watchdog.scan import Scanner
from watchdog.workers import Heartbeat

log = logging.getLogger("watchdog.runtime")


class SchemaNotCurrent(WatchdogError):
    """The database schema is not at this version's head; run `expiry-watchdog db upgrade`."""


def configured_adapters(
    config: Config, client: httpx.AsyncClient
) -> tuple[dict[ProviderName, ProviderAdapter], dict[ProviderName, str]]:
    """The registry's adapters for every usable provider, metered; and why each other one
    is unusable (``registry.configured_adapters`` builds them)."""
    adapters, problems = registry.configured_adapters(config, client)
    return {name: _metered(adapter) for name, adapter in adapters.items()}, problems


def _metered(adapter: ProviderAdapter) -> ProviderAdapter:
    """The adapter metered; a provider with accounts meters each account's adapter."""
    if isinstance(adapter, AccountRouter):
        return adapter.wrapped(lambda account, inner: MeteredAdapter(inner, account=account))
    return MeteredAdapter(adapter)


def require_schema(engine: Engine) -> None:
    """Refuse to run on a database that is not migrated to this version."""
    current, head = schema.current_revision(engine), schema.HEAD_REVISION
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing (empty database)'}, this version needs "
            f"{head}; run `expiry-watchdog db upgrade`"
        )


@dataclass
class Runtime:
    """What a pass needs, built once per process."""

    scanner: Scanner
    client: httpx.AsyncClient
    problems: dict[ProviderName, str]


@asynccontextmanager
async def scanner_runtime(
    config: Config,
    engine: Engine,
    clock: Clock = SYSTEM_CLOCK,
    worker: str | None = None,
    dry_run: bool = False,
) -> AsyncIterator[Runtime]:
    """A scanner with its HTTP client and its worker's heartbeat (a thread, so a busy
    event loop never makes a live worker look dead); on exit the heartbeat stops, the
    worker's row goes, and the client is closed."""
    client = make_http_client(max_connections=max(64, config.scheduler.concurrency * 2))
    try:
        adapters, problems = configured_adapters(config, client)
        for name, why in problems.items():
            log.info(
                "provider unusable",
                extra={"action": "provider:unusable", "provider": name, "reason": why},
            )
        scanner = Scanner(
            engine, config, adapters, clock, worker or process_actor(), dry_run=dry_run
        )
        heartbeat = Heartbeat(engine, scanner.worker, clock, config.scheduler.lease)
        await asyncio.to_thread(heartbeat.start)
        try:
            yield Runtime(scanner, client, problems)
        finally:
            await asyncio.to_thread(heartbeat.stop)
    finally:
        await client.aclose()
