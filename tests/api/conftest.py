"""An API on a real loopback port, on each database backend, with a read and a write token
(helpers: ``tests/support/api.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from tests.support.api import Api
from watchdog import tokens
from watchdog.api import create_app
from watchdog.api.server import ThreadedServer
from watchdog.clock import FrozenClock
from watchdog.config import Config


@pytest.fixture
def api(engine: Engine, config: Config, clock: FrozenClock) -> Iterator[Api]:
    """The API served by uvicorn on 127.0.0.1:<free port>."""
    write = tokens.create(engine, "merchant", tokens.Scope.WRITE, "test", clock.now())
    read = tokens.create(engine, "dashboard", tokens.Scope.READ, "test", clock.now())
    with ThreadedServer(create_app(engine, config, clock)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        yield Api(server.url, engine, config, clock, write, read, client)
