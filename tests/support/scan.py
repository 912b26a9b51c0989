"""Running a real scan pass in-process and reading a row back, for tests that drive the
scanner against the sandbox with an injected clock."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from watchdog.clock import Clock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.models import Authorization
from watchdog.runtime import scanner_runtime


def run_one_pass(config: Config, engine: Engine, clock: Clock, worker: str) -> None:
    """One pass as ``expiry-watchdog scan`` wires it (``runtime.scanner_runtime``)."""

    async def one_pass() -> None:
        async with scanner_runtime(config, engine, clock, worker=worker) as runtime:
            await runtime.scanner.run_pass()

    asyncio.run(one_pass())


def detached_row(engine: Engine, auth_id: int) -> Authorization:
    """The authorization as stored now, detached from its session."""
    with transaction(engine) as session:
        row = session.get(Authorization, auth_id)
        assert row is not None
        session.expunge(row)
        return row
