"""The API inside the daemon's event loop: starts before the first pass, stops cleanly,
and a port that is taken is a clear error instead of a silent exit."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import httpx
import pytest
from sqlalchemy import Engine

from watchdog import tokens
from watchdog.api.server import ApiUnavailable, embedded_api
from watchdog.clock import FrozenClock
from watchdog.config import ApiSettings, Config


def test_embedded_api_serves_and_stops(engine: Engine, config: Config, clock: FrozenClock) -> None:
    secret = tokens.create(engine, "daemon-test", tokens.Scope.READ, "test", clock.now())
    config = dataclasses.replace(config, api=ApiSettings(host="127.0.0.1", port=0))

    async def main() -> int:
        async with embedded_api(engine, config, clock) as api:
            assert api is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}") as client:
                plan = await client.get("/v1/plan", headers={"Authorization": f"Bearer {secret}"})
                assert plan.status_code == 200
            port = api.port
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as client:
                await client.get(f"http://127.0.0.1:{port}/v1/plan")
        return port

    assert asyncio.run(main()) > 0


def test_taken_port_is_a_clear_error(engine: Engine, config: Config, clock: FrozenClock) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = dataclasses.replace(config, api=ApiSettings(host="127.0.0.1", port=port))

        async def main() -> None:
            async with embedded_api(engine, config, clock):
                raise AssertionError("should not start")

        with pytest.raises(ApiUnavailable, match=f"127.0.0.1:{port}"):
            asyncio.run(main())


def test_disabled_api_runs_nothing(engine: Engine, config: Config, clock: FrozenClock) -> None:
    config = dataclasses.replace(config, api=ApiSettings(enabled=False))

    async def main() -> None:
        async with embedded_api(engine, config, clock) as api:
            assert api is None

    asyncio.run(main())
