"""Two merchant accounts of one provider in one database, against the in-repo sandbox over
real HTTP, on SQLite and PostgreSQL (issue 19, "must hold").

Smartpay accounts ``brand-a`` (window 7d) and ``brand-b`` (window 6d, a tiny rate limit),
each with its own sandbox credentials; the scanner runs on a FrozenClock and the sandbox's
clock is frozen at the same instant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from tests.support.scan import detached_row, run_one_pass
from watchdog import audit, controls, service
from watchdog.alerts.message import Event, Notification
from watchdog.alerts.outbox import AlertKind, dedup_key
from watchdog.clock import FrozenClock
from watchdog.config import Config, parse_config
from watchdog.db import transaction
from watchdog.domain import ProviderName, State
from watchdog.models import Action, Alert, Authorization
from watchdog.providers.accounted import AccountRouter
from watchdog.providers.base import AuthRef, Outcome
from watchdog.providers.http import make_http_client
from watchdog.runtime import configured_adapters
from watchdog.sandbox import SandboxServer
from watchdog.sandbox.accounts import account_env

SMARTPAY = ProviderName("smartpay")
ACCOUNTS = ("brand-a", "brand-b")


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


def env_of(*accounts: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for account in accounts:
        found.update(account_env("smartpay", account))
    return found


@dataclass
class World:
    engine: Engine
    config: Config
    clock: FrozenClock
    sandbox: SandboxServer

    def order(self, account: str, order_id: str, age: dt.timedelta, amount: int = 5000) -> int:
        authorized_at = self.clock.now() - age
        self.sandbox.create_order("smartpay", order_id, amount, "JPY",
                                  authorized_at=authorized_at, account=account)
        return service.register(self.engine, self.config, {
            "provider": "smartpay", "account": account, "order_id": order_id, "amount": amount,
            "currency": "JPY", "authorized_at": authorized_at.isoformat(),
            "on_deadline": "capture"}, actor="test", clock=self.clock).authorization.id

    def scan(self) -> None:
        run_one_pass(self.config, self.engine, self.clock, worker="accounts-test")

    def row(self, auth_id: int) -> Authorization:
        return detached_row(self.engine, auth_id)

    def alerts(self, auth_id: int | None = None) -> list[Alert]:
        with transaction(self.engine) as session:
            stmt = select(Alert)
            if auth_id is not None:
                stmt = stmt.where(Alert.authorization_id == auth_id)
            rows = list(session.scalars(stmt))
            for r in rows:
                session.expunge(r)
            return rows


def make_config(db_url: str, sandbox: SandboxServer, env: dict[str, str],
                **brand_b: Any) -> Config:
    return parse_config({
        "database": {"url": db_url},
        "providers": {"smartpay": {"accounts": {
            "brand-a": {"base_url": sandbox.base_urls("brand-a")["smartpay"], "window": "7d",
                        "rate_limit": 1000},
            "brand-b": {"base_url": sandbox.base_urls("brand-b")["smartpay"], "window": "6d",
                        "rate_limit": 0.01, **brand_b},
        }}},
    }, environ=env)


@pytest.fixture
def world(engine: Engine, db_url: str, clock: FrozenClock,
          sandbox_server: SandboxServer) -> World:
    sandbox_server.reset()
    sandbox_server.set_now(clock.now(), freeze=True)
    config = make_config(db_url, sandbox_server, env_of(*ACCOUNTS), rate_limit=1000)
    return World(engine, config, clock, sandbox_server)


def test_the_sandbox_refuses_another_accounts_credentials(sandbox_server: SandboxServer) -> None:
    sandbox_server.reset()
    keys = {a: account_env("smartpay", a)[f"WATCHDOG_SMARTPAY_{a.upper().replace('-', '_')}"
                                             "_SECRET_KEY"] for a in ACCOUNTS}
    assert keys["brand-a"] != keys["brand-b"]
    sandbox_server.create_order("smartpay", "o-1", 100, "JPY", account="brand-b")
    url = sandbox_server.base_urls("brand-b")["smartpay"] + "/orders/o-1"
    with httpx.Client(timeout=5) as client:
        own = client.get(url, headers={"Authorization": f"Bearer {keys['brand-b']}"})
        other = client.get(url, headers={"Authorization": f"Bearer {keys['brand-a']}"})
    assert own.status_code == 200 and own.json()["id"] == "o-1"
    assert other.status_code == 401


def test_each_account_acts_with_its_own_credentials_and_window(world: World) -> None:
    # The same order id in both accounts, authorized 5 days 3 hours ago: brand-b's 6-day
    # window puts its deadline capture now, brand-a's 7-day window a day later.
    a = world.order("brand-a", "o-1", dt.timedelta(days=5, hours=3))
    b = world.order("brand-b", "o-1", dt.timedelta(days=5, hours=3))
    assert a != b
    start = world.clock.now() - dt.timedelta(days=5, hours=3)
    assert world.row(a).deadline == start + dt.timedelta(days=7)
    assert world.row(b).deadline == start + dt.timedelta(days=6)
    world.scan()
    assert world.row(b).state == State.CAPTURED
    assert world.row(a).state == State.AUTHORIZED
    ledger = [(e["account"], e["order_id"], e["operation"]) for e in world.sandbox.ledger()]
    assert ledger == [("brand-b", "o-1", "capture")]
    requests = world.sandbox.requests()
    assert requests and all(r["status"] != 401 for r in requests), requests
    assert {r["account"] for r in requests} == {"brand-a", "brand-b"}  # brand-a: early read
    with transaction(world.engine) as session:
        (key,) = session.scalars(select(Action.idempotency_key)
                                 .where(Action.authorization_id == b)).all()
    assert "-brand-b-" in key
    # and a day later brand-a's own deadline capture, at its own account
    world.clock.advance(dt.timedelta(days=1))
    world.sandbox.set_now(world.clock.now(), freeze=True)
    world.scan()
    assert world.row(a).state == State.CAPTURED
    assert world.sandbox.order("smartpay", "o-1", account="brand-a")["captured"] == 5000
    events = audit.query(world.engine, authorization_id=a)
    assert "scan:capture:outcome" in [e.event for e in events]


def test_one_accounts_rate_limit_never_slows_the_other(
    world: World, db_url: str,
) -> None:
    config = make_config(db_url, world.sandbox, env_of(*ACCOUNTS))  # brand-b: 0.01/s
    for account in ACCOUNTS:
        world.sandbox.create_order("smartpay", "r-1", 100, "JPY", account=account)

    async def run() -> None:
        client = make_http_client()
        try:
            adapters, problems = configured_adapters(config, client)
            assert SMARTPAY not in problems
            router = adapters[SMARTPAY]
            assert isinstance(router, AccountRouter)

            def ref(account: str) -> AuthRef:
                return AuthRef(1, "r-1", 100, "JPY", account=account)

            first = await router.status(ref("brand-b"))  # brand-b's one token
            assert first.outcome is Outcome.SUCCEEDED
            starved = asyncio.ensure_future(router.status(ref("brand-b")))
            for _ in range(5):  # brand-a is not held up by brand-b's empty bucket
                result = await asyncio.wait_for(router.status(ref("brand-a")), timeout=5)
                assert result.outcome is Outcome.SUCCEEDED
            assert not starved.done()
            starved.cancel()
        finally:
            await client.aclose()

    asyncio.run(run())


def test_pausing_one_account_leaves_the_other_acting(world: World) -> None:
    a = world.order("brand-a", "p-1", dt.timedelta(days=6, hours=2))
    b = world.order("brand-b", "p-1", dt.timedelta(days=5, hours=2))
    controls.pause(world.engine, "smartpay/brand-b", "brand-b settlement freeze", "test",
                   world.clock.now())
    world.scan()
    assert world.row(a).state == State.CAPTURED
    assert world.row(b).state == State.AUTHORIZED
    assert [e["account"] for e in world.sandbox.ledger()] == ["brand-a"]
    held = [e for e in audit.query(world.engine, authorization_id=b) if "held" in e.event]
    assert held, [e.event for e in audit.query(world.engine, authorization_id=b)]
    assert controls.resume(world.engine, "smartpay/brand-b", "test", world.clock.now())
    world.clock.advance(dt.timedelta(minutes=30))
    world.sandbox.set_now(world.clock.now(), freeze=True)
    world.scan()
    assert world.row(b).state == State.CAPTURED


def test_an_outage_of_one_accounts_credentials_alerts_for_that_account_only(
    world: World, db_url: str,
) -> None:
    env = {**env_of(*ACCOUNTS), "WATCHDOG_SMARTPAY_BRAND_B_SECRET_KEY": "revoked-key"}
    world.config = make_config(db_url, world.sandbox, env, rate_limit=1000)
    a = world.order("brand-a", "q-1", dt.timedelta(days=6, hours=2))
    b = world.order("brand-b", "q-1", dt.timedelta(days=5, hours=2))
    for _ in range(4):
        world.scan()
        world.clock.advance(dt.timedelta(minutes=40))
        world.sandbox.set_now(world.clock.now(), freeze=True)
    assert world.row(a).state == State.CAPTURED
    assert world.row(b).state != State.CAPTURED
    assert world.alerts(a) == []
    alerts = world.alerts(b)
    assert alerts, "brand-b's failures must page"
    for alert in alerts:
        assert alert.summary.startswith("smartpay/brand-b "), alert.summary
        assert alert.dedup_key == dedup_key(AlertKind(alert.kind), b)
        text = Notification.of(alert, Event.TRIGGER, 0).description(world.clock.now())
        assert f"Authorization {b}: smartpay/brand-b order q-1" in text, text
        assert json.loads(alert.details)["account"] == "brand-b"
    assert all(x.authorization_id == b for x in world.alerts() if x.authorization_id)


def test_an_outage_of_one_accounts_host_is_that_accounts_provider_alert(
    world: World, db_url: str,
) -> None:
    from tests.support.postgres import free_port
    from watchdog.alerts.health import evaluate_providers
    from watchdog.alerts.settings import AlertSettings

    dead = f"http://127.0.0.1:{free_port()}/smartpay"
    world.config = make_config(db_url, world.sandbox, env_of(*ACCOUNTS), base_url=dead,
                               rate_limit=1000, retry_attempts=0)
    world.order("brand-a", "h-1", dt.timedelta(days=1))
    world.order("brand-b", "h-1", dt.timedelta(days=1))
    world.scan()  # the early status read of each
    raised = evaluate_providers(world.engine, AlertSettings(provider_min_calls=1), world.clock)
    assert set(raised) == {"smartpay/brand-b"}
    (alert,) = [x for x in world.alerts() if x.kind == "provider_unhealthy"]
    assert alert.dedup_key == "expiry-watchdog:provider_unhealthy:provider:smartpay/brand-b"
    assert alert.provider == "smartpay" and "smartpay/brand-b" in alert.summary
