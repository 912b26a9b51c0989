"""End to end: sandbox provider, API over HTTP, one scanner pass, audit read back via the API.

Also the secrets rule: neither the API token nor any provider credential appears in logs,
audit rows or API responses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from watchdog import audit, tokens
from watchdog.api import create_app
from watchdog.api.server import ThreadedServer
from watchdog.clock import FrozenClock
from watchdog.config import parse_config
from watchdog.runtime import scanner_runtime
from watchdog.sandbox import SandboxServer
from watchdog.sandbox.credentials import SANDBOX_ENV

pytestmark = pytest.mark.wallclock


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def test_register_instruct_scan_and_read_back(
    engine: Engine, db_url: str, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = FrozenClock(now)
    config = parse_config({
        "database": {"url": db_url},
        "providers": {name: {"base_url": url} for name, url in sandbox.base_urls().items()},
    }, environ=SANDBOX_ENV)
    authorized_at = now - dt.timedelta(hours=1)
    sandbox.create_order("clearpay", "400100200", 12_000, "GBP", authorized_at=authorized_at)
    secret = tokens.create(engine, "shop", tokens.Scope.WRITE, "test", clock.now())
    auth = {"Authorization": f"Bearer {secret}"}
    responses: list[httpx.Response] = []

    with ThreadedServer(create_app(engine, config, clock)) as server, \
            httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
        registered = client.post("/v1/authorizations", json={
            "provider": "clearpay", "order_id": "400100200", "amount": 12_000,
            "currency": "GBP", "authorized_at": authorized_at.isoformat(),
            "on_deadline": "capture",
        })
        responses.append(registered)
        assert registered.status_code == 201, registered.text
        auth_id = registered.json()["authorization"]["id"]

        instructed = client.post(f"/v1/authorizations/{auth_id}/capture-instruction",
                                 json={"amount": 4_500, "when": "now"})
        responses.append(instructed)
        assert instructed.status_code == 202, instructed.text

        async def one_pass() -> None:
            async with scanner_runtime(config, engine, clock, worker="e2e-worker") as runtime:
                assert "clearpay" not in runtime.problems
                await runtime.scanner.run_pass()

        asyncio.run(one_pass())

        shown = client.get(f"/v1/authorizations/{auth_id}")
        trail = client.get(f"/v1/authorizations/{auth_id}/audit")
        listing = client.get("/v1/authorizations")
        plan = client.get("/v1/plan", params={"horizon": "30d"})
        responses += [shown, trail, listing, plan]

    state = shown.json()["authorization"]
    assert state["state"] == "partially_captured"
    assert state["captured_amount"] == 4_500

    rows = trail.json()["items"]
    events = [r["event"] for r in rows]
    assert events[:2] == ["register:authorization:create", "instruct:capture_now:accept"]
    assert {r["actor"] for r in rows[:2]} == {"api:shop"}
    intents = [r for r in rows if r["event"] == "scan:capture:intent"]
    outcomes = [r for r in rows if r["event"] == "scan:capture:outcome"]
    assert len(intents) == 1, events
    assert len(outcomes) == 1, events
    assert intents[0]["amount"] == outcomes[0]["amount"] == 4_500
    assert intents[0]["idempotency_key"] == outcomes[0]["idempotency_key"]
    assert intents[0]["id"] < outcomes[0]["id"]
    assert outcomes[0]["actor"] == "e2e-worker"

    captures = [e for e in sandbox.ledger() if e["operation"] == "capture"]
    assert [(e["order_id"], e["amount"]) for e in captures] == [("400100200", 4_500)]
    assert captures[0]["idempotency_key"]  # Clearpay requestId, derived from our key
    assert outcomes[0]["outcome"] == "succeeded", outcomes[0]

    secrets = [secret, *SANDBOX_ENV.values()]
    audit_text = json.dumps([audit.row_as_dict(r) for r in audit.query(engine)], default=str)
    response_text = "".join(r.text for r in responses)
    for value in secrets:
        if len(value) < 8:  # e.g. Flitt's sandbox secret "test" is an ordinary word
            continue
        assert value not in caplog.text, value
        assert value not in audit_text, value
        assert value not in response_text, value
